using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>A one-question DNS server on 127.0.0.1 for the whitelist's PTR lookup: a name, NXDOMAIN (null), or silence.</summary>
sealed class FakeDns : IDisposable
{
	readonly UdpClient udp = new(new IPEndPoint(IPAddress.Loopback, 0));
	readonly CancellationTokenSource stop = new();
	public int Queries;

	/// <summary>ptr: the answer's labels (any bytes), null for NXDOMAIN; silent: never answer.</summary>
	public FakeDns(byte[][]? ptr, bool silent = false)
	{
		_ = Serve(ptr, silent);
	}

	public FakeDns(string? ptr) : this(ptr?.Split('.').Select(Encoding.Latin1.GetBytes).ToArray()) { }

	public string Server => $"127.0.0.1!{((IPEndPoint)udp.Client.LocalEndPoint!).Port}";

	public Dictionary<string, string> Env => new() { ["dnsserver"] = Server };

	async Task Serve(byte[][]? ptr, bool silent)
	{
		while (!stop.IsCancellationRequested) {
			UdpReceiveResult q;
			try {
				q = await udp.ReceiveAsync(stop.Token);
			} catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) {
				return;
			}
			Interlocked.Increment(ref Queries);
			if (silent)
				continue;
			var b = q.Buffer;
			var end = 12;
			while (end < b.Length && b[end] != 0)
				end += b[end] + 1;
			end += 5; // the root label, QTYPE, QCLASS
			var r = new List<byte> { b[0], b[1], 0x81, (byte)(ptr is null ? 0x83 : 0x80), 0, 1, 0, (byte)(ptr is null ? 0 : 1), 0, 0, 0, 0 };
			r.AddRange(b[12..end]);
			if (ptr is not null) {
				var rdata = new List<byte>();
				foreach (var l in ptr) {
					rdata.Add((byte)l.Length);
					rdata.AddRange(l);
				}
				rdata.Add(0);
				r.AddRange([0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 0, 60, (byte)(rdata.Count >> 8), (byte)rdata.Count]);
				r.AddRange(rdata);
			}
			await udp.SendAsync(r.ToArray(), q.RemoteEndPoint);
		}
	}

	public void Dispose()
	{
		stop.Cancel();
		udp.Dispose();
	}
}

/// <summary>-g: whitelist, markers, the 451 and hang-up, hostile names, IPv6, concurrency, expiry (smtpd.md §11).</summary>
public class GreylistTests
{
	const string Hello = "HELO client.9fans.net\r\n";
	const string Tx = "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\n";
	const string Grey = "451 4.7.1 please try again soon from the same IP.";
	const string Sent = "250 2.5.0 sent";

	static string[] Lines(string s) => s.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

	/// <summary>A tree with an empty whitelist (greylisting on).</summary>
	static Tree NewTree(string peer = "127.0.0.2", string local = "127.0.0.1")
	{
		var t = new Tree(peer: peer, local: local);
		t.Write("/mail/grey/whitelist", "");
		return t;
	}

	static string Marker(Tree t, string user, string l = "127.0.0.1", string r = "127.0.0.2") =>
		t.P($"/mail/grey/tmp/{l}/{r}/{user}");

	static void Age(string path, TimeSpan ago) => File.SetLastWriteTimeUtc(path, DateTime.UtcNow - ago);

	static RunResult Run(Tree t, string input, FakeDns? dns = null) =>
		t.Run(Encoding.Latin1.GetBytes(input), ["-g"], (dns ?? NoDns).Env);

	// a DNS server that says NXDOMAIN at once, so no test waits for the real resolver
	static readonly FakeDns NoDns = new((string?)null);

	[OneTimeTearDown]
	public void StopDns() => NoDns.Dispose();

