using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Where the repository and its published executables are.</summary>
static class Repo
{
	public static readonly string Dir = Find();

	static string Find()
	{
		for (var d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d)) {
			if (File.Exists(Path.Join(d, "upas-smtp.sln")))
				return d;
		}
		throw new InvalidOperationException("cannot find upas-smtp.sln above " + AppContext.BaseDirectory);
	}

	public static string Bin(string prog)
	{
		var p = Path.Join(Dir, "bin/upas", prog);
		if (!File.Exists(p))
			Assert.Fail($"{p} is missing: run dotnet publish -c Release first (bash tests/run does)");
		return p;
	}

	public static bool Have(string tool) =>
		(Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Join(d, tool)));
}

/// <summary>What the test mailer recorded of one run: its argv (without argv0) and its stdin.</summary>
sealed record Capture(string[] Args, byte[] Msg)
{
	public string Text => Encoding.Latin1.GetString(Msg);
}

/// <summary>Free TCP ports, for the listeners the tests start.</summary>
static class Ports
{
	/// <summary>A TCP port free on bind at the time of asking.</summary>
	public static int Free(string bind = "127.0.0.1")
	{
		var l = new TcpListener(IPAddress.Parse(bind), 0);
		l.Start();
		var port = ((IPEndPoint)l.LocalEndpoint).Port;
		l.Stop();
		return port;
	}
}

/// <summary>Mailboxes of a test tree, as a reader sees them.</summary>
static class Mail
{
	/// <summary>/mail/box/user/mbox's text, "" when there is none.</summary>
	public static string Box(Tree t, string user)
	{
		var p = t.P($"/mail/box/{user}/mbox");
		return File.Exists(p) ? File.ReadAllText(p, Encoding.Latin1) : "";
	}

	/// <summary>An mbox cut into its messages: each starts with a From_ line (a "From " in a body is escaped).</summary>
	public static List<string> Split(string mbox)
	{
		var starts = Regex.Matches(mbox, "^From ", RegexOptions.Multiline).Select(m => m.Index).ToList();
		Assert.That(mbox.Length == 0 || starts.FirstOrDefault(-1) == 0, Is.True, "the mbox starts with a From_ line");
		return starts.Select((s, i) => mbox[s..(i + 1 < starts.Count ? starts[i + 1] : mbox.Length)]).ToList();
	}
}

static class Wait
{
	/// <summary>Polls cond until it holds; fails the test with what() when it has not within limit.</summary>
	public static void Until(Func<bool> cond, Func<string> what, TimeSpan limit, int pollMs = 20)
	{
		var sw = Stopwatch.StartNew();
		while (!cond()) {
			if (sw.Elapsed > limit)
				Assert.Fail($"not within {limit.TotalSeconds} s: {what()}");
			Thread.Sleep(pollMs);
		}
	}
}

/// <summary>Result of one smtpd run over pipes.</summary>
sealed record RunResult(string Out, int Exit, string Err);

/// <summary>
/// A throw-away Plan 9 tree: dev/sysname, mail/lib/smtpd.conf, sys/log, a connection directory for -n, and a
/// mailer that records its arguments and input (MAILER_EXIT and MAILER_STDERR make it fail).
/// </summary>
sealed class Tree : IDisposable
{
	public string Dir { get; }
	public string NetDir => Path.Join(Dir, "net/tcp/7");
	public string Mailer => Path.Join(Dir, "mailer");
	public string CapDir => Path.Join(Dir, "cap");

	public const string DefaultConf = """
		# the configuration the reference transcripts were recorded with
		defaultdomain example.com
		ournets 10.0.0.0/8
		ourdomains example.com, *.example.com
		greetdelay 0

		""";

	/// <summary>A tree for send: an empty /sys/log/mail and a mailbox directory for each user.</summary>
	public static Tree WithMailboxes(params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		return t;
	}

