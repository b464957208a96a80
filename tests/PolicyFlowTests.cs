using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>The policy files and verdicts, end to end through the published smtpd.</summary>
public class PolicyFlowTests
{
	const string Hello = "HELO client.9fans.net\r\n";
	const string Msg = "Subject: offer\r\n\r\nbuy now\r\n.\r\n";

	static string[] Lines(string s) => s.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

	static string Tx(string from, string to = "bob@example.com") => $"MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n{Msg}";

	static string[] DumpFiles(Tree t)
	{
		var now = DateTime.Now;
		var months = new[] { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
		var dir = t.P($"/mail/queue.dump/{months[now.Month - 1]}{now.Day}");
		return Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
	}

	[Test]
	public void BlockedSenderIsDumpedWithDashS()
	{
		using var t = new Tree();
		t.Write("/mail/lib/blocked", "*block\tspam.test!*\n");
		var r = t.Run(Hello + Tx("offers@spam.test") + "NOOP\r\n", "-s");
		Assert.That(Lines(r.Out)[3..], Is.EqualTo(new[] {
			"250 2.0.0 sender is spam.test!offers", "250 2.0.0 receiver is example.com!bob",
			"354 Input message; end with <CRLF>.<CRLF>", "554 5.7.1 we believe this is spam.  we don't accept it.",
			"250 2.0.0 Nothing to see here. Move along ...",
		}));
		Assert.That(t.Captures(), Is.Empty, "the mailer never runs for blocked mail");
		var dumps = DumpFiles(t);
		Assert.That(dumps, Has.Length.EqualTo(1));
		Assert.That(Path.GetFileName(dumps[0]), Does.Match(@"^\d{1,10}$"));
		Assert.That(Tree.NoDates(File.ReadAllText(dumps[0])), Is.EqualTo(
			"From spam.test!offers DATE remote from \n" +
			"Authentication-Results: example.com;\n\tspf=none smtp.mailfrom=offers@spam.test;\n\tdkim=none;\n\tdmarc=none (no From: field)\n" +
			"Received: from client.9fans.net ([127.0.0.2]) by testhost; DATE\n" +
			"From: spam.test!offers\nTo: example.com!bob\nSubject: offer\n\nbuy now\n"));
		Assert.That(t.Log()[1], Is.EqualTo("Blocked spam.test!offers (client.9fans.net/127.0.0.2) (example.com!bob)"));
	}

	[Test]
	public void BlockedSenderWithoutDashSIsNotSaved()
	{
		using var t = new Tree();
		t.Write("/mail/lib/blocked", "*block spam.test!*\n");
		var r = t.Run(Hello + Tx("offers@spam.test"));
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("554 5.7.1 we believe this is spam.  we don't accept it."));
		Assert.That(DumpFiles(t), Is.Empty);
	}

	[Test]
	public void SaveblockedmsgKeywordIsDashS()
	{
		using var t = new Tree(Tree.DefaultConf + "saveblockedmsg on\n");
		t.Write("/mail/lib/blocked", "*block spam.test!*\n");
		t.Run(Hello + Tx("offers@spam.test"));
		Assert.That(DumpFiles(t), Has.Length.EqualTo(1));
	}

