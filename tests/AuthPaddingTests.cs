using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// A client that pads its header past smtpd's 16 KB window: the From: that DMARC judges and the forged
/// Authentication-Results fields smtpd removes are found there too, not only in the window.
/// </summary>
[TestFixture]
public class AuthPaddingTests
{
	static readonly DnsRecord[] Zone = [
		AuthDns.Txt("other.test", "v=spf1 ip4:127.0.0.2 -all"),
		AuthDns.Txt("_dmarc.reject.test", "v=DMARC1; p=reject"),
	];

	/// <summary>
	/// 104 KB of harmless fields: the window (16 KB, or the first read's 64 KB when that is more) ends inside them.
	/// </summary>
	static string Padding => string.Concat(Enumerable.Range(0, 2000).Select(i => $"X-Pad-{i:d4}: {new string('p', 40)}\n"));

	static string Delivered(Tree t)
	{
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1), "one mailer run");
		return caps[0].Text;
	}

	[Test]
	public void FromPastTheWindowIsJudgedByDmarc()
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns, "dmarc reject\n");
		var body = "To: bob@example.com\n" + Padding + "From: ceo@reject.test\nSubject: pay\n\nbody\n";
		var r = t.Run(AuthDns.Dialogue("alice@other.test", body));
		Assert.That(r.Out, Does.Contain("\r\n550 5.7.1 Rejected by the DMARC policy of reject.test\r\n"));
		Assert.That(t.Captures(), Is.Empty, "nothing delivered");
	}

	[Test]
	public void ForgedFieldsPastTheWindowAreRemoved([Values] bool signed)
	{
		using var dns = new Dnsmasq(Zone);
		using var t = AuthDns.NewTree(dns);
		// a DKIM-Signature (even a bad one) makes smtpd hold the body; without one it streams: both paths
		var sig = signed ? "DKIM-Signature: v=1; a=rsa-sha256; d=other.test; s=s; h=from; bh=AAAA; b=AAAA\n" : "";
		var body = sig + "From: alice@other.test\nTo: bob@example.com\n" + Padding +
			"Authentication-Results: example.com;\n\tdkim=pass header.d=reject.test\n" +
			"X-upas-quarantine: none\n" +
			"Authentication-Results: mx.other.example; spf=fail\n" +
			"Subject: hi\n\nbody\nAuthentication-Results: example.com; in the body, kept\n";
		var r = t.Run(AuthDns.Dialogue("alice@other.test", body));
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
		var m = Delivered(t);
		Assert.Multiple(() => {
			Assert.That(Regex.Matches(m, "^Authentication-Results: example\\.com;$", RegexOptions.Multiline), Has.Count.EqualTo(1), "ours only");
			Assert.That(m, Does.Not.Contain("header.d=reject.test").And.Not.Contain("X-upas-quarantine"));
			Assert.That(m, Does.Contain("X-Pad-1999: " + new string('p', 40) + "\nAuthentication-Results: mx.other.example; spf=fail\nSubject: hi\n\nbody\n" +
				"Authentication-Results: example.com; in the body, kept\n"));
		});
	}
}
