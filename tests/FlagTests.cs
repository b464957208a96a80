using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Each smtpd flag and smtpd.conf keyword, with a test that fails without it.</summary>
public class FlagTests
{
	const string Hello = "HELO client.9fans.net\r\n";
	const string Tx = "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\n";

	static string[] Lines(string s) => s.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

	[Test]
	public void UsageErrorPrintsPlan9UsageLine()
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(""), ["-x"], null);
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Is.EqualTo("usage: smtpd [-adDfghprs] [-c cert] [-k ip] [-L dialstring] [-m mailer] [-n net]\n"));
		Assert.That(r.Out, Is.Empty);
	}

	[Test]
	public void OptionWithoutValueIsAUsageError()
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(""), ["-h"], null);
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.StartWith("usage: smtpd"));
	}

	[Test]
	public void NoPeerAddressIsAClearError()
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(Hello), [], null, netdir: false);
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.StartWith("smtpd: can't get remote system's address: "));
		Assert.That(r.Out, Is.Empty);
	}

	[Test]
	public void NetDirWithoutFilesGivesQuestionMarks()
	{
		using var t = new Tree();
		File.Delete(Path.Join(t.NetDir, "remote"));
		var r = t.Run("HELO client.9fans.net\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 example.com you are client.9fans.net"));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from ??? as client.9fans.net" }));
	}

	[Test]
	public void IPv6PeerFromNetDir()
	{
		using var t = new Tree(peer: "2001:db8::7", local: "2001:db8::25");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<b@[]>\r\n", "-f");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.0.0 receiver is [2001:db8::7]!b"));
		Assert.That(t.Log()[0], Is.EqualTo("helo from 2001:db8::7 as client.9fans.net"));
	}

	[Test]
	public void DashHSetsTheDomain()
	{
		using var t = new Tree();
		var r = t.Run("HELO client.9fans.net\r\n", "-h", "cat-v.org");
		Assert.That(Lines(r.Out), Is.EqualTo(new[] { "220-cat-v.org ESMTP", "220 ", "250 cat-v.org you are client.9fans.net" }));
	}

	[Test]
	public void DomainFallsBackToSysnameWithoutDefaultdomain()
	{
		using var t = new Tree("greetdelay 0\n");
		File.WriteAllText(t.P("/dev/sysname"), "kremvax.9fans.net");
		var r = t.Run("");
		Assert.That(Lines(r.Out)[0], Is.EqualTo("220-kremvax.9fans.net ESMTP"));
	}

	[Test]
	public void DashKDropsSilently()
	{
		foreach (var k in new[] { "127.0.0.2", "127.0.0", "127.0.0.0/8" }) {
			using var t = new Tree();
			var r = t.Run(Encoding.Latin1.GetBytes(Hello), ["-k", "10.9.9.9", "-k", k], null);
			Assert.That(r.Out, Is.Empty, k);
			Assert.That(r.Exit, Is.EqualTo(1), k);
			Assert.That(t.Read("/sys/log/smtpd"), Is.Empty, k);
			Assert.That(Directory.GetFiles(t.P("/sys/log/smtpdb")), Is.Empty, k);
		}
		using var t2 = new Tree();
		var ok = t2.Run(Encoding.Latin1.GetBytes(Hello), ["-k", "127.0.1.2"], null);
		Assert.That(Lines(ok.Out)[^1], Is.EqualTo("250 example.com you are client.9fans.net"));
	}

	[Test]
	public void DashMNameIsUnderBinUpas()
	{
		using var t = new Tree();
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.Copy(t.Mailer, t.P("/bin/upas/testmail"));
		File.SetUnixFileMode(t.P("/bin/upas/testmail"), (UnixFileMode)0x1ed);
		// the mailer writes its captures beside itself: ROOT/bin/upas/cap
		Directory.CreateDirectory(t.P("/bin/upas/cap"));
		var r2 = t.Run(Encoding.Latin1.GetBytes(Hello + Tx), ["-m", "testmail"], null);
		Assert.That(Lines(r2.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(File.Exists(t.P("/bin/upas/cap/1.args")), Is.True);
	}

	[Test]
	public void MissingMailerIsBusy()
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"), ["-m", "/nonexistent/send"], null);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("450 4.3.2 We're busy right now, try later"));
	}

	[Test]
	public void DefaultMailerIsRootBinUpasSend()
	{
		using var t = new Tree();
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.Copy(t.Mailer, t.P("/bin/upas/send"));
		File.SetUnixFileMode(t.P("/bin/upas/send"), (UnixFileMode)0x1ed);
		Directory.CreateDirectory(t.P("/bin/upas/cap"));
		// with the default mailer and no validateaddress, RCPT asks send's code: bob must be a local user
		Directory.CreateDirectory(t.P("/mail/box/bob"));
		var psi = t.Start([]);
		psi.ArgumentList.Clear();
		psi.ArgumentList.Add("-n");
		psi.ArgumentList.Add(t.NetDir);
		using var p = Process.Start(psi)!;
		p.StandardInput.Write(Hello + Tx + "QUIT\r\n");
		p.StandardInput.Close();
		var outp = p.StandardOutput.ReadToEnd();
		p.WaitForExit();
		Assert.That(outp, Does.Contain("250 2.5.0 sent"));
		Assert.That(File.ReadAllText(t.P("/bin/upas/cap/1.args")), Is.EqualTo("-r\n--\nexample.com!bob\n"));
	}

	[Test]
	public void DashDWritesOneTraceFilePerConnection()
	{
		using var t = new Tree();
		t.Run(Encoding.Latin1.GetBytes(Hello + "NOOP\r\nQUIT\r\n"), ["-d"], null);
		t.Run(Encoding.Latin1.GetBytes(Hello + "QUIT\r\n"), ["-d"], null);
		var files = Directory.GetFiles(t.P("/sys/log/smtpdb"));
		Assert.That(files, Has.Length.EqualTo(2));
		foreach (var f in files) {
			Assert.That(Path.GetFileName(f), Does.Match(@"^\d{10}\.\d+(\.\d+)?$"));
			Assert.That(File.GetUnixFileMode(f), Is.EqualTo((UnixFileMode)Convert.ToInt32("662", 8)));
		}
		var text = files.Select(File.ReadAllText).First(s => s.Contains("NOOP"));
		var lines = text.Split('\n');
		Assert.That(lines[0], Does.Match(@"^\d+ smtpd [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}$"));
		Assert.That(lines, Does.Contain("istrusted(127.0.0.2)=0"));
		Assert.That(lines, Does.Contain("getaction(127.0.0.2, ip)=accept"));
		Assert.That(lines, Does.Contain("  0 220-example.com ESMTP"));
		Assert.That(lines, Does.Contain("  0 HELO client.9fans.net"));
		Assert.That(lines, Does.Contain("  0 250 example.com you are client.9fans.net"));
		Assert.That(lines, Does.Contain("  0 221 2.0.0 Successful termination"));
	}

	[Test]
	public void DashDConcurrentConnectionsNeverShareAFile()
	{
		using var t = new Tree();
		var runs = Enumerable.Range(0, 6).Select(i => Task.Run(() => t.Run(Encoding.Latin1.GetBytes(Hello + $"VRFY user{i}\r\nQUIT\r\n"), ["-d"], null))).ToArray();
		Task.WaitAll(runs);
		var files = Directory.GetFiles(t.P("/sys/log/smtpdb"));
		Assert.That(files, Has.Length.EqualTo(6));
		for (var i = 0; i < 6; i++)
			Assert.That(files.Count(f => File.ReadAllText(f).Contains($" VRFY user{i}\n")), Is.EqualTo(1));
	}

	[Test]
	public void DashDWithoutTheDirectoryIsLogged()
	{
		using var t = new Tree();
		Directory.Delete(t.P("/sys/log/smtpdb"));
		var r = t.Run(Encoding.Latin1.GetBytes(Hello), ["-d"], null);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 example.com you are client.9fans.net"));
		var log = t.Log();
		Assert.That(log[0], Does.StartWith("can't create debug file /sys/log/smtpdb/"));
		Assert.That(log, Has.Length.EqualTo(2));
	}

	[Test]
	public void GreetingPauseCatchesEarlyTalkers()
	{
		using var t = new Tree(Tree.DefaultConf + "greetdelay 1\n");
		var r = t.Run(Hello + "QUIT\r\n");
		Assert.That(Lines(r.Out), Is.EqualTo(new[] { "220-example.com ESMTP", "554 5.7.0 Spammer!" }));
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Log(), Is.EqualTo(new[] { "Hung up on impatient spammer 127.0.0.2" }));
	}

	[Test]
	public void PatientClientsPassTheGreetingPause()
	{
		using var t = new Tree(Tree.DefaultConf + "greetdelay 1\n");
		using var c = new Client(Process.Start(t.Start([]))!);
		Assert.That(c.Line(), Is.EqualTo("220-example.com ESMTP"));
		Assert.That(c.Line(), Is.EqualTo("220 "));
		Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
	}

	[Test]
	public void TrustedClientsSkipTheGreetingPause()
	{
		using var t = new Tree(Tree.DefaultConf + "greetdelay 30\n", peer: "10.1.2.3");
		var r = t.Run(Hello + "QUIT\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("221 2.0.0 Successful termination"));
	}

	[TestCase("10.1.2.3", true, 0)]
	[TestCase("192.0.2.7", false, 15)]
	[TestCase("58.1.2.3", false, 60)]
	[TestCase("80.1.2.3", false, 60)]
	[TestCase("217.0.0.1", false, 60)]
	[TestCase("90.1.2.3", false, 15)]
	[TestCase("2001:db8::1", false, 15)]
	public void TarpitDelays(string rsys, bool trusted, int want) =>
		Assert.That(Upas.Smtpd.Session.TarpitSeconds(rsys, trusted), Is.EqualTo(want));

	[Test]
	public void DashDTarpitDelaysTheHeloReply()
	{
		using var t = new Tree();
		using var c = new Client(Process.Start(t.Start(["-D"]))!);
		c.Line();
		c.Line();
		var sw = Stopwatch.StartNew();
		Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
		Assert.That(sw.Elapsed.TotalSeconds, Is.GreaterThanOrEqualTo(14.5));
	}

	[Test]
	public void TooManyRejectionsEndTheSession()
	{
		using var t = new Tree();
		var input = string.Concat(Enumerable.Repeat("MAIL FROM:<a@9fans.net>\r\n", 101)) + "NOOP\r\nNOOP\r\n";
		var r = t.Run(input);
		var lines = Lines(r.Out);
		Assert.That(lines.Count(l => l == "503 Start by saying HELO, please."), Is.EqualTo(101));
		Assert.That(lines[^1], Is.EqualTo("554 5.5.0 too many errors.  transaction failed."));
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Log(), Is.EqualTo(new[] { "Rejected (/127.0.0.2)" }));
	}

	[Test]
	public void SyntaxErrorsAreNotRejections()
	{
		using var t = new Tree();
		var r = t.Run(string.Concat(Enumerable.Repeat("BOGUS\r\n", 150)) + "NOOP\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.0.0 Nothing to see here. Move along ..."));
	}

	[Test]
	public void LongCommandLineIsRefusedAndTheSessionGoesOn()
	{
		using var t = new Tree();
		var r = t.Run(Hello + "NOOP " + new string('x', 5000) + "\r\nMAIL FROM:<" + new string('x', 5000) + "@example.org>\r\nNOOP\r\n");
		Assert.That(Lines(r.Out)[2..], Is.EqualTo(new[] {
			"250 example.com you are client.9fans.net", "500 5.5.2 line too long", "500 5.5.2 line too long",
			"250 2.0.0 Nothing to see here. Move along ...",
		}));
	}

	[Test]
	public void HugeLineKeepsMemoryBounded()
	{
		using var t = new Tree();
		var big = new byte[20 * 1024 * 1024];
		Array.Fill(big, (byte)'x');
		var input = Encoding.Latin1.GetBytes(Hello).Concat(big).Concat(Encoding.Latin1.GetBytes("\r\nNOOP\r\n")).ToArray();
		var r = t.Run(input, [], null);
		Assert.That(Lines(r.Out)[^2..], Is.EqualTo(new[] { "500 5.5.2 line too long", "250 2.0.0 Nothing to see here. Move along ..." }));
	}

	[Test]
	public void NulAndControlBytesInACommand()
	{
		using var t = new Tree();
		var r = t.Run(Hello + "NO\0OP\r\nNOOP\x01\r\nNOOP\r\n");
		Assert.That(Lines(r.Out)[3..], Is.EqualTo(new[] {
			"500 5.5.1 illegal command or bad syntax", "500 5.5.1 illegal command or bad syntax",
			"250 2.0.0 Nothing to see here. Move along ...",
		}));
	}

	[Test]
	public void EightBitAddressesNeedSmtputf8()
	{
		using var t = new Tree();
		var r = t.Run(Hello + "MAIL FROM:<j\xf6rg@9fans.net>\r\nMAIL FROM:<a@9fans.net>\r\nRCPT TO:<\xe9@example.com>\r\nRCPT TO:<b@example.com>\r\n");
		Assert.That(Lines(r.Out)[3..], Is.EqualTo(new[] {
			"553 5.6.7 8-bit characters in addresses need SMTPUTF8", "250 2.0.0 sender is 9fans.net!a",
			"553 5.6.7 8-bit characters in addresses need SMTPUTF8", "250 2.0.0 receiver is example.com!b",
		}));
	}

	[Test]
	public void RecipientLimit()
	{
		using var t = new Tree();
		var sb = new StringBuilder(Hello + "MAIL FROM:<a@9fans.net>\r\n");
		for (var i = 0; i < 1001; i++)
			sb.Append($"RCPT TO:<u{i}@example.com>\r\n");
		var lines = Lines(t.Run(sb.ToString()).Out);
		Assert.That(lines.Count(l => l.StartsWith("250 2.0.0 receiver is")), Is.EqualTo(1000));
		Assert.That(lines[^1], Is.EqualTo("452 4.5.3 Too many recipients"));
	}

	[Test]
	public void MaxrcptsKeyword()
	{
		using var t = new Tree(Tree.DefaultConf + "maxrcpts 2\n");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("452 4.5.3 Too many recipients"));
	}

	[Test]
	public void IdleTimeoutEndsAStuckSession()
	{
		using var t = new Tree(Tree.DefaultConf + "idletimeout 1\n");
		using var c = new Client(Process.Start(t.Start([]))!);
		c.Line();
		c.Line();
		Assert.That(c.Line(10_000), Is.EqualTo("421 4.4.2 example.com timeout, closing connection"));
		Assert.That(c.Line(10_000), Is.Null);
		Assert.That(t.Log(), Is.EqualTo(new[] { "note: alarm" }));
	}

	[Test]
	public void DataTimeoutKillsTheMailer()
	{
		using var t = new Tree(Tree.DefaultConf + "datatimeout 1\n");
		using var c = new Client(Process.Start(t.Start([]))!);
		c.Line();
		c.Line();
		c.Ask("HELO client.9fans.net");
		c.Ask("MAIL FROM:<a@9fans.net>");
		c.Ask("RCPT TO:<b@example.com>");
		Assert.That(c.Ask("DATA"), Does.StartWith("354"));
		c.Send("Subject: stuck\r\n\r\nhalf a message\r\n");
		Assert.That(c.Reply(), Is.EqualTo(new[] { "450 4.0.0 mail process terminated abnormally" }));
		Assert.That(c.Line(), Is.EqualTo("421 4.4.2 example.com timeout, closing connection"));
		Assert.That(t.Captures(), Is.Empty);
		Assert.That(t.Log()[^1], Is.EqualTo("note: 9fans.net!a->example.com!b: alarm"));
	}

	[Test]
	public void BadConfLinesAreLoggedAndIgnored()
	{
		using var t = new Tree(Tree.DefaultConf + "bogus on\nmaxrcpts many\nnorelay on\n");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<b@elsewhere.net>\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("550 5.7.1 we don't relay.  send to your-path@[] for loopback."));
		var log = t.Log();
		Assert.That(log[0], Is.EqualTo("smtpd.conf:6: unknown keyword: bogus on"));
		Assert.That(log[1], Does.StartWith("smtpd.conf:7: "));
	}

	[Test]
	public void LogFilesAreNeverCreated()
	{
		using var t = new Tree();
		File.Delete(t.P("/sys/log/smtpd"));
		var r = t.Run(Hello + "QUIT\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(File.Exists(t.P("/sys/log/smtpd")), Is.False);
	}
}
