using System.Diagnostics;
using System.Net.Sockets;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Factotum9p against NinepServer (a factotum stand-in on a Unix socket), and FactotumFile.</summary>
[Parallelizable(ParallelScope.Children)]
public class Factotum9pTests
{
	const string Server = "smtp.example.com";
	const UnixFileMode Mode700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

	/// <summary>A fresh 0700 directory under /tmp (short: a socket path must fit sun_path).</summary>
	sealed class Dir : IDisposable
	{
		public string Path { get; }
		public string Socket => System.IO.Path.Join(Path, "factotum");

		public Dir(string? path = null, UnixFileMode mode = Mode700)
		{
			Path = path ?? "/tmp/f9p-" + Guid.NewGuid().ToString("N")[..12];
			Directory.CreateDirectory(Path, mode);
			File.SetUnixFileMode(Path, mode);
		}

		public void Dispose() => Directory.Delete(Path, true);
	}

	static string Key(string user, string password, string server = Server, string extra = "") =>
		$"key proto=pass service=smtp server={server} user={Factotum.Quote(user)} !password={Factotum.Quote(password)}{extra}\n";

	static string Uniq() => Guid.NewGuid().ToString("N")[..10];

	// -- finding the factotum --

	[Test]
	public void ConnectsThroughNamespaceVariableAndSpeaksTheRpcProtocol()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "s3 cret"));
		using var f = Factotum9p.TryConnect(d.Path, ":99", "glenda");
		Assert.That(f, Is.Not.Null);
		Assert.That(f!.SocketPath, Is.EqualTo(d.Socket));
		Assert.That(f.GetPassword(Server, "glenda"), Is.EqualTo(("glenda", "s3 cret")));
		Assert.That(srv.Requests, Is.EqualTo(new[] {
			"Tversion tag=65535 msize=8192 version=9P2000",
			"Tattach fid=0 afid=4294967295 uname=glenda aname=",
			"Twalk fid=0 newfid=1 rpc",
			"Topen fid=1 mode=2",
			"Twrite fid=1 offset=0 start proto=pass role=client service=smtp server=smtp.example.com user=glenda",
			"Tread fid=1 offset=77 count=4096",
			"Twrite fid=1 offset=79 read",
			"Tread fid=1 offset=83 count=4096",
			"Tclunk fid=1",
		}));
	}

	[Test]
	public void NamespaceVariableWinsOverDisplay()
	{
		Assert.That(Factotum9p.NamespaceDir("/some/where", ":0", "glenda"), Is.EqualTo("/some/where"));
		Assert.That(Factotum9p.NamespaceDir("", ":" + Random.Shared.Next(100000, 999999), "nobody-" + Uniq()), Is.Null,
			"an empty $NAMESPACE counts as unset; /tmp/ns.… does not exist");
	}

	[TestCase(null, "/tmp/ns.glenda.:0")]
	[TestCase("", "/tmp/ns.glenda.:0")]
	[TestCase(":0", "/tmp/ns.glenda.:0")]
	[TestCase(":0.0", "/tmp/ns.glenda.:0")]
	[TestCase(":1.0", "/tmp/ns.glenda.:1")]
	[TestCase(":0.1", "/tmp/ns.glenda.:0.1")]
	[TestCase("localhost:10.0", "/tmp/ns.glenda.localhost:10")]
	[TestCase("localhost:10.00", "/tmp/ns.glenda.localhost:10.00")]
	[TestCase("/tmp/launch-x/:0", "/tmp/ns.glenda._tmp_launch-x_:0")]
	public void NsFromDisplayIsGetns(string? display, string dir) =>
		Assert.That(Factotum9p.NsFromDisplay("glenda", display), Is.EqualTo(dir));

	[Test]
	public void ConnectsThroughTmpNsUserDisplay()
	{
		var user = "f9p" + Uniq();
		var n = Random.Shared.Next(100000, 999999);
		using var d = new Dir($"/tmp/ns.{user}.:{n}");
		using var srv = new NinepServer(d.Socket, Key(user, "pw"));
		Assert.That(Factotum9p.NamespaceDir(null, $":{n}.0", user), Is.EqualTo(d.Path));
		using var f = Factotum9p.TryConnect(null, $":{n}.0", user);
		Assert.That(f, Is.Not.Null);
		Assert.That(f!.GetPassword(Server, null), Is.EqualTo((user, "pw")));
		Assert.That(srv.Requests[1], Is.EqualTo($"Tattach fid=0 afid=4294967295 uname={user} aname="));
	}

	[Test]
	public void NameSpaceDirectoryNotPrivateIsRefused()
	{
		var user = "f9p" + Uniq();
		var n = Random.Shared.Next(100000, 999999);
		using var d = new Dir($"/tmp/ns.{user}.:{n}", Mode700 | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
		using var srv = new NinepServer(d.Socket, Key(user, "pw"));
		Assert.That(Factotum9p.NamespaceDir(null, $":{n}", user), Is.Null);
		Assert.That(Factotum9p.TryConnect(null, $":{n}", user), Is.Null);
		Assert.That(srv.Accepted, Is.Zero);
	}

	[Test]
	public void NoSocketIsNull()
	{
		using var d = new Dir();
		Assert.That(Factotum9p.TryConnect(d.Socket), Is.Null, "nothing there");
		Assert.That(Factotum9p.TryConnect(d.Path, null, "glenda"), Is.Null, "nothing in $NAMESPACE");
		Assert.That(Factotum9p.TryConnect("/nonexistent-" + Uniq() + "/factotum"), Is.Null);

		using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)) {
			// left behind by a factotum that died (moved away from where .NET would unlink it on Dispose)
			s.Bind(new UnixDomainSocketEndPoint(d.Socket + ".tmp"));
			File.Move(d.Socket + ".tmp", d.Socket);
		}
		Assert.That(File.Exists(d.Socket), Is.True);
		Assert.That(Factotum9p.TryConnect(d.Socket), Is.Null, "stale socket");

		File.Delete(d.Socket);
		File.WriteAllText(d.Socket, "not a socket");
		Assert.That(Factotum9p.TryConnect(d.Socket), Is.Null, "plain file");

		Assert.That(Factotum9p.TryConnect("/tmp/" + new string('x', 200)), Is.Null, "longer than sun_path");
	}

	// -- what factotum answers --

	[TestCase("s3 cret")]
	[TestCase("it's")]
	[TestCase("'")]
	[TestCase("''x''")]
	[TestCase("#hash")]
	[TestCase("a=b")]
	[TestCase("tab\there")]
	[TestCase("")]
	[TestCase("ünïcödé ☺")]
	[TestCase("  lead and trail  ")]
	public void PasswordsSurviveQuoting(string password)
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", password) + Key("o'neil x", password + "2"));
		using var f = Factotum9p.TryConnect(d.Socket)!;
		Assert.That(f.GetPassword(Server, "glenda"), Is.EqualTo(("glenda", password)));
		Assert.That(f.GetPassword(Server, "o'neil x"), Is.EqualTo(("o'neil x", password + "2")));
		Assert.That(srv.Requests, Has.Some.EndsWith("server=smtp.example.com user='o''neil x'"));
	}

	[Test]
	public void UserChoosesTheKeyAndNoUserTakesTheFirst()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket,
			Key("bob", "b", "other.example.com") + Key("alice", "a") + Key("bob", "b"));
		using var f = Factotum9p.TryConnect(d.Socket)!;
		Assert.That(f.GetPassword(Server, null), Is.EqualTo(("alice", "a")));
		Assert.That(f.GetPassword(Server, ""), Is.EqualTo(("alice", "a")));
		Assert.That(f.GetPassword(Server, "bob"), Is.EqualTo(("bob", "b")));
		Assert.That(f.GetPassword("other.example.com", null), Is.EqualTo(("bob", "b")));
		Assert.That(srv.Requests, Has.Some.EndsWith(" start proto=pass role=client service=smtp server=smtp.example.com"));
		Assert.That(srv.Accepted, Is.EqualTo(1), "one connection for every question");
		Assert.That(srv.Requests.Count(r => r.StartsWith("Tclunk")), Is.EqualTo(4), "every rpc fid clunked");
	}

	[TestCase(true)]
	[TestCase(false)]
	public void NoKeyIsNull(bool needkey)
	{
		var how = needkey ? NinepServer.NoKeyReply.Needkey : NinepServer.NoKeyReply.Error;
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw") +
			"key proto=pass service=imap server=smtp.example.com user=glenda !password=imap\n") { NoKey = how };
		using var f = Factotum9p.TryConnect(d.Socket)!;
		Assert.That(f.GetPassword("mail.example.com", null), Is.Null, "another server");
		Assert.That(f.GetPassword(Server, "ken"), Is.Null, "another user");
		Assert.That(f.GetPassword(Server, "glenda"), Is.EqualTo(("glenda", "pw")), "and the connection is still good");
	}

	[TestCase("start", "needkey proto=pass role=client service=smtp server=smtp.example.com")]
	[TestCase("start", "error no key matches proto=pass service=smtp")]
	[TestCase("read", "badkey proto=pass user=glenda\nwrong\nproto=pass")]
	[TestCase("read", "error pass client write: no key found")]
	public void KeyRefusalsAreNull(string verb, string reply)
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw")) { Override = r => r.StartsWith(verb) ? reply : null };
		using var f = Factotum9p.TryConnect(d.Socket)!;
		Assert.That(f.GetPassword(Server, null), Is.Null);
	}

	[TestCase("start", "error unknown proto pass", "factotum: unknown proto pass")]
	[TestCase("start", "error", "factotum: unspecified rpc error")]
	[TestCase("start", "hello there", "factotum: malformed rpc response: hello there")]
	[TestCase("read", "ok onlyone", "factotum: bad answer from factotum: onlyone")]
	[TestCase("read", "ok a b c", "factotum: bad answer from factotum: a b c")]
	[TestCase("read", "ok", "factotum: bad answer from factotum: ")]
	[TestCase("read", "toosmall 9000", "factotum: read: reply needs 9000 bytes")]
	[TestCase("read", "phase in state 'write' want 'read'", "factotum: phase error in state 'write' want 'read'")]
	[TestCase("read", "done", "factotum: read: conversation already done")]
	[TestCase("read", "okay", "factotum: malformed rpc response: okay")]
	public void ProtocolTroubleIsIOException(string verb, string reply, string message)
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw")) { Override = r => r.StartsWith(verb) ? reply : null };
		using var f = Factotum9p.TryConnect(d.Socket)!;
		var e = Assert.Throws<IOException>(() => f.GetPassword(Server, null));
		Assert.That(e!.Message, Is.EqualTo(message));
		srv.Override = null;
		Assert.That(f.GetPassword(Server, null), Is.EqualTo(("glenda", "pw")), "an rpc error leaves the connection usable");
	}

	[Test]
	public void MissingRpcFileIsIOException()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw")) { RpcName = "ctl" };
		using var f = Factotum9p.TryConnect(d.Socket)!;
		var e = Assert.Throws<IOException>(() => f.GetPassword(Server, null));
		Assert.That(e!.Message, Is.EqualTo("factotum: file does not exist"));
		srv.RpcName = "rpc";
		Assert.That(f.GetPassword(Server, null), Is.EqualTo(("glenda", "pw")));
	}

	[Test]
	public void NotNinePIsIOException()
	{
		using var d = new Dir();
		using (var srv = new NinepServer(d.Socket) { VersionReply = "unknown" }) {
			var e = Assert.Throws<IOException>(() => Factotum9p.TryConnect(d.Socket));
			Assert.That(e!.Message, Does.StartWith("factotum speaks unknown, not 9P2000"));
		}
		using (var srv = new NinepServer(d.Socket) { BogusVersionSize = 1u << 30 }) {
			var e = Assert.Throws<IOException>(() => Factotum9p.TryConnect(d.Socket));
			Assert.That(e!.Message, Does.StartWith("factotum sent a message of 1073741824 bytes (msize 8192)"));
		}
	}

	[Test]
	public void OversizedRpcIsRefusedBeforeSending()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw"));
		using var f = Factotum9p.TryConnect(d.Socket)!;
		var e = Assert.Throws<IOException>(() => f.GetPassword(new string('x', 5000), null));
		Assert.That(e!.Message, Is.EqualTo("factotum: start: rpc too big"));
		Assert.That(srv.Requests, Has.None.StartsWith("Twrite"));
		Assert.That(f.GetPassword(Server, null), Is.EqualTo(("glenda", "pw")));
	}

	// -- a hung factotum --

	[Test]
	public void DefaultTimeoutIsTenSeconds()
	{
		Assert.That(Factotum9p.DefaultTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket);
		using var f = Factotum9p.TryConnect(d.Socket)!;
		Assert.That(f.Timeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
	}

	[Test]
	public void SilentFactotumTimesOutOnConnect()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket) { Mute = true };
		var sw = Stopwatch.StartNew();
		var e = Assert.Throws<IOException>(() => Factotum9p.TryConnect(d.Socket, TimeSpan.FromSeconds(1)));
		sw.Stop();
		Assert.That(e!.Message, Is.EqualTo($"factotum: no answer in time (at {d.Socket})"));
		Assert.That(sw.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(0.9)).And.LessThan(TimeSpan.FromSeconds(5)));
	}

	[Test]
	public void SilentFactotumTimesOutWithTheDefault()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket) { Mute = true };
		var sw = Stopwatch.StartNew();
		Assert.Throws<IOException>(() => Factotum9p.TryConnect(d.Socket));
		sw.Stop();
		Assert.That(sw.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(9.9)).And.LessThan(TimeSpan.FromSeconds(15)));
	}

	[Test]
	public void StuckConversationTimesOut()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw")) { MuteRpcRead = true };
		using var f = Factotum9p.TryConnect(d.Socket, TimeSpan.FromSeconds(1))!;
		var sw = Stopwatch.StartNew();
		var e = Assert.Throws<IOException>(() => f.GetPassword(Server, null));
		sw.Stop();
		Assert.That(e!.Message, Is.EqualTo("factotum: no answer in time"));
		Assert.That(sw.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(0.9)).And.LessThan(TimeSpan.FromSeconds(5)));
		srv.MuteRpcRead = false;
		e = Assert.Throws<IOException>(() => f.GetPassword(Server, null));
		Assert.That(e!.Message, Is.EqualTo("factotum: connection closed after an earlier error"));
	}

	[Test]
	public void DisposedIsObjectDisposed()
	{
		using var d = new Dir();
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw"));
		var f = Factotum9p.TryConnect(d.Socket)!;
		f.Dispose();
		f.Dispose();
		Assert.Throws<ObjectDisposedException>(() => f.GetPassword(Server, null));
	}

	[Test]
	public void FactotumHangingUpIsIOException()
	{
		using var d = new Dir();
		var srv = new NinepServer(d.Socket, Key("glenda", "pw"));
		using var f = Factotum9p.TryConnect(d.Socket)!;
		srv.Dispose();
		var e = Assert.Throws<IOException>(() => f.GetPassword(Server, null));
		Assert.That(e!.Message, Does.StartWith("factotum"));
	}

	// -- the pieces --

	[TestCase("glenda 's3 cret'", new[] { "glenda", "s3 cret" })]
	[TestCase("'it''s' x", new[] { "it's", "x" })]
	[TestCase("a'b c'd e", new[] { "ab cd", "e" })]
	[TestCase("'' #x", new[] { "", "#x" })]
	[TestCase("  a\t\tb\r\n", new[] { "a", "b" })]
	[TestCase("'open quote", new[] { "open quote" })]
	[TestCase("", new string[0])]
	public void TokenizeIsPlan9s(string s, string[] words) =>
		Assert.That(Factotum9p.Tokenize(s), Is.EqualTo(words));

	[Test]
	public void StartAttrs()
	{
		Assert.That(Factotum9p.StartAttrs(Server, null), Is.EqualTo("proto=pass role=client service=smtp server=smtp.example.com"));
		Assert.That(Factotum9p.StartAttrs(Server, "ken"), Is.EqualTo("proto=pass role=client service=smtp server=smtp.example.com user=ken"));
		Assert.That(Factotum9p.StartAttrs(Server, "a b"), Does.EndWith(" user='a b'"));
	}

	// -- $HOME/lib/factotum --

	[Test]
	public void FactotumFileMatchesServerUserAndSkipsTheRest()
	{
		using var d = new Dir();
		var path = Path.Join(d.Path, "factotum.keys");
		File.WriteAllText(path, """
			# keys for smtp -a

			key proto=pass service=imap server=smtp.example.com user=glenda !password=imap
			key proto=apop server=smtp.example.com user=glenda !password=apop
			key proto=pass service=smtp server=smtp.example.com user=glenda role=server !password=server
			key proto=pass service=smtp server=smtp.example.com user=glenda disabled=by.factotum !password=disabled
			key proto=pass service=smtp server=smtp.example.com !password=nouser
			key proto=pass service=smtp server=smtp.example.com user=nopass
			key proto=pass service=smtp server=smtp.example.com user=glenda !password='s3 cret'   # the one
			key proto=pass service=smtp server=smtp.example.com user=ken !password='it''s'
			   key proto=pass service=smtp server=mail.example.com user=rob !password=rob
			key proto=pass service=smtp server=broken.example.com user=x !password='unclosed
			""");
		var f = new FactotumFile(path);
		Assert.That(f.Path, Is.EqualTo(path));
		Assert.That(f.GetPassword(Server, null), Is.EqualTo(("glenda", "s3 cret")), "user defaults to the first key's");
		Assert.That(f.GetPassword(Server, ""), Is.EqualTo(("glenda", "s3 cret")));
		Assert.That(f.GetPassword(Server, "glenda"), Is.EqualTo(("glenda", "s3 cret")));
		Assert.That(f.GetPassword(Server, "ken"), Is.EqualTo(("ken", "it's")));
		Assert.That(f.GetPassword(Server, "rob"), Is.Null);
		Assert.That(f.GetPassword("mail.example.com", null), Is.EqualTo(("rob", "rob")));
		Assert.That(f.GetPassword("MAIL.example.com", null), Is.Null, "factotum matches exactly");
		Assert.That(f.GetPassword("broken.example.com", null), Is.Null);
		Assert.That(f.GetPassword("nowhere.example.com", null), Is.Null);
	}

	[Test]
	public void FactotumFileMissingIsNull()
	{
		using var d = new Dir();
		Assert.That(new FactotumFile(Path.Join(d.Path, "none")).GetPassword(Server, null), Is.Null);
		Assert.That(new FactotumFile(Path.Join(d.Path, "no/such/dir")).GetPassword(Server, null), Is.Null);
		Assert.That(FactotumFile.Default().Path, Does.EndWith("/lib/factotum"));
	}

	[Test]
	public void BothAreIFactotum()
	{
		using var d = new Dir();
		File.WriteAllText(Path.Join(d.Path, "keys"), Key("glenda", "pw"));
		using var srv = new NinepServer(d.Socket, Key("glenda", "pw"));
		using var f9 = Factotum9p.TryConnect(d.Socket)!;
		foreach (IFactotum f in new IFactotum[] { f9, new FactotumFile(Path.Join(d.Path, "keys")) })
			Assert.That(f.GetPassword(Server, "glenda"), Is.EqualTo(("glenda", "pw")));
	}
}