	static void AssertGreylisted(Tree t, RunResult r)
	{
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(Grey));
		Assert.That(r.Out, Does.Not.Contain("354"));
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Captures(), Is.Empty, "the mailer must not run");
		Assert.That(t.Log()[^1], Is.EqualTo("no recent call from 127.0.0.2 for a rcpt; rejecting with temporary failure"));
	}

	[Test]
	public void FirstCallRegistersAndHangsUp()
	{
		using var t = NewTree();
		var r = Run(t, Hello + Tx + "QUIT\r\n");
		AssertGreylisted(t, r);
		Assert.That(Lines(r.Out)[^2], Is.EqualTo("250 2.0.0 receiver is example.com!bob"));
		Assert.That(File.Exists(Marker(t, "bob")), Is.True);
		Assert.That(File.ReadAllBytes(Marker(t, "bob")), Is.Empty);
		Assert.That(File.GetUnixFileMode(Marker(t, "bob")), Is.EqualTo((UnixFileMode)0x1b6), "0666");
		Assert.That(File.GetUnixFileMode(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.2")), Is.EqualTo((UnixFileMode)0x1ff), "0777");
		Assert.That(t.Log(), Is.EqualTo(new[] {
			"helo from 127.0.0.2 as client.9fans.net",
			"no call registered for 127.0.0.2/example.com!bob; registering",
			"no recent call from 127.0.0.2 for a rcpt; rejecting with temporary failure",
		}));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.Empty);
	}

	[Test]
	public void ImmediateRetryIsStillGreyAndTouchesTheMarker()
	{
		using var t = NewTree();
		Run(t, Hello + Tx);
		var before = DateTime.UtcNow.AddSeconds(-2);
		Age(Marker(t, "bob"), TimeSpan.FromSeconds(60));
		var r = Run(t, Hello + Tx);
		AssertGreylisted(t, r);
		Assert.That(t.Log(), Does.Contain("call for 127.0.0.2/example.com!bob was just minutes ago or long ago"));
		Assert.That(File.ReadAllText(Marker(t, "bob")), Is.EqualTo("x"));
		Assert.That(File.GetLastWriteTimeUtc(Marker(t, "bob")), Is.GreaterThan(before), "touched: mtime is now");
		Assert.That(t.Read("/mail/grey/whitelist"), Is.Empty);
	}

	[Test]
	public void RetryAfterTenMinutesIsDeliveredAndWhitelisted()
	{
		using var t = NewTree();
		Run(t, Hello + Tx);
		Age(Marker(t, "bob"), TimeSpan.FromMinutes(10));
		var r = Run(t, Hello + Tx + "QUIT\r\n");
		Assert.That(r.Out, Does.Contain("354 Input message"));
		Assert.That(Lines(r.Out)[^2], Is.EqualTo(Sent));
		Assert.That(r.Exit, Is.EqualTo(0));
		Assert.That(t.Captures(), Has.Count.EqualTo(1));
		Assert.That(t.Log(), Does.Contain("127.0.0.2/example.com!bob was grey; adding IP to white"));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("127.0.0.2\n"));
		Assert.That(File.ReadAllText(Marker(t, "bob")), Is.EqualTo("x"));
	}

	[Test]
	public void OneRecentRecipientIsEnough()
	{
		using var t = NewTree();
		var two = Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\nx\r\n.\r\n";
		Run(t, Hello + Tx);
		Age(Marker(t, "bob"), TimeSpan.FromMinutes(10));
		var r = Run(t, two);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(Sent));
		Assert.That(t.Log(), Does.Contain("no call registered for 127.0.0.2/example.com!carol; registering"));
		Assert.That(File.Exists(Marker(t, "carol")), Is.True);
		Assert.That(t.Captures()[0].Args, Is.EqualTo(new[] { "-r", "--", "example.com!bob", "example.com!carol" }));
	}

	[Test]
	public void TheWhitelistLineCarriesTheDnsName()
	{
		using var t = NewTree();
		using var dns = new FakeDns("mx1.9fans.net");
		Run(t, Hello + Tx);
		Age(Marker(t, "bob"), TimeSpan.FromMinutes(10));
		Assert.That(Lines(Run(t, Hello + Tx, dns).Out)[^1], Is.EqualTo(Sent));
		Assert.That(dns.Queries, Is.GreaterThan(0));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("127.0.0.2 mx1.9fans.net\n"));
	}

	[Test]
	public void AHostileDnsNameIsNotWritten()
	{
		using var t = NewTree();
		// a PTR whose labels hold a space and a newline: written raw, it would whitelist the world
		using var dns = new FakeDns([Encoding.Latin1.GetBytes("mx 0.0.0.0/0\n0.0.0.0/0"), "9fans"u8.ToArray(), "net"u8.ToArray()]);
		Run(t, Hello + Tx);
		Age(Marker(t, "bob"), TimeSpan.FromMinutes(10));
		Assert.That(Lines(Run(t, Hello + Tx, dns).Out)[^1], Is.EqualTo(Sent));
		Assert.That(dns.Queries, Is.GreaterThan(0));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("127.0.0.2\n"));
	}

	[Test]
	public void ASilentDnsServerCostsAtMostAFewSeconds()
	{
		using var t = NewTree();
		using var dns = new FakeDns(null, silent: true);
		Run(t, Hello + Tx);
		Age(Marker(t, "bob"), TimeSpan.FromMinutes(10));
		var sw = Stopwatch.StartNew();
		Assert.That(Lines(Run(t, Hello + Tx, dns).Out)[^1], Is.EqualTo(Sent));
		// the greylist's own look-up costs a few seconds; since issue 12 SPF at MAIL waits for the same silent
		// server too (the resolver's 2 tries of 5 s, then temperror), once per session
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(6 + 12)));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("127.0.0.2\n"));
	}

	[Test]
	public void NextCallFromAWhitelistedAddressSkipsTheMarkers()
	{
		using var t = NewTree();
		t.Write("/mail/grey/whitelist", "127.0.0.2 mx1.9fans.net\n");
		var r = Run(t, Hello + Tx + Tx + "QUIT\r\n");
		Assert.That(Lines(r.Out).Count(l => l == Sent), Is.EqualTo(2));
		Assert.That(r.Exit, Is.EqualTo(0));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/grey/tmp")), Is.Empty);
		Assert.That(t.Log().Where(l => l.Contains("regist") || l.Contains("grey") || l.Contains("call")), Is.Empty);
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("127.0.0.2 mx1.9fans.net\n"), "nothing appended");
		t.Peer("127.0.1.2");
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Grey), "another /24 is greylisted");
	}

	[TestCase("127.0.0.99\n", true)] // a bare address is its /24 (Bell Labs)
	[TestCase("127.0.1.2\n", false)]
	[TestCase("127.0.0.0/30\n", true)]
	[TestCase("127.0.0.4/30\n", false)]
	[TestCase("127.0.0.2/32 mx1.9fans.net some words\n", true)]
	[TestCase("10.0.0.0/8\tlabs\n127.0.0.3/32\tnot us\n127.0.0.2/31\tus\n", true)]
	[TestCase("# 127.0.0.2 is commented out\n\n#127.0.0.2\n", false)]
	[TestCase("\n\n# ours\n127.0.0.2\r\n", true)]
	[TestCase(" 127.0.0.2\n", false)] // the entry is the text before the first blank: none here
	[TestCase("junk\n127.0.0.2/99\n::1\n", false)]
	[TestCase("junk\n127.0.0.2", true)] // no final newline
	[TestCase("127.0.0\n", true)] // a partial address: its /24
	public void WhitelistEntries(string whitelist, bool passes)
	{
		using var t = NewTree();
		t.Write("/mail/grey/whitelist", whitelist);
		var r = Run(t, Hello + Tx);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(passes ? Sent : Grey));
		Assert.That(Directory.Exists(t.P("/mail/grey/tmp/127.0.0.1")), Is.EqualTo(!passes));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo(whitelist));
		t.Peer("192.0.2.9");
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Grey), "covers no other address");
	}

	[Test]
	public void MissingWhitelistTurnsGreylistingOffAndSaysSoOnce()
	{
		using var t = new Tree();
		var r = Run(t, Hello + Tx + Tx + "QUIT\r\n");
		Assert.That(Lines(r.Out).Count(l => l == Sent), Is.EqualTo(2));
		Assert.That(t.Log().Count(l => l == "greylisting (-g) is off: no /mail/grey/whitelist"), Is.EqualTo(1));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/grey/tmp")), Is.Empty);
		Assert.That(File.Exists(t.P("/mail/grey/whitelist")), Is.False, "smtpd never creates it");
		// without -g nothing is said
		using var t2 = new Tree();
		t2.Run(Hello + Tx);
		Assert.That(t2.Log().Where(l => l.Contains("greylisting")), Is.Empty);
	}

	[Test]
	public void TheWhitelistIsReadAtEachCheck()
	{
		using var t = new Tree();
		var psi = t.Start(["-g"], NoDns.Env);
		using var c = new Client(Process.Start(psi)!);
		Assert.That(c.Reply()[^1], Is.EqualTo("220 "));
		c.Ask("HELO client.9fans.net");
		c.Ask("MAIL FROM:<alice@9fans.net>");
		c.Ask("RCPT TO:<bob@example.com>");
		Assert.That(c.Ask("DATA"), Does.StartWith("354"));
		Assert.That(c.Ask("x\r\n."), Is.EqualTo(Sent));
		// the administrator installs the whitelist during the connection: the next DATA is greylisted
		t.Write("/mail/grey/whitelist", "192.0.2.1\n");
		c.Ask("MAIL FROM:<alice@9fans.net>");
		c.Ask("RCPT TO:<bob@example.com>");
		Assert.That(c.Ask("DATA"), Is.EqualTo(Grey));
		Assert.That(c.Line(), Is.Null, "the connection is closed");
		Assert.That(c.Exit(), Is.EqualTo(1));
	}

	[Test]
	public void TrustedClientsAreNeverGreylisted()
	{
		using var t = NewTree(peer: "10.1.2.3");
		var r = Run(t, Hello + Tx);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(Sent));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/grey/tmp")), Is.Empty);
		Assert.That(t.Read("/mail/grey/whitelist"), Is.Empty);
		t.Peer("11.1.2.3");
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Grey), "an untrusted one is");
	}

	[Test]
	public void TheWindowIsFiveMinutesToFourteenHours()
	{
		foreach (var (ago, passes) in new[] { (TimeSpan.FromMinutes(4), false), (TimeSpan.FromMinutes(6), true), (TimeSpan.FromHours(13.9), true), (TimeSpan.FromHours(14.1), false), (TimeSpan.FromDays(30), false) }) {
			using var t = NewTree();
			Run(t, Hello + Tx);
			Age(Marker(t, "bob"), ago);
			var r = Run(t, Hello + Tx);
			Assert.That(Lines(r.Out)[^1], Is.EqualTo(passes ? Sent : Grey), ago.ToString());
			Assert.That(t.Log(), Does.Contain(passes
				? "127.0.0.2/example.com!bob was grey; adding IP to white"
				: "call for 127.0.0.2/example.com!bob was just minutes ago or long ago"), ago.ToString());
			Assert.That(File.Exists(Marker(t, "bob")), Is.True, "the checked marker is kept, touched");
			Assert.That(File.GetLastWriteTimeUtc(Marker(t, "bob")), Is.GreaterThan(DateTime.UtcNow.AddMinutes(-1)));
		}
	}

	[Test]
	public void MarkersPastTheWindowAreRemovedFromTheCheckedDirectoryOnly()
	{
		using var t = NewTree();
		Directory.CreateDirectory(Path.GetDirectoryName(Marker(t, "x"))!);
		Directory.CreateDirectory(Path.GetDirectoryName(Marker(t, "x", r: "127.0.0.3"))!);
		foreach (var (path, ago) in new[] {
			(Marker(t, "carol"), TimeSpan.FromHours(15)),
			(Marker(t, "dave"), TimeSpan.FromHours(1)),
			(Marker(t, "erin"), TimeSpan.FromHours(13)),
			(Marker(t, "frank", r: "127.0.0.3"), TimeSpan.FromHours(15)),
		}) {
			File.WriteAllText(path, "");
			Age(path, ago);
		}
		AssertGreylisted(t, Run(t, Hello + Tx));
		Assert.That(File.Exists(Marker(t, "carol")), Is.False, "15 h old: gone");
		Assert.That(File.Exists(Marker(t, "dave")), Is.True);
		Assert.That(File.Exists(Marker(t, "erin")), Is.True);
		Assert.That(File.Exists(Marker(t, "bob")), Is.True);
		Assert.That(File.Exists(Marker(t, "frank", r: "127.0.0.3")), Is.True, "another client's directory is not swept");
	}

	[Test]
	public void TheCleaningLineOfTheManPageWorks()
	{
		using var t = NewTree();
		Run(t, Hello + Tx);
		t.Peer("127.0.0.3");
		Run(t, Hello + Tx);
		Age(Marker(t, "bob"), TimeSpan.FromHours(15));
		var p = Process.Start(new ProcessStartInfo("sh", ["-c",
			"find $PLAN9/mail/grey/tmp -type f -mmin +840 -delete; find $PLAN9/mail/grey/tmp -mindepth 1 -type d -empty -delete"]) {
			Environment = { ["PLAN9"] = t.Dir },
		})!;
		p.WaitForExit();
		Assert.That(p.ExitCode, Is.EqualTo(0));
		Assert.That(Directory.Exists(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.2")), Is.False);
		Assert.That(File.Exists(Marker(t, "bob", r: "127.0.0.3")), Is.True);
		Assert.That(Directory.Exists(t.P("/mail/grey/tmp")), Is.True);
	}

	/// <summary>Every file below the tree, relative to it.</summary>
	static HashSet<string> Files(Tree t) =>
		Directory.EnumerateFileSystemEntries(t.Dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(t.Dir, f)).ToHashSet();

	static readonly Regex SafeName = new(@"^[A-Za-z0-9_+%~-][A-Za-z0-9._+%~-]{0,199}$");

	[Test]
	public void HostileRecipientsStayInTheirDirectory()
	{
		using var t = NewTree();
		var rcpts = new[] {
			"../../../x@example.com",		// a syntax error (a dot-string cannot start with '.')
			"\"../../etc\"@example.com",
			"\"../../../../../../tmp/pwned\"@example.com",
			"a/b@example.com",			// '/' is a legal string character
			"\\.\\./\\.\\./\\.\\./pwned@example.com",
			"\\.@example.com",
			"\\.\\.@example.com",
			"x!\\.\\.@example.com",			// the user is the text after the last '!'
			"example.com!..!..!etc",
			"\".hidden\"@example.com",
			"\"a\tb\"@example.com",			// a control character
			"\"\"@example.com",
			"%2E%2E@example.com",			// looks like an escape
			"-rf@example.com",
			new string('a', 300) + "@example.com",
			new string('a', 299) + "b@example.com",
			string.Concat(Enumerable.Repeat("../", 100)) + "x@example.com",
			"\"" + string.Concat(Enumerable.Repeat("../", 100)) + "x\"@example.com",
			"b\u00e9@example.com",			// 8-bit: refused (no SMTPUTF8)
		};
		var before = Files(t);
		var input = Hello + "MAIL FROM:<alice@9fans.net>\r\n" + string.Concat(rcpts.Select(r => $"RCPT TO:<{r}>\r\n")) + "DATA\r\n";
		var r = Run(t, input);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(Grey));
		var dir = Path.Join("mail", "grey", "tmp", "127.0.0.1", "127.0.0.2");
		var added = Files(t).Except(before).Where(f => f != Path.Join("mail", "grey", "tmp", "127.0.0.1") && f != dir).ToList();
		foreach (var f in added) {
			Assert.That(Path.GetDirectoryName(f), Is.EqualTo(dir), f);
			Assert.That(SafeName.IsMatch(Path.GetFileName(f)), Is.True, f);
			Assert.That(File.GetAttributes(t.P(f)).HasFlag(FileAttributes.Directory), Is.False, f);
		}
		var names = added.Select(Path.GetFileName).ToHashSet();
		Assert.That(names, Is.SupersetOf(new[] {
			"%22..%2F..%2Fetc%22", "a%2Fb", "%2E.%2F..%2F..%2Fpwned", "%2E", "%2E.", "%22.hidden%22", "%22%22", "%252E%252E",
		}));
		// a control character or a leading '-' is refused at RCPT (decisions #22): no marker
		Assert.That(names, Has.None.EqualTo("%22a%09b%22").And.None.EqualTo("-rf"));
		// the long names: hashed, distinct, and well under NAME_MAX
		var hashed = names.Where(n => n!.Contains("%~")).ToList();
		Assert.That(hashed, Has.Count.EqualTo(3));
		Assert.That(hashed.All(n => n!.Length <= 200), Is.True);
		Assert.That(hashed.Count(n => n!.StartsWith(new string('a', 120))), Is.EqualTo(2));
		// nothing escaped the tree's marker directory
		Assert.That(File.Exists(t.P("/tmp/pwned")) || File.Exists("/tmp/pwned"), Is.False);
		Assert.That(t.Log(), Does.Contain("no call registered for 127.0.0.2/example.com!\"../../etc\"; registering"));

		// the same hostile names map to the same markers the next time
		var markers = added.Count;
		Run(t, input);
		Assert.That(Files(t).Except(before).Count(), Is.EqualTo(markers + 2));
		Assert.That(File.ReadAllText(t.P(Path.Join(dir, "a%2Fb"))), Is.EqualTo("x"));
	}

	[Test]
	public void HostileAddressesFromTheNetDirAreEscaped()
	{
		using var t = NewTree(peer: "../../../../x", local: "..");
		var r = Run(t, Hello + Tx);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(Grey));
		var m = t.P("/mail/grey/tmp/%2E./%2E.%2F..%2F..%2F..%2Fx/bob");
		Assert.That(File.Exists(m), Is.True);
		Age(m, TimeSpan.FromMinutes(10));
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Sent));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.Empty, "not an address: nothing worth whitelisting");
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/grey/tmp")), Has.Length.EqualTo(1));
	}

	[Test]
	public void ASymlinkPlantedInTheTreeIsNotFollowed()
	{
		using var t = NewTree();
		var victim = t.P("/victim");
		File.WriteAllText(victim, "precious");
		Directory.CreateDirectory(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.2"));
		File.CreateSymbolicLink(Marker(t, "bob"), victim);
		AssertGreylisted(t, Run(t, Hello + Tx));
		Assert.That(File.ReadAllText(victim), Is.EqualTo("precious"));
		// a symlinked directory too
		var elsewhere = t.P("/elsewhere");
		Directory.CreateDirectory(elsewhere);
		t.Peer("127.0.0.3");
		Directory.CreateSymbolicLink(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.3"), elsewhere);
		Run(t, Hello + Tx);
		Assert.That(Directory.GetFileSystemEntries(elsewhere), Is.Empty);
		Assert.That(t.Log(), Has.Some.StartsWith("greylist: can't make /mail/grey/tmp/127.0.0.1/127.0.0.3:"));
	}

	[Test]
	public void AMissingTmpIsMade()
	{
		using var t = NewTree();
		Directory.Delete(t.P("/mail/grey/tmp"));
		AssertGreylisted(t, Run(t, Hello + Tx));
		Assert.That(File.Exists(Marker(t, "bob")), Is.True);
		Assert.That(File.GetUnixFileMode(t.P("/mail/grey/tmp")), Is.EqualTo((UnixFileMode)0x1ff));
	}

	[Test]
	public void AFifoInPlaceOfAMarkerDoesNotHang()
	{
		using var t = NewTree();
		Directory.CreateDirectory(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.2"));
		using (var mk = Process.Start("mkfifo", [Marker(t, "bob")]))
			mk.WaitForExit();
		AssertGreylisted(t, Run(t, Hello + Tx));
		Assert.That(t.Log(), Has.Some.StartsWith("greylist: can't open /mail/grey/tmp/127.0.0.1/127.0.0.2/bob: "));
	}

	[Test]
	public void IPv6()
	{
		using var t = NewTree(peer: "2001:db8::7", local: "2001:db8::25");
		var r = Run(t, Hello + Tx);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo(Grey));
		Assert.That(t.Log(), Does.Contain("no call registered for 2001:db8::7/example.com!bob; registering"));
		var m = Marker(t, "bob", "2001:db8::25", "2001:db8::7");
		Assert.That(File.Exists(m), Is.True);
		Age(m, TimeSpan.FromMinutes(10));
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Sent));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("2001:db8::7\n"));
		// on the whitelist now (an IPv6 address alone is a /128), and networks work
		File.Delete(m);
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Sent));
		Assert.That(File.Exists(m), Is.False);
		t.Peer("2001:db8::8", "2001:db8::25");
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Grey));
		File.AppendAllText(t.P("/mail/grey/whitelist"), "2001:db8::/32 the whole lot\n");
		t.Peer("2001:db8:0:1::9", "2001:db8::25");
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Sent));
	}

	[Test]
	public void IPv4MappedAddressesAreWrittenAsIPv4()
	{
		using var t = NewTree(peer: "::ffff:127.0.0.2", local: "::ffff:127.0.0.1");
		Run(t, Hello + Tx);
		Assert.That(File.Exists(Marker(t, "bob")), Is.True);
		Age(Marker(t, "bob"), TimeSpan.FromMinutes(10));
		Assert.That(Lines(Run(t, Hello + Tx).Out)[^1], Is.EqualTo(Sent));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.EqualTo("127.0.0.2\n"));
	}

	static Process StartAt(Tree t, string netdir, string input, FakeDns dns)
	{
		var psi = t.Start(["-n", netdir, "-g"], dns.Env, netdir: false);
		var p = Process.Start(psi)!;
		p.StandardInput.Write(input);
		p.StandardInput.Close();
		return p;
	}

	[Test]
	public void ConcurrentAppendsKeepEveryLineWhole()
	{
		using var t = NewTree();
		// a long name makes each line ~230 bytes, so torn writes would show
		var longName = string.Join('.', Enumerable.Repeat(new string('m', 50), 4)) + ".9fans.net";
		using var dns = new FakeDns(longName);
		const int n = 10;
		t.Write("/mail/grey/whitelist", "# the administrator's own\n10.0.0.0/8\n");
		for (var i = 0; i < n; i++) {
			var nd = t.P($"/net/tcp/{100 + i}");
			Directory.CreateDirectory(nd);
			// one /24 each: a whitelisted bare address covers its /24
			File.WriteAllText(Path.Join(nd, "remote"), $"127.0.{100 + i}.2!40000\n");
			File.WriteAllText(Path.Join(nd, "local"), "127.0.0.1!25\n");
			var m = Marker(t, "bob", r: $"127.0.{100 + i}.2");
			Directory.CreateDirectory(Path.GetDirectoryName(m)!);
			File.WriteAllText(m, "");
			Age(m, TimeSpan.FromMinutes(10));
		}
		var procs = Enumerable.Range(0, n).Select(i => StartAt(t, t.P($"/net/tcp/{100 + i}"), Hello + Tx + "QUIT\r\n", dns)).ToList();
		// meanwhile the administrator appends too, with the shell's >> (O_APPEND; .NET's Append mode only seeks)
		using (var sh = Process.Start(new ProcessStartInfo("sh", ["-c", $"for i in 0 1 2 3 4 5 6 7 8 9; do echo 192.0.2.$i by hand >>{t.P("/mail/grey/whitelist")}; done"]))!)
			sh.WaitForExit();
		foreach (var p in procs) {
			var o = p.StandardOutput.ReadToEnd();
			Assert.That(p.WaitForExit(60_000), Is.True);
			Assert.That(o, Does.Contain(Sent));
			Assert.That(p.ExitCode, Is.EqualTo(0));
			p.Dispose();
		}
		var text = t.Read("/mail/grey/whitelist");
		Assert.That(text, Does.EndWith("\n"));
		var lines = text.Split('\n')[..^1];
		Assert.That(lines, Has.Length.EqualTo(2 + 2 * n));
		var ours = lines.Where(l => l.StartsWith("127.")).ToList();
		Assert.That(ours, Has.Count.EqualTo(n));
		Assert.That(ours.All(l => Regex.IsMatch(l, $@"^127\.0\.1[01]\d\.2 {Regex.Escape(longName)}$")), Is.True, string.Join("\n", ours));
		Assert.That(ours.Select(l => l.Split(' ')[0]).Distinct().Count(), Is.EqualTo(n));
		Assert.That(lines.Count(l => Regex.IsMatch(l, @"^192\.0\.2\.\d by hand$")), Is.EqualTo(n));
	}

	[Test]
	public void ConcurrentCallsForOneTripletShareOneMarker()
	{
		using var t = NewTree();
		const int n = 10;
		var procs = Enumerable.Range(0, n).Select(_ => StartAt(t, t.NetDir, Hello + Tx, NoDns)).ToList();
		foreach (var p in procs) {
			var o = p.StandardOutput.ReadToEnd();
			Assert.That(p.WaitForExit(60_000), Is.True);
			Assert.That(Lines(o)[^1], Is.EqualTo(Grey));
			Assert.That(p.ExitCode, Is.EqualTo(1));
			p.Dispose();
		}
		Assert.That(Directory.GetFiles(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.2")), Is.EqualTo(new[] { Marker(t, "bob") }));
		Assert.That(File.ReadAllText(Marker(t, "bob")), Is.AnyOf("", "x"));
		Assert.That(t.Log().Count(l => l == "no call registered for 127.0.0.2/example.com!bob; registering"), Is.EqualTo(1));
		Assert.That(t.Log().Count(l => l == "call for 127.0.0.2/example.com!bob was just minutes ago or long ago"), Is.EqualTo(n - 1));
		Assert.That(t.Read("/mail/grey/whitelist"), Is.Empty);
	}

	[TestCase("bob", "bob")]
	[TestCase("john.smith", "john.smith")]
	[TestCase("a+tag", "a+tag")]
	[TestCase("", "%")]
	[TestCase(".", "%2E")]
	[TestCase("..", "%2E.")]
	[TestCase("a/b", "a%2Fb")]
	[TestCase("a%b", "a%25b")]
	[TestCase("a\0b", "a%00b")]
	[TestCase("\u00e9", "%C3%A9")]
	public void SafeNames(string user, string want) => Assert.That(Greylist.SafeName(user), Is.EqualTo(want));

	[Test]
	public void LongSafeNamesAreCutWithoutSplittingAnEscape()
	{
		foreach (var pad in new[] { 117, 118, 119, 120 }) {
			var s = Greylist.SafeName(new string('a', pad) + new string('/', 100));
			Assert.That(s.Length, Is.LessThanOrEqualTo(200));
			Assert.That(Regex.IsMatch(s, @"^a+(%2F)*%~[0-9a-f]{64}$"), Is.True, s);
		}
		Assert.That(Greylist.SafeName(new string('a', 201)), Is.Not.EqualTo(Greylist.SafeName(new string('a', 202))));
		Assert.That(Greylist.SafeName(new string('a', 200)), Is.EqualTo(new string('a', 200)));
	}

	[TestCase("192.0.2.7", "192.0.2.7")]
	[TestCase("::ffff:192.0.2.7", "192.0.2.7")]
	[TestCase("2001:db8::7", "2001:db8::7")]
	[TestCase("2001:0db8:0:0::7", "2001:db8::7")]
	[TestCase("???", "%3F%3F%3F")]
	[TestCase("..", "%2E.")]
	[TestCase("1.2.3.4/../..", "1.2.3.4%2F..%2F..")]
	public void SysNames(string sys, string want) => Assert.That(Greylist.SysName(sys), Is.EqualTo(want));
}