	[Test]
	public void DelayMeansDumpAnd450NeverDeliver()
	{
		using var t = new Tree();
		t.Write("/mail/lib/blocked", "relay 127.0.0.0/8\n");
		var r = t.Run(Hello + Tx("a@9fans.net"), "-s");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("450 4.3.0 There will be a delay in delivery of this message."));
		Assert.That(t.Captures(), Is.Empty);
		Assert.That(DumpFiles(t), Has.Length.EqualTo(1));
	}

	[Test]
	public void DeniedSenderIsRefusedAtMail()
	{
		using var t = new Tree();
		t.Write("/mail/lib/blocked", "*deny example.net!loopingrobot\n");
		var r = t.Run(Hello + "MAIL FROM:<loopingrobot@example.net>\r\nMAIL FROM:<someone@example.net>\r\n");
		Assert.That(Lines(r.Out)[3..], Is.EqualTo(new[] {
			"554-5.7.1 We don't accept mail from example.net!loopingrobot.",
			"554 5.7.1 Contact postmaster@example.com for more information.",
			"250 2.0.0 sender is example.net!someone",
		}));
		Assert.That(t.Log()[1], Is.EqualTo("Denied example.net!loopingrobot (client.9fans.net/127.0.0.2)"));
	}

	[Test]
	public void DialupIsRefusedAtDataAndThenEverything()
	{
		using var t = new Tree();
		t.Write("/mail/lib/blocked", "dial 127.0.0.0/24\nallow 127.0.0.9\n");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nNOOP\r\nQUIT\r\n");
		Assert.That(Lines(r.Out)[3..], Is.EqualTo(new[] {
			"250 2.0.0 sender is 9fans.net!a", "250 2.0.0 receiver is example.com!b",
			"554 5.7.1 We don't accept mail from dial-up ports.", "554 5.7.1 We don't accept mail from dial-up ports.",
			"221 2.0.0 Successful termination",
		}));
		Assert.That(t.Log()[1], Is.EqualTo("Dialup 9fans.net!a (client.9fans.net/127.0.0.2) (example.com!b)"));
	}

	[Test]
	public void AllowBeatsEveryOtherVerb()
	{
		using var t = new Tree(peer: "127.0.0.9");
		t.Write("/mail/lib/blocked", "dial 127.0.0.0/24\nallow 127.0.0.9\n");
		var r = t.Run(Hello + Tx("a@9fans.net"));
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
	}

	[Test]
	public void NoSpamFilteringOptsOut()
	{
		using var t = new Tree();
		t.Write("/mail/lib/blocked", "*block spam.test!*\n");
		t.Write("/mail/box/bob/nospamfiltering", "");
		var r = t.Run(Hello + Tx("offers@spam.test"));
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(t.Captures(), Has.Count.EqualTo(1));
	}

	[Test]
	public void ValidateaddressRefusesUnknownUsers()
	{
		using var t = new Tree();
		t.Write("/mail/lib/validateaddress", "#!/bin/sh\ncase \"$1\" in *nobody) exit 1;; esac\nexit 0\n", 0x1ed);
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\n");
		Assert.That(Lines(r.Out)[^2..], Is.EqualTo(new[] { "550 5.1.1 example.com!nobody ... user unknown", "250 2.0.0 receiver is example.com!bob" }));
		Assert.That(t.Log()[1], Is.EqualTo("Disallowed 9fans.net!a (client.9fans.net/127.0.0.2) to blocked, unknown or invalid name example.com!nobody"));
	}

	[Test]
	public void NamesBlocked()
	{
		using var t = new Tree();
		t.Write("/mail/lib/names.blocked", "# never\n  Root\nexample.com!oldlist # gone\n");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<root>\r\nRCPT TO:<oldlist@example.com>\r\nRCPT TO:<rooter>\r\n");
		Assert.That(Lines(r.Out)[^3..], Is.EqualTo(new[] {
			"550 5.1.1 root ... user unknown", "550 5.1.1 example.com!oldlist ... user unknown", "250 2.0.0 receiver is rooter",
		}));
		Assert.That(t.Log(), Does.Contain("names.blocked blocks root"));
	}

	[Test]
	public void SendersRestrictsWhoMaySendToARecipient()
	{
		using var t = new Tree();
		t.Write("/mail/lib/senders", "# recipient\tmay only be sent to from\nops\t192.0.2.50\npager\t127.0.0.2\n");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<ops>\r\nRCPT TO:<pager>\r\nRCPT TO:<anyone>\r\n");
		Assert.That(Lines(r.Out)[^3..], Is.EqualTo(new[] {
			"550 5.7.1 ops ... sending system not allowed", "250 2.0.0 receiver is pager", "250 2.0.0 receiver is anyone",
		}));
		Assert.That(t.Log()[1], Is.EqualTo("Disallowed sending IP of 9fans.net!a (client.9fans.net/127.0.0.2) to ops"));
	}

	[Test]
	public void ValidatesenderAtData()
	{
		using var t = new Tree();
		t.Write("/mail/lib/validatesender", "#!/bin/sh\n[ \"$4\" = bad ] && { echo 'rejected: smtp ping: 550 no such user' >&2; exit 1; }\n[ \"$4\" = slow ] && { echo 'deferred: smtp ping: 421 busy' >&2; exit 1; }\nexit 0\n", 0x1ed);
		var r = t.Run(Hello + Tx("bad@9fans.net") + "RSET\r\n" + Tx("slow@9fans.net") + "RSET\r\n" + Tx("good@9fans.net"));
		var lines = Lines(r.Out);
		Assert.That(lines, Does.Contain("554 5.7.1 rejected: smtp ping: 550 no such user"));
		Assert.That(lines, Does.Contain("450 4.7.0 deferred: smtp ping: 421 busy"));
		Assert.That(lines[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(t.Log(), Does.Contain("[client.9fans.net/127.0.0.2] 9fans.net!bad -> example.com!bob sendercheck: rejected: smtp ping: 550 no such user"));
		Assert.That(t.Captures(), Has.Count.EqualTo(1));
	}

	[Test]
	public void NullSenderToManyRecipientsIsRefusedForUntrusted()
	{
		using var t = new Tree();
		t.Write("/mail/lib/validatesender", "#!/bin/sh\nexit 0\n", 0x1ed);
		var r = t.Run(Hello + "MAIL FROM:<>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("554 5.7.1 rejected: /dev/null sending to multiple recipients"));
	}

	[Test]
	public void XWarningsTagMailClaimingToBeOurs()
	{
		using var t = new Tree();
		var r = t.Run(Hello + "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nFrom: CEO <ceo@example.com>\r\nSubject: wire money\r\n\r\nnow\r\n.\r\n", "-f");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(Tree.NoDates(t.Captures()[0].Text), Is.EqualTo(
			"From example.com!ceo DATE remote from \n" +
			"Authentication-Results: example.com;\n\tspf=none smtp.mailfrom=ceo@example.com;\n\tdkim=none;\n\tdmarc=none header.from=example.com\n" +
			"Received: from client.9fans.net ([127.0.0.2]) by testhost; DATE\n" +
			"X-warning: suspect envelope domain\nX-warning: suspect From: domain\nTo: example.com!bob\n" +
			"From: CEO <ceo@example.com>\nSubject: wire money\n\nnow\n"));
	}

	[Test]
	public void NoXWarningsForTrustedClientsOrWithoutDashF()
	{
		foreach (var (peer, flags) in new[] { ("10.1.2.3", new[] { "-f" }), ("127.0.0.2", Array.Empty<string>()) }) {
			using var t = new Tree(peer: peer);
			t.Run(Encoding.Latin1.GetBytes(Hello + "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nFrom: ceo@example.com\r\n\r\nx\r\n.\r\n"), flags, null);
			Assert.That(t.Captures()[0].Text, Does.Not.Contain("X-warning"), peer);
		}
	}

	[Test]
	public void SmtpdConfExtOurnetsAreTrusted()
	{
		using var t = new Tree(peer: "172.16.5.5");
		t.Write("/mail/lib/smtpd.conf.ext", "ournets 172.16.0.0/12\n");
		var r = t.Run(Hello + "MAIL FROM:<a@9fans.net>\r\nRCPT TO:<b@elsewhere.net>\r\n", "-f");
		Assert.That(Lines(r.Out)[^1], Is.EqualTo("250 2.0.0 receiver is elsewhere.net!b"));
	}

	[Test]
	public void SmtpdConfIsReadAtEachConnection()
	{
		using var t = new Tree();
		var r1 = t.Run("");
		File.WriteAllText(t.P("/mail/lib/smtpd.conf"), "defaultdomain cat-v.org\ngreetdelay 0\n");
		var r2 = t.Run("");
		Assert.That(Lines(r1.Out)[0], Is.EqualTo("220-example.com ESMTP"));
		Assert.That(Lines(r2.Out)[0], Is.EqualTo("220-cat-v.org ESMTP"));
	}

	[Test]
	public void DashNDevFdOnARealSocket()
	{
		using var t = new Tree();
		using var srv = new SocketServer(t, ["-n", "/dev/fd/0"]);
		using var c = srv.Connect();
		c.Line();
		c.Line();
		Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.1 as client.9fans.net" }));
	}

	[Test]
	public void PeerOfARealSocket()
	{
		using var t = new Tree();
		using var srv = new SocketServer(t, []);
		using var c = srv.Connect();
		c.Line();
		c.Line();
		Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
		Assert.That(c.Ask("MAIL FROM:<a@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!a"));
		Assert.That(c.Ask("RCPT TO:<me@[]>"), Is.EqualTo("250 2.0.0 receiver is []!me"));
		c.Ask("QUIT");
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.1 as client.9fans.net" }));
	}

	[Test]
	public void IPv6Socket()
	{
		using var t = new Tree();
		using var srv = new SocketServer(t, ["-f"], bind: "::1");
		using var c = srv.Connect();
		c.Line();
		c.Line();
		c.Ask("HELO client.9fans.net");
		c.Ask("MAIL FROM:<a@9fans.net>");
		Assert.That(c.Ask("RCPT TO:<me@[]>"), Is.EqualTo("250 2.0.0 receiver is [::1]!me"));
	}
}