	public Tree(string? conf = null, string peer = "127.0.0.2", string local = "127.0.0.1")
	{
		Dir = Path.Join(Path.GetTempPath(), "upas-test-" + Guid.NewGuid().ToString("N")[..12]);
		foreach (var d in new[] { "dev", "mail/lib", "mail/grey/tmp", "mail/queue.dump", "mail/box", "sys/log/smtpdb", "net/tcp/7", "cap" })
			Directory.CreateDirectory(Path.Join(Dir, d));
		File.WriteAllText(Path.Join(Dir, "dev/sysname"), "testhost");
		File.WriteAllText(Path.Join(Dir, "mail/lib/smtpd.conf"), conf ?? DefaultConf);
		File.WriteAllText(Path.Join(Dir, "sys/log/smtpd"), "");
		Peer(peer, local);
		File.WriteAllText(Mailer, """
			#!/bin/sh
			d=$(dirname "$0")/cap
			n=$(ls "$d" | grep -c 'args'); n=$((n+1))
			printf '%s\n' "$@" > "$d/$n.args.tmp"
			cat > "$d/$n.msg"
			mv "$d/$n.args.tmp" "$d/$n.args"
			[ -n "$MAILER_STDOUT" ] && printf '%s\n' "$MAILER_STDOUT"
			[ -n "$MAILER_STDERR" ] && printf '%s\n' "$MAILER_STDERR" >&2
			exit ${MAILER_EXIT:-0}

			""");
		File.SetUnixFileMode(Mailer, (UnixFileMode)0x1ed);
	}

	public void Peer(string peer, string local = "127.0.0.1")
	{
		File.WriteAllText(Path.Join(NetDir, "remote"), peer + "!40000\n");
		File.WriteAllText(Path.Join(NetDir, "local"), local + "!25\n");
	}

	public string P(string plan9path) => Path.Join(Dir, plan9path.TrimStart('/'));

	public void Write(string plan9path, string text, int? mode = null)
	{
		Directory.CreateDirectory(Path.GetDirectoryName(P(plan9path))!);
		File.WriteAllText(P(plan9path), text);
		if (mode is { } m)
			File.SetUnixFileMode(P(plan9path), (UnixFileMode)m);
	}

	public string Read(string plan9path) => File.ReadAllText(P(plan9path));

	/// <summary>The log's messages, each line checked for the "testhost Mon dd hh:mm:ss " prefix.</summary>
	public string[] Log(string name = "smtpd")
	{
		var lines = Read("/sys/log/" + name).Split('\n', StringSplitOptions.RemoveEmptyEntries);
		var prefix = new Regex(@"^testhost [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ");
		foreach (var l in lines)
			Assert.That(prefix.IsMatch(l), Is.True, $"log line without the Plan 9 syslog prefix: {l}");
		return lines.Select(l => prefix.Replace(l, "")).ToArray();
	}

	public List<Capture> Captures()
	{
		var list = new List<Capture>();
		for (var n = 1; File.Exists(Path.Join(CapDir, $"{n}.args")); n++) {
			var args = File.ReadAllText(Path.Join(CapDir, $"{n}.args")).TrimEnd('\n').Split('\n');
			list.Add(new Capture(args, File.ReadAllBytes(Path.Join(CapDir, $"{n}.msg"))));
		}
		return list;
	}

	/// <summary>A program run on this tree: PLAN9 set, its standard files ours, none of the mail variables of the test's own environment.</summary>
	public ProcessStartInfo Prog(string path, IEnumerable<string> args)
	{
		var psi = new ProcessStartInfo(path) {
			RedirectStandardInput = true,
			RedirectStandardOutput = true,
			RedirectStandardError = true,
			UseShellExecute = false,
		};
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		psi.Environment["PLAN9"] = Dir;
		foreach (var v in new[] { "upasname", "upasparent", "runqjob" })
			psi.Environment.Remove(v);
		return psi;
	}

	public ProcessStartInfo Start(IEnumerable<string> flags, IDictionary<string, string>? env = null, bool netdir = true)
	{
		var psi = new ProcessStartInfo(Repo.Bin("smtpd")) {
			RedirectStandardInput = true,
			RedirectStandardOutput = true,
			RedirectStandardError = true,
			UseShellExecute = false,
		};
		if (netdir) {
			psi.ArgumentList.Add("-n");
			psi.ArgumentList.Add(NetDir);
		}
		if (!flags.Contains("-m")) {
			psi.ArgumentList.Add("-m");
			psi.ArgumentList.Add(Mailer);
		}
		foreach (var f in flags)
			psi.ArgumentList.Add(f);
		psi.Environment["PLAN9"] = Dir;
		// $dnsserver stays the loopback server of the test process (LoopbackDns) unless the test gives its own
		if (env is not null)
			foreach (var (k, v) in env)
				psi.Environment[k] = v;
		return psi;
	}

