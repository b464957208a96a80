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

/// <summary>HeaderTail alone: what it keeps and drops of a header's rest, fed in every two-chunk cut, and its bound.</summary>
[TestFixture]
public class HeaderTailTests
{
	static string Run(string input, int cut)
	{
		var t = new Upas.Smtpd.HeaderTail("example.com");
		var b = Encoding.Latin1.GetBytes(input);
		var o = new MemoryStream();
		o.Write(t.Filter(b.AsSpan(0, cut)).Span);
		o.Write(t.Filter(b.AsSpan(cut)).Span);
		o.Write(t.Flush().Span);
		return Encoding.Latin1.GetString(o.ToArray());
	}

	[TestCase("X-A: 1\nAuthentication-Results: example.com; spf=pass\nX-B: 2\n\nbody\n", "X-A: 1\nX-B: 2\n\nbody\n", TestName = "ours dropped")]
	[TestCase("Authentication-Results: (c) EXAMPLE.com;\n\tdkim=pass\nX-B: 2\n\nbody\n", "X-B: 2\n\nbody\n", TestName = "folded, comment, case")]
	[TestCase("Authentication-Results: mx.other.example; spf=fail\n\nb\n", "Authentication-Results: mx.other.example; spf=fail\n\nb\n", TestName = "another authserv-id kept")]
	[TestCase("X-upas-quarantine: x\n y\nX-B: 2\n\n", "X-B: 2\n\n", TestName = "quarantine dropped with its continuation")]
	[TestCase(" continued from the window\nX-B: 2\n\n", " continued from the window\nX-B: 2\n\n", TestName = "a continuation line first")]
	[TestCase("X-B: 2\n\nAuthentication-Results: example.com; in the body\n", "X-B: 2\n\nAuthentication-Results: example.com; in the body\n", TestName = "the body untouched")]
	[TestCase("X-B: 2\nAuthentication-Results: example.com; no LF at the end", "X-B: 2\n", TestName = "a last field without LF")]
	public void KeepsAndDrops(string input, string want)
	{
		for (var cut = 0; cut <= input.Length; cut++)
			Assert.That(Run(input, cut), Is.EqualTo(want), $"cut at {cut}");
	}

	[Test]
	public void AnOverlongLineIsPassedOnNotHeld()
	{
		var t = new Upas.Smtpd.HeaderTail("example.com");
		var big = new byte[Upas.Smtpd.DotReader.DefaultMaxLine + 1];
		Array.Fill(big, (byte)'x');
		Assert.That(t.Filter(big).Length, Is.EqualTo(big.Length), "no LF yet, but too long to hold");
	}
}

/// <summary>smtpd's per-session DNS cache: answers are shared, but what it keeps is bounded, whatever a hostile zone serves.</summary>
[TestFixture]
public class SessionDnsCacheTests
{
	[Test]
	public async Task RepeatsAreAskedOnceButHugeAnswersAreNotKept()
	{
		var big = new string('v', 60 * 1024);
		var table = new TableDns().Txt("small.test", "v=spf1 -all");
		for (var i = 0; i < 10; i++)
			table.Txt($"big{i}.test", big);
		var dns = new Upas.Smtpd.CachingDns(table);
		await dns.TxtAsync("small.test", CancellationToken.None);
		await dns.TxtAsync("small.test", CancellationToken.None);
		Assert.That(table.Queries, Is.EqualTo(1), "a repeated question is answered from the cache");
		for (var round = 0; round < 2; round++)
			for (var i = 0; i < 10; i++)
				Assert.That((await dns.TxtAsync($"big{i}.test", CancellationToken.None)).Records[0], Has.Length.EqualTo(big.Length));
		// 256 KiB keeps four 60 KiB answers: the other six are asked again in the second round
		Assert.That(table.Queries, Is.EqualTo(1 + 10 + 6));
	}
}
