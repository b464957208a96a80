using System.Net.Sockets;
using System.Text;
using Mono.Unix.Native;

namespace Upas;

/// <summary>Where smtp -a gets the password for AUTH: a running factotum, or a file of keys.</summary>
public interface IFactotum
{
	/// <summary>The user and password of the proto=pass service=smtp key for server (and user, when given); null when no key matches.</summary>
	(string User, string Password)? GetPassword(string server, string? user);
}

/// <summary>
/// A plan9port factotum(4) spoken to over 9P2000, as auth_getuserpasswd(2) does: the Unix-domain socket
/// factotum in the name space directory (getns: $NAMESPACE, else /tmp/ns.$USER.$DISPLAY), its rpc file,
/// "start proto=pass role=client service=smtp server=HOST [user=USER]" then "read", answered "ok USER PASSWORD".
/// Every exchange is bounded by <see cref="Timeout"/> (10 s): a hung factotum cannot hang smtp.
/// </summary>
public sealed class Factotum9p : IFactotum, IDisposable
{
	/// <summary>How long connecting, or one GetPassword, may take.</summary>
	public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
	/// <summary>The msize asked for, as lib9pclient does.</summary>
	public const uint Msize = 8192;
	/// <summary>AuthRpcMax of auth.h: the largest rpc request or reply.</summary>
	public const int AuthRpcMax = 4096;

	const uint RootFid = 0;

	readonly NinepClient c;
	readonly object gate = new();
	uint nextFid = RootFid + 1;
	bool disposed;

	/// <summary>The socket this factotum was reached at.</summary>
	public string SocketPath { get; }
	public TimeSpan Timeout { get; set; }

	Factotum9p(NinepClient c, string socketPath, TimeSpan timeout)
	{
		this.c = c;
		SocketPath = socketPath;
		Timeout = timeout;
	}

	/// <summary>The factotum of this user's name space ($NAMESPACE, $DISPLAY, $USER from the environment); null when none is running.</summary>
	/// <exception cref="IOException">a factotum socket answered, but not with 9P2000 in time.</exception>
	public static Factotum9p? TryConnect() =>
		TryConnect(Environment.GetEnvironmentVariable("NAMESPACE"), Environment.GetEnvironmentVariable("DISPLAY"), User());

	/// <summary>TryConnect() with the environment given: the name space directory is <see cref="NamespaceDir(string?, string?, string)"/>.</summary>
	public static Factotum9p? TryConnect(string? namespaceVar, string? display, string user) =>
		NamespaceDir(namespaceVar, display, user) is { } ns ? TryConnect(Path.Join(ns, "factotum"), DefaultTimeout, user) : null;

	/// <summary>The factotum posted at socketPath; null when nothing listens there.</summary>
	/// <exception cref="IOException">something listens, but does not speak 9P2000 in time.</exception>
	public static Factotum9p? TryConnect(string socketPath) => TryConnect(socketPath, DefaultTimeout);

	public static Factotum9p? TryConnect(string socketPath, TimeSpan timeout) => TryConnect(socketPath, timeout, User());

	static Factotum9p? TryConnect(string socketPath, TimeSpan timeout, string user)
	{
		UnixDomainSocketEndPoint ep;
		try {
			ep = new UnixDomainSocketEndPoint(socketPath);
		} catch (ArgumentException) {
			return null;	// too long for sun_path: nothing can be posted there
		}
		var deadline = DateTime.UtcNow + timeout;
		var sock = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
		try {
			using var cts = new CancellationTokenSource(timeout);
			sock.ConnectAsync(ep, cts.Token).AsTask().GetAwaiter().GetResult();
		} catch (SocketException) {
			sock.Dispose();
			return null;	// no such socket, or a stale one nobody listens on
		} catch (OperationCanceledException) {
			sock.Dispose();
			throw new IOException($"factotum: connecting to {socketPath}: no answer in {timeout.TotalSeconds:0.#} s");
		}
		var c = new NinepClient(sock, "factotum") { Deadline = deadline };
		try {
			c.Version(Msize);
			c.Attach(RootFid, user, "");
		} catch (IOException e) {
			c.Dispose();
			throw new IOException($"{e.Message} (at {socketPath})", e);
		}
		c.Deadline = DateTime.MaxValue;
		return new Factotum9p(c, socketPath, timeout);
	}

	public void Dispose()
	{
		lock (gate) {
			disposed = true;
			c.Dispose();
		}
	}

