using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Issue 12: SPF at MAIL through real smtpd dialogues (peer 127.0.0.2), smtpd.conf's spf reject, dnsmasq serving the records.</summary>
[TestFixture]
public class SpfPolicyTests
{
	const string Msg = "From: alice@from.test\nSubject: x\n\nbody\n";

	static readonly DnsRecord[] Zone = [
		AuthDns.Txt("hard.test", "v=spf1 ip4:192.0.2.1 -all"),
		AuthDns.Txt("explained.test", "v=spf1 -all exp=why.explained.test"),
		AuthDns.Txt("why.explained.test", "Not from here, %{i}."),
		AuthDns.Txt("soft.test", "v=spf1 ip4:192.0.2.1 ~all"),
		AuthDns.Txt("ok.test", "v=spf1 ip4:127.0.0.0/24 -all"),
		DnsRecord.Zone("sender.org"),
		AuthDns.Txt("mx.sender.org", "v=spf1 ip4:127.0.0.2 -all"),
		DnsRecord.Broken("broken.test"),
	];

	static string Run(Tree t, string from, string helo = "client.9fans.net") => t.Run(AuthDns.Dialogue(from, Msg, helo)).Out;

	[Test]
	public void HardFailIsRefusedAtMail()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\n");
		var o = Run(t, "alice@hard.test");
		Assert.That(o, Does.Contain("250 example.com you are client.9fans.net\r\n550 5.7.23 SPF of hard.test does not allow 127.0.0.2 to send its mail\r\n"));
		Assert.That(t.Captures(), Is.Empty);
		Assert.That(t.Log(), Has.Some.StartsWith("Refused hard.test!alice (client.9fans.net/127.0.0.2): spf=fail "));
	}

	[Test]
	public void RefusalGivesTheExplanation()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\n");
		Assert.That(Run(t, "alice@explained.test"), Does.Contain("\r\n550 5.7.23 Not from here, 127.0.0.2.\r\n"));
	}

	[Test]
	public void HardFailWithoutSpfRejectIsRecorded()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns);
		Assert.That(Run(t, "alice@hard.test"), Does.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(t.Captures()[0].Text), Does.StartWith("Authentication-Results: example.com;\n\tspf=fail smtp.mailfrom=alice@hard.test;\n"));
	}

	[Test]
	public void SoftFailIsAccepted()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\n");
		Assert.That(Run(t, "alice@soft.test"), Does.Contain("250 2.0.0 sender is soft.test!alice").And.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(t.Captures()[0].Text), Does.StartWith("Authentication-Results: example.com;\n\tspf=softfail smtp.mailfrom=alice@soft.test;\n"));
	}

	[Test]
	public void PassIsRecorded()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\n");
		Assert.That(Run(t, "alice@ok.test"), Does.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(t.Captures()[0].Text), Does.StartWith("Authentication-Results: example.com;\n\tspf=pass smtp.mailfrom=alice@ok.test;\n"));
	}

	[Test]
	public void TempErrorDefersOnlyUnderSpfReject()
	{
		using var dns = new Dnsmasq(Zone);
		using (var t = AuthDns.NewTree(dns, "spf reject\n"))
			Assert.That(Run(t, "alice@broken.test"), Does.Contain("\r\n451 4.7.24 Cannot check the SPF of broken.test now, try again later\r\n"));
		using (var t = AuthDns.NewTree(dns)) {
			Assert.That(Run(t, "alice@broken.test"), Does.Contain("250 2.5.0 sent"));
			Assert.That(AuthDns.Added(t.Captures()[0].Text), Does.StartWith("Authentication-Results: example.com;\n\tspf=temperror smtp.mailfrom=alice@broken.test;\n"));
		}
	}

	[Test]
	public void NullSenderChecksHelo()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\n");
		var o = t.Run(Tree.Crlf("HELO mx.sender.org\nMAIL FROM:<>\nRCPT TO:<bob@example.com>\nDATA\n" + Msg + ".\nQUIT\n")).Out;
		Assert.That(o, Does.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(t.Captures()[0].Text), Does.StartWith("Authentication-Results: example.com;\n\tspf=pass smtp.helo=mx.sender.org;\n"));
	}

	[Test]
	public void NullSenderFromAnotherHostIsRefused()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\n");
		t.Peer("127.0.0.3");
		var o = t.Run(Tree.Crlf("HELO mx.sender.org\nMAIL FROM:<>\nQUIT\n")).Out;
		Assert.That(o, Does.Contain("\r\n550 5.7.23 SPF of mx.sender.org does not allow 127.0.0.3 to send its mail\r\n"));
	}

	[Test]
	public void TrustedClientIsNotChecked()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf reject\nournets 127.0.0.0/8\n");
		Assert.That(Run(t, "alice@hard.test"), Does.Contain("250 2.5.0 sent"));
		Assert.That(dns.Log, Does.Not.Contain("hard.test"));
	}

	[Test]
	public void OneSessionAsksOnce()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns);
		var one = $"MAIL FROM:<alice@ok.test>\nRCPT TO:<bob@example.com>\nDATA\n{Msg}.\n";
		var o = t.Run(Tree.Crlf("HELO client.9fans.net\n" + one + one + one + "QUIT\n")).Out;
		Assert.That(System.Text.RegularExpressions.Regex.Matches(o, "250 2.5.0 sent"), Has.Count.EqualTo(3));
		Assert.That(System.Text.RegularExpressions.Regex.Matches(dns.Log, @"query\[TXT\] ok\.test "), Has.Count.EqualTo(1));
	}

	[Test]
	public void BadPolicyWordsAreLoggedAndIgnored()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "spf always\ndmarc reject quarantine\nspf none\n");
		Assert.That(Run(t, "alice@hard.test"), Does.Contain("250 2.5.0 sent"));
		var log = t.Log();
		Assert.That(log, Has.Some.Matches("^smtpd\\.conf:\\d+: bad policy always: spf always$"));
		Assert.That(log, Has.Some.Matches("^smtpd\\.conf:\\d+: wrong argument count: dmarc reject quarantine$"));
	}
}