	/// <summary>Runs smtpd with all of input on stdin at once (the reference transcripts' printf | smtpd).</summary>
	public RunResult Run(string input, params string[] flags) => Run(Encoding.Latin1.GetBytes(input), flags, null);

	public RunResult Run(byte[] input, IEnumerable<string> flags, IDictionary<string, string>? env, bool netdir = true)
	{
		var (outp, err, exit) = Exec(Start(flags, env, netdir), input);
		return new RunResult(Encoding.Latin1.GetString(outp), exit, err);
	}

	/// <summary>Runs a program with all of input on its stdin at once; its stdout, stderr and exit status.</summary>
	public static (byte[] Out, string Err, int Exit) Exec(ProcessStartInfo psi, byte[] input, int limitMs = 60_000)
	{
		using var p = Process.Start(psi)!;
		var outTask = ReadAll(p.StandardOutput.BaseStream);
		var errTask = p.StandardError.ReadToEndAsync();
		try {
			p.StandardInput.BaseStream.Write(input);
			p.StandardInput.Close();
		} catch (IOException) {
			// the program hung up before reading everything (Liar!, -k): that is the behaviour under test
		}
		if (!p.WaitForExit(limitMs)) {
			p.Kill(true);
			Assert.Fail($"{Path.GetFileName(psi.FileName)} did not exit within {limitMs / 1000} s");
		}
		return (outTask.Result, errTask.Result, p.ExitCode);
	}

	static async Task<byte[]> ReadAll(Stream s)
	{
		var m = new MemoryStream();
		await s.CopyToAsync(m);
		return m.ToArray();
	}

	public void Dispose()
	{
		try {
			Directory.Delete(Dir, true);
		} catch (IOException) {
		}
	}

	/// <summary>Replaces ctime dates ("Thu Nov 26 03:35:01 UTC 2026") with DATE.</summary>
	public static string NoDates(string s) =>
		Regex.Replace(s, @"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [A-Za-z+\-0-9]+ \d{4}", "DATE");

	public static string Crlf(string lines) => lines.Replace("\r\n", "\n").Replace("\n", "\r\n");
}

/// <summary>A client on a real socket or on smtpd's pipes, reading replies as they come.</summary>
sealed class Client : IDisposable
{
	readonly Stream s;
	readonly Process? proc;
	readonly TcpClient? tcp;
	readonly MemoryStream pending = new();
	readonly byte[] buf = new byte[65536];
	readonly bool borrowed;

	public Client(Process p)
	{
		proc = p;
		s = new DuplexPipe(p.StandardOutput.BaseStream, p.StandardInput.BaseStream);
	}

	/// <summary>A client over a stream someone else set up (inside TLS, say); disposing it leaves the stream open.</summary>
	public Client(Stream stream)
	{
		s = stream;
		borrowed = true;
	}

	public Client(IPEndPoint ep)
	{
		tcp = new TcpClient(ep.AddressFamily);
		tcp.Connect(ep);
		s = tcp.GetStream();
	}

	public Stream Stream => s;

	public void Send(string text) => Send(Encoding.Latin1.GetBytes(text));

	public void Send(byte[] b)
	{
		s.Write(b);
		s.Flush();
	}

	/// <summary>Reads one reply line (without CR LF); null at end of input.</summary>
	public string? Line(int timeoutMs = 30_000)
	{
		var deadline = DateTime.Now.AddMilliseconds(timeoutMs);
		while (true) {
			var data = pending.GetBuffer().AsSpan(0, (int)pending.Length);
			var lf = data.IndexOf((byte)'\n');
			if (lf >= 0) {
				var line = Encoding.Latin1.GetString(data[..lf]).TrimEnd('\r');
				var rest = data[(lf + 1)..].ToArray();
				pending.SetLength(0);
				pending.Write(rest);
				return line;
			}
			var left = deadline - DateTime.Now;
			if (left <= TimeSpan.Zero)
				throw new TimeoutException("no reply from smtpd");
			int n;
			try {
				var t = s.ReadAsync(buf, 0, buf.Length);
				if (!t.Wait(left))
					throw new TimeoutException("no reply from smtpd");
				n = t.Result;
			} catch (AggregateException e) when (e.InnerException is IOException) {
				n = 0; // a reset connection, or a TLS stream cut short, is the end too
			}
			if (n == 0)
				return pending.Length > 0 ? Encoding.Latin1.GetString(pending.ToArray()) : null;
			pending.Write(buf, 0, n);
		}
	}