	/// <summary>
	/// plan9port's getns: $NAMESPACE when set (and not empty); else /tmp/ns.USER.DISPLAY (<see cref="NsFromDisplay"/>),
	/// which must be a directory of mode 0700 owned by the caller (else null, as getns's "bad name space dir").
	/// Null too when that directory does not exist: no factotum can be running there.
	/// </summary>
	public static string? NamespaceDir(string? namespaceVar, string? display, string user)
	{
		if (!string.IsNullOrEmpty(namespaceVar))
			return namespaceVar;
		var dir = NsFromDisplay(user, display);
		if (Syscall.stat(dir, out var st) != 0)
			return null;
		if ((st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
			return null;
		if (((uint)st.st_mode & 0x1ff) != 0x1c0 /* 0700 */ || st.st_uid != Syscall.getuid())
			return null;
		return dir;
	}

	/// <summary>
	/// /tmp/ns.USER.DISPLAY as getns makes it: DISPLAY defaults to ":0", a ".0" screen after the display
	/// number goes (":0.0" is ":0"), and '/' becomes '_' ("/tmp/launch/:0", OS X).
	/// </summary>
	public static string NsFromDisplay(string user, string? display)
	{
		var disp = string.IsNullOrEmpty(display) ? ":0" : display;
		var colon = disp.LastIndexOf(':');
		if (colon >= 0) {
			var p = colon + 1;
			while (p < disp.Length && char.IsAsciiDigit(disp[p]))
				p++;
			if (disp[p..] == ".0")
				disp = disp[..p];
		}
		return $"/tmp/ns.{user}.{disp.Replace('/', '_')}";
	}

	/// <summary>getuser(): the name of the real uid's password entry, "none" without one.</summary>
	public static string User()
	{
		try {
			if (Syscall.getpwuid(Syscall.getuid()) is { pw_name: { Length: > 0 } name })
				return name;
		} catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) {
		}
		return Environment.GetEnvironmentVariable("USER") is { Length: > 0 } u ? u : "none";
	}

	/// <summary>The start attributes for a proto=pass key, values quoted as %q would.</summary>
	public static string StartAttrs(string server, string? user)
	{
		var s = "proto=pass role=client service=smtp server=" + Factotum.Quote(server);
		if (!string.IsNullOrEmpty(user))
			s += " user=" + Factotum.Quote(user);
		return s;
	}

	/// <inheritdoc/>
	/// <exception cref="IOException">factotum's answer was an error other than a missing key, was garbled, or late
	/// (after a late or garbled answer the connection is closed, and later calls fail too: connect again).</exception>
	public (string User, string Password)? GetPassword(string server, string? user)
	{
		lock (gate) {
			ObjectDisposedException.ThrowIf(disposed, this);
			c.Deadline = DateTime.UtcNow + Timeout;
			try {
				return Converse(server, user);
			} finally {
				c.Deadline = DateTime.MaxValue;
			}
		}
	}

	(string, string)? Converse(string server, string? user)
	{
		var fid = nextFid++;
		if (nextFid == Ninep.NoFid)
			nextFid = RootFid + 1;
		c.Walk(RootFid, fid, "rpc");
		try {
			c.Open(fid, Ninep.ORDWR);
			ulong offset = 0;
			var (verb, arg) = Rpc(fid, ref offset, "start", StartAttrs(server, user));
			if (Verdict("start", verb, arg) is false)
				return null;
			(verb, arg) = Rpc(fid, ref offset, "read", "");
			if (Verdict("read", verb, arg) is false)
				return null;
			var f = Tokenize(arg);
			if (f.Count != 2)
				throw new IOException($"factotum: bad answer from factotum: {NinepClient.Show(arg)}");
			return (f[0], f[1]);
		} finally {
			if (!c.Broken) {
				try {
					c.Clunk(fid);
				} catch (IOException) when (!c.Broken) {
					// an Rerror to the clunk: the fid is gone all the same (clunk(5))
				}
			}
		}
	}

	/// <summary>True for ok; false for a missing key (needkey, badkey, error …no key…); an IOException for anything else.</summary>
	static bool Verdict(string op, string verb, string arg)
	{
		switch (verb) {
		case "ok":
			return true;
		case "needkey" or "badkey":
			return false;	// auth_getuserpasswd without a getkey function gives up
		case "error":
			if (arg.Contains("no key", StringComparison.Ordinal) || arg.StartsWith("needkey", StringComparison.Ordinal))
				return false;
			throw new IOException("factotum: " + (arg.Length == 0 ? "unspecified rpc error" : NinepClient.Show(arg)));
		case "phase":
			throw new IOException($"factotum: phase error {NinepClient.Show(arg)}");
		case "toosmall":
			throw new IOException($"factotum: {op}: reply needs {NinepClient.Show(arg)} bytes");
		case "done":
			throw new IOException($"factotum: {op}: conversation already done");
		default:
			throw new IOException($"factotum: malformed rpc response: {NinepClient.Show(verb + (arg.Length > 0 ? " " + arg : ""))}");
		}
	}

	/// <summary>One rpc: write "verb arg", read the reply, split it as auth_rpc's classify does.</summary>
	(string Verb, string Arg) Rpc(uint fid, ref ulong offset, string verb, string arg)
	{
		var req = Encoding.UTF8.GetBytes(arg.Length > 0 ? verb + " " + arg : verb);
		if (req.Length >= AuthRpcMax || req.Length > c.Msize - Ninep.IoHdrSz)
			throw new IOException($"factotum: {verb}: rpc too big");
		var n = c.Write(fid, offset, req);
		if (n != req.Length)
			throw new IOException($"factotum: {verb}: short write ({n} of {req.Length})");
		offset += n;
		var reply = c.Read(fid, offset, AuthRpcMax);
		offset += (ulong)reply.Length;
		string s;
		try {
			s = new UTF8Encoding(false, true).GetString(reply);
		} catch (DecoderFallbackException) {
			throw new IOException($"factotum: {verb}: reply is not UTF-8");
		}
		var sp = s.IndexOf(' ');
		return sp < 0 ? (s, "") : (s[..sp], s[(sp + 1)..]);
	}

	/// <summary>
	/// Plan 9's tokenize(2): blanks, tabs and newlines separate; '…' quotes, '' inside quotes is a quote, a quote
	/// may begin mid-word; '#' is nothing special (factotum's %q leaves "#x" unquoted).
	/// </summary>
	public static List<string> Tokenize(string s)
	{
		var words = new List<string>();
		var w = new StringBuilder();
		var i = 0;
		while (true) {
			while (i < s.Length && s[i] is ' ' or '\t' or '\r' or '\n')
				i++;
			if (i >= s.Length)
				break;
			var quoting = false;
			w.Clear();
			while (i < s.Length && (quoting || s[i] is not (' ' or '\t' or '\r' or '\n'))) {
				if (s[i] != '\'') {
					w.Append(s[i++]);
				} else if (!quoting) {
					quoting = true;
					i++;
				} else if (i + 1 < s.Length && s[i + 1] == '\'') {
					w.Append('\'');
					i += 2;
				} else {
					quoting = false;
					i++;
				}
			}
			words.Add(w.ToString());
		}
		return words;
	}
}

/// <summary>
/// Keys in factotum syntax from a file ($HOME/lib/factotum), for when no factotum runs: the first key with
/// proto=pass service=smtp server=HOST (and user=USER when a user is asked for), a user and a !password.
/// Matching is factotum's: every attribute asked for must be in the key; role and disabled, when the key has
/// them, must agree (role=client, no disabled). The file is read at each call.
/// </summary>
public sealed class FactotumFile(string path) : IFactotum
{
	public string Path { get; } = path;

