using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9, the smtpd side: relay under norelay (decisions #21), envelope addresses that are control
/// bytes or options (#22), looping messages and recipients the mailer cannot take (#23), through the
/// published smtpd on its pipes with the test mailer or the real send.
/// </summary>
public class SmtpdHardeningTests
{
	const string Hello = "HELO client.9fans.net\r\n";
	const string Relay = "550 5.7.1 we don't relay.  send to your-path@[] for loopback.";

	static string[] Lines(string s) => s.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

	/// <summary>The reply to each RCPT of one transaction, under -f (norelay) from an untrusted client.</summary>
	static string[] RcptReplies(Tree t, string[] rcpts, params string[] flags)
	{
		var input = Hello + "MAIL FROM:<alice@9fans.net>\r\n" + string.Concat(rcpts.Select(r => $"RCPT TO:<{r}>\r\n")) + "QUIT\r\n";
		var r = t.Run(Encoding.Latin1.GetBytes(input), flags, null);
		var l = Lines(r.Out);
		return l[4..^1];
	}

	// ---- 1. norelay: only this system's names are ours ----

	[TestCase(@"victim\@gmail.com@2130706435", "2130706435!victim@gmail.com")]
	[TestCase("x@2130706435", "2130706435!x")]
	[TestCase("x@0x7f000001", "0x7f000001!x")]
	[TestCase("x@127.1", "127.1!x")]
	[TestCase("x@0177.0.0.1", "0177.0.0.1!x")]
	[TestCase("x@127.0.0.3", "127.0.0.3!x")]
	[TestCase("x@#127", "#127!x")]
	[TestCase("x@[192.0.2.1]", "[192.0.2.1]!x")]
	[TestCase("x@[127.0.0.3]", "[127.0.0.3]!x")]
	[TestCase("x@otherhost", "otherhost!x")]
	[TestCase("@otherhost:x@example.com", "otherhost!example.com!x")]
	[TestCase(@"victim\@gmail.com@example.com", "example.com!victim@gmail.com")]
	[TestCase("\"victim@gmail.com\"@example.com", "example.com!\"victim@gmail.com\"")]
	[TestCase("victim%gmail.com@example.com", "example.com!victim%gmail.com")]
	[TestCase("gmail.com!victim@example.com", "example.com!gmail.com!victim")]
	[TestCase("victim%gmail.com", "victim%gmail.com")]
	[TestCase("gmail.com!victim", "gmail.com!victim")]
	public void ForeignHopsAreRefusedUnderNorelay(string rcpt, string bang)
	{
		using var t = new Tree();
		Assert.That(RcptReplies(t, [rcpt], "-f"), Is.EqualTo(new[] { Relay }));
		Assert.That(t.Log(), Does.Contain($"Bad Forward 9fans.net!alice (client.9fans.net/127.0.0.2) ({bang})"));
	}

	[Test]
	public void OurNamesAreStillOurs()
	{
		using var t = new Tree();
		var rcpts = new[] { "bob@example.com", "bob@mail.example.com", "bob@testhost", "bob@localhost", "bob@LOCALHOST", "bob@[127.0.0.1]", "bob", "bob.dots" };
		Assert.That(RcptReplies(t, rcpts, "-f"), Is.EqualTo(new[] {
			"250 2.0.0 receiver is example.com!bob", "250 2.0.0 receiver is mail.example.com!bob", "250 2.0.0 receiver is testhost!bob",
			"250 2.0.0 receiver is localhost!bob", "250 2.0.0 receiver is LOCALHOST!bob", "250 2.0.0 receiver is [127.0.0.1]!bob",
			"250 2.0.0 receiver is bob", "250 2.0.0 receiver is bob.dots",
		}));
	}

	[Test]
	public void AnAdministratorListsADotlessLocalHost()
	{
		using var t = new Tree(Tree.DefaultConf + "ourdomains gnot\n");
		Assert.That(RcptReplies(t, ["bob@gnot", "bob@plan9"], "-f"), Is.EqualTo(new[] { "250 2.0.0 receiver is gnot!bob", Relay }));
	}

	[Test]
	public void TheDefaultDomainAndDashHAreOurs()
	{
		using var t = new Tree("defaultdomain corp.example\ngreetdelay 0\n");
		Assert.That(RcptReplies(t, ["bob@corp.example", "bob@other.example"], "-f", "-h", "other.example"),
			Is.EqualTo(new[] { "250 2.0.0 receiver is corp.example!bob", "250 2.0.0 receiver is other.example!bob" }));
	}

	[Test]
	public void NumbersAreNeverOursWhateverOurdomainsSays()
	{
		using var t = new Tree(Tree.DefaultConf + "ourdomains *.0.1, 2130706435\n");
		Assert.That(RcptReplies(t, ["x@127.0.0.1", "x@2130706435"], "-f"), Is.EqualTo(new[] { Relay, Relay }));
	}

	[Test]
	public void ADotlessSenderDomainIsNoLongerSuspectAsOurs()
	{
		// X-warnings use the same test: a dotless HELO-less sender is not one of our domains
		using var t = new Tree();
		var r = t.Run(Hello + "MAIL FROM:<alice@gnot>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n\r\nhi\r\n.\r\n" +
			"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n\r\nhi\r\n.\r\n", "-f");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
		var caps = t.Captures();
		Assert.That(Encoding.Latin1.GetString(caps[0].Msg), Does.Not.Contain("X-warning"));
		Assert.That(Encoding.Latin1.GetString(caps[1].Msg), Does.Contain("X-warning: suspect envelope domain\n"));
	}

	// ---- 2. control bytes, angle brackets and options never enter the envelope ----

	[TestCase("MAIL FROM:<\"a\vb\"@9fans.net>", @"553 5.1.7 Bad sender address 9fans.net!""a\x0bb"": control character in address")]
	[TestCase("MAIL FROM:<\"a\fb\"@9fans.net>", @"553 5.1.7 Bad sender address 9fans.net!""a\x0cb"": control character in address")]
	[TestCase("MAIL FROM:<\"a\rb\"@9fans.net>", @"553 5.1.7 Bad sender address 9fans.net!""a\x0db"": control character in address")]
	[TestCase("MAIL FROM:<\"a\tb\"@9fans.net>", @"553 5.1.7 Bad sender address 9fans.net!""a\x09b"": control character in address")]
	[TestCase(@"MAIL FROM:<a\>b@9fans.net>", "553 5.1.7 Bad sender address 9fans.net!a>b: angle bracket in address")]
	[TestCase("MAIL FROM:<-f@9fans.net>", "553 5.1.7 Bad sender address 9fans.net!-f: address starts with '-'")]
	[TestCase("MAIL FROM:<-f!x>", "553 5.1.7 Bad sender address -f!x: address starts with '-'")]
	public void BadSenderIsRefusedAtMail(string mail, string want)
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(Hello + mail + "\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n\r\nhi\r\n.\r\nQUIT\r\n"), [], null);
		var l = Lines(r.Out);
		Assert.That(l[3], Is.EqualTo(want));
		Assert.That(r.Out.Count(c => c < 0x20 && c is not '\r' and not '\n'), Is.Zero, "no raw control byte is echoed");
		Assert.That(l[4], Is.EqualTo("503 5.5.1 Need MAIL before RCPT"));
		Assert.That(t.Captures(), Is.Empty);
	}

	[TestCase("\"a\vb\"@example.com", @"553 5.1.3 Bad recipient address example.com!""a\x0bb"": control character in address")]
	[TestCase("\"a\f\tb\"@example.com", @"553 5.1.3 Bad recipient address example.com!""a\x0c\x09b"": control character in address")]
	[TestCase("\"a\rb\"@example.com", @"553 5.1.3 Bad recipient address example.com!""a\x0db"": control character in address")]
	[TestCase(@"a\<b@example.com", "553 5.1.3 Bad recipient address example.com!a<b: angle bracket in address")]
	[TestCase("-x", "553 5.1.3 Bad recipient address -x: address starts with '-'")]
	[TestCase("-x@example.com", "553 5.1.3 Bad recipient address example.com!-x: address starts with '-'")]
	[TestCase("-fglenda", "553 5.1.3 Bad recipient address -fglenda: address starts with '-'")]
	public void BadRecipientIsRefusedAtRcpt(string rcpt, string want)
	{
		using var t = new Tree();
		// a validateaddress that records what it was given: it must never see these
		t.Write("/mail/lib/validateaddress", "#!/bin/sh\nprintf '%s\\n' \"$@\" >> \"$PLAN9/validated\"\nexit 0\n", 0x1ed);
		var r = t.Run(Encoding.Latin1.GetBytes(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\nQUIT\r\n"), [], null);
		var l = Lines(r.Out);
		Assert.That(l[4], Is.EqualTo(want));
		Assert.That(l[5], Is.EqualTo("503 2.5.2 Data without RCPT TO:"));
		Assert.That(r.Out.Count(c => c < 0x20 && c is not '\r' and not '\n'), Is.Zero, "no raw control byte is echoed");
		Assert.That(File.Exists(t.P("/validated")), Is.False, "validateaddress was not run");
		Assert.That(t.Captures(), Is.Empty);
	}

	[Test]
	public void VrfyOfAnOptionIsRefusedAndAnAddressFollowsDashDash()
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(Hello + "VRFY -r\r\nVRFY bob\r\n"), [], new Dictionary<string, string> { ["MAILER_STDOUT"] = "local!bob" });
		var l = Lines(r.Out);
		Assert.That(l[3..], Is.EqualTo(new[] { "553 5.1.3 Bad address -r: address starts with '-'", "250 2.0.0 bob <bob@example.com>" }));
		Assert.That(t.Captures().Single().Args, Is.EqualTo(new[] { "-x", "--", "bob" }));
	}

	// ---- 4. the mailer's options end before the first recipient ----

	[Test]
	public void MailerGetsDashDashBeforeRecipients()
	{
		using var t = new Tree();
		var r = t.Run(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<carol>\r\nDATA\r\n\r\nhi\r\n.\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(t.Captures().Single().Args, Is.EqualTo(new[] { "-r", "--", "example.com!bob", "carol" }));
	}

	[Test]
	public void DemomailerHonoursDashDash()
	{
		using var t = new Tree();
		Directory.CreateDirectory(t.P("/mail/box/bob"));
		var demo = Path.Join(Repo.Dir, "sys/lib/upas/demomailer");
		var (o, e, x) = Tree.Exec(t.Prog(demo, ["-x", "--", "example.com!bob"]), []);
		Assert.That((Encoding.Latin1.GetString(o), e, x), Is.EqualTo(("local!bob\n", "", 0)));
		(o, e, x) = Tree.Exec(t.Prog(demo, ["-r", "--", "example.com!bob"]), Encoding.Latin1.GetBytes("From alice Tue Dec  1 00:00:00 GMT 2026 remote from \nSubject: s\n\nhi\n"));
		Assert.That((e, x), Is.EqualTo(("", 0)));
		Assert.That(t.Read("/mail/box/bob/mbox"), Does.Contain("\nhi\n"));
	}

	// ---- 3. backscatter: a looping message is refused in the dialogue ----

	static string Looping(int received) =>
		string.Concat(Enumerable.Range(0, received).Select(i => $"Received: from hop{i}.example.net by hop{i + 1}.example.net; Tue, 1 Dec 2026 00:00:00 +0000\r\n")) +
		"Subject: loop\r\n\r\nround and round\r\n.\r\n";

	[Test]
	public void TooManyHopsIsRefusedAtTheEndOfData()
	{
		using var t = new Tree();
		// the loop last: the test mailer killed half-way leaves a file that would hide later captures
		var r = t.Run(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" + Looping(31) +
			"MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" + Looping(32) + "QUIT\r\n");
		var l = Lines(r.Out);
		Assert.That(l[6], Is.EqualTo("250 2.5.0 sent"), "31 and ours: 32, as many as send takes");
		Assert.That(l[10], Is.EqualTo("554 5.4.6 Too many hops"), "32 of the client's and ours: 33 > 32");
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1), "the mailer of the looping message never finished");
		Assert.That(Regex(caps[0].Msg), Is.EqualTo(32));
		Assert.That(t.Log(), Does.Contain("++[client.9fans.net/127.0.0.2] 9fans.net!alice message refused: 33 Received: fields, a forwarding loop"));
	}

	static int Regex(byte[] msg) =>
		Encoding.Latin1.GetString(msg).Split('\n').TakeWhile(s => s.Length > 0).Count(s => s.StartsWith("Received:", StringComparison.OrdinalIgnoreCase));

	[Test]
	public void TooManyHopsCountsFoldedAndLowerCaseFieldsAsSendDoes()
	{
		using var t = new Tree();
		var msg = string.Concat(Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? $"RECEIVED: from a{i}\r\n\tby b; x\r\n" : $"received: from a{i}\r\n")) + "\r\nbody\r\n.\r\n";
		var r = t.Run(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" + msg);
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("554 5.4.6 Too many hops"));
		Assert.That(t.Captures(), Is.Empty);
	}

	[Test]
	public void ReceivedInTheBodyDoesNotCount()
	{
		using var t = new Tree();
		var body = string.Concat(Enumerable.Range(0, 40).Select(i => $"Received: quoted {i}\r\n"));
		var r = t.Run(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: s\r\n\r\n" + body + ".\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
	}

	/// <summary>A tree whose mailer is the real send, delivering to bob's mailbox.</summary>
	static Tree WithSend()
	{
		var t = new Tree();
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		Directory.CreateDirectory(t.P("/mail/box/bob"));
		Directory.CreateDirectory(t.P("/mail/queue"));
		t.Write("/sys/log/mail", "");
		return t;
	}

	[Test]
	public void WithTheRealSendALoopIsRefusedNotBounced()
	{
		using var t = WithSend();
		var send = t.P("/bin/upas/send");
		var r = t.Run(Encoding.Latin1.GetBytes(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" + Looping(32) + "QUIT\r\n"), ["-m", send], null);
		Assert.That(Lines(r.Out)[^2], Is.EqualTo("554 5.4.6 Too many hops"));
		Assert.That(File.Exists(t.P("/mail/box/bob/mbox")) ? t.Read("/mail/box/bob/mbox") : "", Is.Empty);
		Assert.That(Directory.EnumerateFiles(t.P("/mail/queue"), "*", SearchOption.AllDirectories), Is.Empty, "no bounce is queued");

		r = t.Run(Encoding.Latin1.GetBytes(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" + Looping(31) + "QUIT\r\n"), ["-m", send], null);
		Assert.That(Lines(r.Out)[^2], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(t.Read("/mail/box/bob/mbox"), Does.Contain("round and round"));
	}

	// ---- 3. validateaddress: a validator that cannot answer refuses, it does not accept ----

	[TestCase("#!/bin/sh\nexit 1\n", 0x1ed, "550 5.1.1 example.com!bob ... user unknown")]
	[TestCase("#!/bin/sh\nexit 0\n", 0x1a4, "450 4.3.0 example.com!bob ... cannot validate the address now, try again later")]
	[TestCase("#!/nonexistent/interpreter\nexit 0\n", 0x1ed, "450 4.3.0 example.com!bob ... cannot validate the address now, try again later")]
	public void ValidateaddressFailureIsARefusal(string script, int mode, string want)
	{
		using var t = new Tree();
		t.Write("/mail/lib/validateaddress", script, mode);
		var r = t.Run(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nQUIT\r\n");
		var l = Lines(r.Out);
		Assert.That(l[4], Is.EqualTo(want));
		Assert.That(l[5], Is.EqualTo("503 2.5.2 Data without RCPT TO:"));
		Assert.That(t.Captures(), Is.Empty);
	}

	// ---- 6. logs and traces: control bytes escaped, one event one line ----

	[Test]
	public void ControlBytesInAuthUserNamesAreEscapedInTheLog()
	{
		using var t = new Tree();
		t.Write("/mail/lib/smtpd.keys", "key proto=pass service=smtp user=glenda !password=secret\n", 0x180);
		var user = "x\rtesthost Dec  1 00:00:00 forged\nline\v\f\u001b[2J\u0001end\\";
		var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0pw"));
		var r = t.Run($"EHLO client.9fans.net\r\nAUTH PLAIN {plain}\r\nQUIT\r\n", "-p");
		Assert.That(r.Out, Does.Contain("535 5.7.1 Authentication failed"));
		var raw = t.Read("/sys/log/smtpd");
		Assert.That(raw.Count(c => c < 0x20 && c != '\n'), Is.Zero, "no raw control byte in the log");
		var log = t.Log();
		Assert.That(log, Does.Contain(@"authentication failed: no key for x\x0dtesthost Dec  1 00:00:00 forged line\x0b\x0c\x1b[2J\x01end\"));
		Assert.That(log.Count(l => l.Contains("forged")), Is.EqualTo(1));
	}

	[Test]
	public void SyslogEscapesEveryControlByte()
	{
		var line = Encoding.UTF8.GetString(Syslog.Format("t", new DateTime(2026, 12, 1, 1, 2, 3), "a\rb\nc\vd\fe\u001bf\0g\u007fh\u0085i\\j"));
		Assert.That(line, Is.EqualTo(@"t Dec  1 01:02:03 a\x0db c\x0bd\x0ce\x1bf\x00g\x7fh\x85i\j" + "\n"));
	}

	[Test]
	public void TracesShowControlBytesEscaped()
	{
		using var t = new Tree();
		var r = t.Run(Encoding.Latin1.GetBytes(Hello + "NOOP \x1b[31mred\r\n" + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" +
			"Subject: \x1b]0;title\x07\r\n\r\nbody\x1b[2J\0\r\n.\r\nQUIT\r\n"), ["-d"], null);
		Assert.That(Lines(r.Out)[^2], Is.EqualTo("250 2.5.0 sent"));
		var trace = File.ReadAllBytes(Directory.GetFiles(t.P("/sys/log/smtpdb")).Single());
		var text = Encoding.Latin1.GetString(trace);
		Assert.That(trace.Count(b => b < 0x20 && b is not (byte)'\n' and not (byte)'\r' and not (byte)'\t'), Is.Zero, text);
		Assert.That(text, Does.Contain(@"NOOP \x1b[31mred"));
		Assert.That(text, Does.Contain(@"Subject: \x1b]0;title\x07"));
		Assert.That(text, Does.Contain(@"body\x1b[2J\x00"));
	}

	[Test]
	public void RefusedRecipientIsLoggedPrintably()
	{
		using var t = new Tree();
		t.Run(Encoding.Latin1.GetBytes(Hello + "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<\"x\rforged\"@example.com>\r\nQUIT\r\n"), [], null);
		var raw = t.Read("/sys/log/smtpd");
		Assert.That(raw.Count(c => c < 0x20 && c != '\n'), Is.Zero);
		Assert.That(t.Log(), Does.Contain(@"Refused recipient example.com!""x\x0dforged"" (client.9fans.net/127.0.0.2): control character in address"));
	}
}