	/// <summary>Reads a whole (multi-line) reply.</summary>
	public List<string> Reply()
	{
		var lines = new List<string>();
		while (Line() is { } l) {
			lines.Add(l);
			if (l.Length < 4 || l[3] != '-')
				break;
		}
		return lines;
	}

	public string Ask(string cmd)
	{
		Send(cmd + "\r\n");
		return string.Join("\n", Reply());
	}

	public void Dispose()
	{
		if (borrowed)
			return;
		try {
			s.Dispose();
		} catch (IOException) {
		}
		tcp?.Dispose();
		if (proc is not null) {
			if (!proc.WaitForExit(10_000))
				proc.Kill(true);
			proc.Dispose();
		}
	}

	public int Exit()
	{
		proc!.StandardInput.Close();
		if (!proc.WaitForExit(30_000))
			Assert.Fail("smtpd did not exit");
		return proc.ExitCode;
	}

	sealed class DuplexPipe(Stream r, Stream w) : Stream
	{
		public override bool CanRead => true;
		public override bool CanWrite => true;
		public override bool CanSeek => false;
		public override long Length => throw new NotSupportedException();
		public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
		public override int Read(byte[] b, int o, int c) => r.Read(b, o, c);
		public override Task<int> ReadAsync(byte[] b, int o, int c, CancellationToken ct) => r.ReadAsync(b, o, c, ct);
		public override void Write(byte[] b, int o, int c) => w.Write(b, o, c);
		public override void Flush() => w.Flush();
		public override long Seek(long o, SeekOrigin so) => throw new NotSupportedException();
		public override void SetLength(long v) => throw new NotSupportedException();
		protected override void Dispose(bool disposing)
		{
			if (disposing) {
				w.Dispose();
				r.Dispose();
			}
			base.Dispose(disposing);
		}
	}
}

/// <summary>smtpd behind socat on a real loopback socket (listen(8)/inetd style: the socket is stdin and stdout).</summary>
sealed class SocketServer : IDisposable
{
	readonly Process socat;
	public IPEndPoint Endpoint { get; }

	public SocketServer(Tree tree, IEnumerable<string> flags, string bind = "127.0.0.1")
	{
		if (!Repo.Have("socat"))
			Assert.Fail("socat is not installed (sys/lib/upas/prereq installs it)");
		var addr = IPAddress.Parse(bind);
		var port = Ports.Free(bind);
		Endpoint = new IPEndPoint(addr, port);
		var args = string.Join(' ', flags.Select(f => f.Replace(" ", "\\ ")));
		var listen = addr.AddressFamily == AddressFamily.InterNetworkV6 ? $"TCP6-LISTEN:{port},bind=[{bind}]" : $"TCP-LISTEN:{port},bind={bind}";
		var psi = new ProcessStartInfo("socat") { UseShellExecute = false, RedirectStandardError = true };
		psi.ArgumentList.Add($"{listen},reuseaddr,fork");
		psi.ArgumentList.Add($"EXEC:{$"{Repo.Bin("smtpd")} -m {tree.Mailer} {args}".TrimEnd()},nofork");
		psi.Environment["PLAN9"] = tree.Dir;
		socat = Process.Start(psi)!;
		for (var i = 0; i < 200; i++) {
			try {
				using var c = new TcpClient(addr.AddressFamily);
				c.Connect(Endpoint);
				return;
			} catch (SocketException) {
				Thread.Sleep(25);
			}
		}
		Assert.Fail("socat did not start listening");
	}

	public Client Connect() => new(Endpoint);

	public void Dispose()
	{
		try {
			socat.Kill(true);
			socat.WaitForExit(5000);
		} catch (InvalidOperationException) {
		}
		socat.Dispose();
	}
}