	/// <summary>$HOME/lib/factotum.</summary>
	public static FactotumFile Default() =>
		new(System.IO.Path.Join(Environment.GetEnvironmentVariable("HOME") ?? "/", "lib/factotum"));

	/// <summary>Null when no key matches or the file does not exist.</summary>
	/// <exception cref="IOException">the file exists but cannot be read.</exception>
	public (string User, string Password)? GetPassword(string server, string? user)
	{
		string text;
		try {
			text = File.ReadAllText(Path);
		} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
			return null;
		} catch (UnauthorizedAccessException e) {
			throw new IOException($"{Path}: {e.Message}", e);
		}
		return Find(Factotum.ParseKeys(text), server, user);
	}

	/// <summary>The first key that fits, as factotum's keyfetch picks it.</summary>
	public static (string User, string Password)? Find(IEnumerable<FactotumKey> keys, string server, string? user)
	{
		var query = new List<(string, string?)> { ("proto", "pass"), ("service", "smtp"), ("server", server) };
		if (!string.IsNullOrEmpty(user))
			query.Add(("user", user));
		foreach (var k in keys) {
			if (!k.Matches(query))
				continue;
			if ((k["role"] is { } role && role != "client") || k["disabled"] is not null)
				continue;
			if (k["user"] is { } u && k.Secrets.TryGetValue("password", out var pw))
				return (u, pw);
		}
		return null;
	}
}
