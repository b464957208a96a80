using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>
/// Issue 9, the smtpd side: time per session (items 10), per-client limits and greylist markers
/// (item 12), and the files smtpd makes in world-writable directories (item 9).
/// </summary>
public class SmtpdHardeningLimitsTests
{
	const string Hello = "HELO client.9fans.net\r\n";
	static readonly string[] Months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

	static string[] Lines(string s) => s.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

	static void Greeted(Client c)
	{
		Assert.That(c.Line(), Is.EqualTo("220-example.com ESMTP"));
		Assert.That(c.Line(), Is.EqualTo("220 "));
	}

	// ---- 10. every read and write is bounded ----

	[Test]
	public void AClientDribblingOneByteEveryTwoSecondsIsCutAtTheSessionDeadline()
	{
		using var t = new Tree(Tree.DefaultConf + "sessiontimeout 8\nmaxperip 1\n");
		using var l = new Listening(t);
		var sw = Stopwatch.StartNew();
		var c = l.Connect("127.0.0.2");
		Greeted(c);
		var reply = Task.Run(() => c.Line(25_000));
		var text = Encoding.ASCII.GetBytes("NOOP NOOP NOOP NOOP NOOP NOOP NOOP");
		for (var i = 0; !reply.IsCompleted && sw.Elapsed < TimeSpan.FromSeconds(20); i++) {
			try {
				c.Send(text[(i % text.Length)..(i % text.Length + 1)]);
			} catch (IOException) {
				break;
			}
			reply.Wait(TimeSpan.FromSeconds(2));
		}
		Assert.That(reply.Wait(TimeSpan.FromSeconds(10)), Is.True, "smtpd never gave up on the line");
		Assert.That(reply.Result, Is.EqualTo("421 4.4.2 example.com timeout, closing connection"));
		Assert.That(sw.Elapsed.TotalSeconds, Is.InRange(7.0, 11.0));
		Wait.Until(() => NewSessionServed(l), () => "the slot was not freed", TimeSpan.FromSeconds(5), 250);
	}

	/// <summary>A new connection from the same address (maxperip 1) gets the greeting, not the 421.</summary>
	static bool NewSessionServed(Listening l)
	{
		var c = l.Connect("127.0.0.2");
		try {
			return c.Line(10_000) == "220-example.com ESMTP";
		} finally {
			c.Dispose();
		}
	}

	[Test]
	public void AClientThatNeverReadsDoesNotHoldItsSlot()
	{
		using var t = new Tree(Tree.DefaultConf + "idletimeout 3\nsessiontimeout 60\nmaxperip 1\n");
		using var l = new Listening(t);
		var tcp = new TcpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.2"), 0)) { ReceiveBufferSize = 4096 };
		tcp.Connect(l.Endpoint);
		var s = tcp.GetStream();
		// pipelined NOOPs, never a reply read: megabytes of replies for a window of a few kilobytes
		var flood = Task.Run(() => {
			var chunk = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("NOOP\r\n", 10_000)));
			try {
				for (var i = 0; i < 100; i++)
					s.Write(chunk);
			} catch (Exception e) when (e is IOException or ObjectDisposedException) {
			}
		});
		try {
			Thread.Sleep(1000);
			Assert.That(NewSessionServed(l), Is.False, "the flooding session holds the only slot for now");
			Wait.Until(() => NewSessionServed(l), () => "a client that never reads kept its slot", TimeSpan.FromSeconds(20), 500);
			Assert.That(t.Log(), Does.Contain("note: 127.0.0.2 did not read its replies; closing connection"));
		} finally {
			tcp.Dispose();
			flood.Wait(TimeSpan.FromSeconds(10));
		}
	}

	[Test]
	public void AuthContinuationIsBoundedByTheSessionDeadline()
	{
		using var t = new Tree(Tree.DefaultConf + "sessiontimeout 6\n");
		t.Write("/mail/lib/smtpd.keys", "key proto=pass service=smtp user=glenda !password=secret\n", 0x180);
		using var l = new Listening(t, "127.0.0.1", "-p");
		var sw = Stopwatch.StartNew();
		var c = l.Connect("127.0.0.2");
		Greeted(c);
		Assert.That(c.Ask("EHLO client.9fans.net"), Does.EndWith("250 AUTH CRAM-MD5 PLAIN LOGIN"));
		Assert.That(c.Ask("AUTH LOGIN"), Is.EqualTo("334 VXNlcm5hbWU6"));
		var reply = Task.Run(() => c.Line(25_000));
		for (var i = 0; !reply.IsCompleted && sw.Elapsed < TimeSpan.FromSeconds(20); i++) {
			try {
				c.Send("Z");
			} catch (IOException) {
				break;
			}
			reply.Wait(TimeSpan.FromSeconds(1));
		}
		Assert.That(reply.Wait(TimeSpan.FromSeconds(10)), Is.True);
		Assert.That(reply.Result, Is.EqualTo("421 4.4.2 example.com timeout, closing connection"));
		Assert.That(sw.Elapsed.TotalSeconds, Is.InRange(5.0, 9.0));
	}

	// ---- 12. per-client limits and greylist markers ----

	[TestCase("192.0.2.7", "192.0.2.7")]
	[TestCase("::ffff:192.0.2.7", "192.0.2.7")]
	[TestCase("2001:db8:1:2::1", "2001:db8:1:2::/64")]
	[TestCase("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64")]
	[TestCase("2001:db8:1:3::1", "2001:db8:1:3::/64")]
	[TestCase("::1", "::/64")]
	public void MaxperipCountsAnIpv6ClientPerSlash64(string rsys, string key) =>
		Assert.That(Listener.ClientKey(rsys), Is.EqualTo(key));

	[Test]
	public void MaxperipStillCountsIpv6LoopbackSessions()
	{
		using var t = new Tree(Tree.DefaultConf + "maxperip 1\n");
		using var l = new Listening(t, "::1");
		var a = l.Connect();
		Greeted(a);
		var b = l.Connect();
		Assert.That(b.Line(), Is.EqualTo("421 4.7.0 example.com too many connections from ::1, try again later"));
		Assert.That(a.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
	}

	[Test]
	public void ARecipientRefusedAtRcptMakesNoGreylistMarker()
	{
		using var t = new Tree();
		t.Write("/mail/grey/whitelist", "");
		t.Write("/mail/lib/names.blocked", "example.com!carol\n");
		t.Write("/mail/lib/validateaddress", "#!/bin/sh\n[ \"$1\" != example.com!dave ]\n", 0x1ed);
		var r = t.Run(Hello + "MAIL FROM:<alice@9fans.net>\r\n" +
			"RCPT TO:<x@elsewhere.net>\r\nRCPT TO:<-x>\r\nRCPT TO:<carol@example.com>\r\nRCPT TO:<dave@example.com>\r\nRCPT TO:<x@2130706435>\r\n" +
			"RCPT TO:<bob@example.com>\r\nDATA\r\n", "-f", "-g");
		var l = Lines(r.Out);
		Assert.That(l[^2..], Is.EqualTo(new[] { "250 2.0.0 receiver is example.com!bob", "451 4.7.1 please try again soon from the same IP." }));
		var dir = t.P("/mail/grey/tmp/127.0.0.1/127.0.0.2");
		Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName), Is.EqualTo(new[] { "bob" }));
	}

	// ---- 9. no link followed, the documented modes whatever the umask ----

	static string Day => $"{Months[DateTime.Now.Month - 1]}{DateTime.Now.Day}";

	/// <summary>smtpd -s under umask 077, a blocked sender's message: its replies.</summary>
	static string[] RunBlocked(Tree t)
	{
		t.Write("/mail/lib/blocked", "*block spam.test!*\n");
		var psi = t.Start(["-s"]);
		var prog = psi.FileName;
		psi.FileName = "/bin/sh";
		foreach (var (i, a) in new[] { "-c", "umask 077; exec \"$@\"", "sh", prog }.Index())
			psi.ArgumentList.Insert(i, a);
		var (o, _, _) = Tree.Exec(psi, Encoding.ASCII.GetBytes(Hello + "MAIL FROM:<x@spam.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n\r\nspam\r\n.\r\n"));
		return Lines(Encoding.Latin1.GetString(o));
	}

	[Test]
	public void DumpDirectoryAndFileGetTheirModesWhateverTheUmask()
	{
		using var t = new Tree();
		Assert.That(RunBlocked(t)[^1], Is.EqualTo("554 5.7.1 we believe this is spam.  we don't accept it."));
		var dir = t.P("/mail/queue.dump/" + Day);
		Assert.That(File.GetUnixFileMode(dir), Is.EqualTo((UnixFileMode)0x1ff), "0777");
		var f = Directory.GetFiles(dir).Single();
		Assert.That(File.GetUnixFileMode(f), Is.EqualTo((UnixFileMode)0x1b6), "0666");
		Assert.That(File.ReadAllText(f), Does.Contain("\nspam\n"));
	}

	/// <summary>Runs a command as nobody (setpriv), the local attacker.</summary>
	static void AsNobody(params string[] argv)
	{
		var psi = new ProcessStartInfo("setpriv") { UseShellExecute = false, RedirectStandardError = true };
		foreach (var a in (string[])["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", .. argv])
			psi.ArgumentList.Add(a);
		using var p = Process.Start(psi)!;
		var err = p.StandardError.ReadToEnd();
		p.WaitForExit();
		Assert.That(p.ExitCode, Is.Zero, err);
	}

	static Tree WorldWritableDump()
	{
		if (Environment.UserName != "root" || !Repo.Have("setpriv"))
			Assert.Ignore("needs root and setpriv to plant files as nobody");
		var t = new Tree();
		File.SetUnixFileMode(t.Dir, (UnixFileMode)0x1ed);
		File.SetUnixFileMode(t.P("/mail"), (UnixFileMode)0x1ed);
		File.SetUnixFileMode(t.P("/mail/queue.dump"), (UnixFileMode)0x3ff); // 1777, as mktree makes it
		return t;
	}

	[Test]
	public void MktreeMakesTheDumpAndTraceDirectoriesSticky()
	{
		var root = Path.Join(Path.GetTempPath(), "upas-mktree-" + Guid.NewGuid().ToString("N")[..12]);
		try {
			var psi = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
			psi.ArgumentList.Add(Path.Join(Repo.Dir, "sys/lib/upas/mktree"));
			psi.ArgumentList.Add(root);
			var (_, err, exit) = Tree.Exec(psi, []);
			Assert.That((exit, err), Is.EqualTo((0, "")));
			foreach (var d in new[] { "mail/queue.dump", "sys/log/smtpdb" })
				Assert.That(File.GetUnixFileMode(Path.Join(root, d)), Is.EqualTo((UnixFileMode)0x3ff), d + ": 1777");
		} finally {
			Directory.Delete(root, true);
		}
	}

	[Test]
	public void ATraceNamePlantedAsALinkIsSkippedNotFollowed()
	{
		using var t = WorldWritableDump();
		foreach (var d in new[] { "/sys", "/sys/log" })
			File.SetUnixFileMode(t.P(d), (UnixFileMode)0x1ed);
		File.SetUnixFileMode(t.P("/sys/log/smtpdb"), (UnixFileMode)0x3ff); // 1777, as mktree makes it
		using var l = new Listening(t, "127.0.0.1", "-d");
		// the names the next seconds' sessions of this listener will want, planted as links to a file that does not exist yet
		var secs = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
		var victim = t.P("/victim");
		AsNobody("sh", "-c", $"for i in $(seq -1 10); do ln -s '{victim}' '{t.P("/sys/log/smtpdb")}'/$(({secs} + i)).{l.P.Id}; done");
		var c = l.Connect("127.0.0.2");
		Greeted(c);
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Wait.Until(() => Directory.GetFiles(t.P("/sys/log/smtpdb"), "*.1").Any(f => new FileInfo(f).LinkTarget is null), () => "no trace beside the links", TimeSpan.FromSeconds(10));
		Assert.That(File.Exists(victim), Is.False, "nothing created through the link");
		var trace = Directory.GetFiles(t.P("/sys/log/smtpdb"), "*.1").Single(f => new FileInfo(f).LinkTarget is null);
		Assert.That(File.GetUnixFileMode(trace), Is.EqualTo((UnixFileMode)0x1b2), "0662");
		Assert.That(t.Log().Any(x => x.StartsWith("can't create debug file", StringComparison.Ordinal)), Is.False);
	}

	[Test]
	public void ADumpDirectoryPlantedAsALinkIsNotFollowed()
	{
		using var t = WorldWritableDump();
		var target = t.P("/elsewhere");
		Directory.CreateDirectory(target);
		File.SetUnixFileMode(target, (UnixFileMode)0x1ff);
		AsNobody("ln", "-s", target, t.P("/mail/queue.dump/" + Day));
		Assert.That(RunBlocked(t)[^1], Is.EqualTo("554 5.7.1 we believe this is spam.  we don't accept it."));
		Assert.That(Directory.GetFiles(target), Is.Empty, "nothing written through the link");
		Assert.That(t.Log(), Does.Contain($"can't save blocked message in /mail/queue.dump/{Day}: not a directory (a link?)"));
	}

	[Test]
	public void ADumpDirectoryPreClaimedByAnotherUserIsNotUsed()
	{
		using var t = WorldWritableDump();
		AsNobody("mkdir", "-m", "777", t.P("/mail/queue.dump/" + Day));
		Assert.That(RunBlocked(t)[^1], Is.EqualTo("554 5.7.1 we believe this is spam.  we don't accept it."));
		Assert.That(Directory.GetFiles(t.P("/mail/queue.dump/" + Day)), Is.Empty);
		Assert.That(t.Log().Any(l => l.StartsWith($"can't save blocked message in /mail/queue.dump/{Day}: owned by another user", StringComparison.Ordinal)), Is.True, string.Join("\n", t.Log()));
	}
}
