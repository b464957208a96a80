using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// -r and smtpd.conf verifysenderdom (decisions #9, smtpd.md §15.3): an untrusted sender's domain must exist in
/// the DNS (A, AAAA or MX). Each test has its own dnsmasq on 127.0.0.1.
/// </summary>
public class SenderDomainTests
{
	const string Greeting = "220-example.com ESMTP\r\n220 \r\n250 example.com you are client.9fans.net\r\n";
	const string Bye = "221 2.0.0 Successful termination\r\n";

	Dnsmasq dns = null!;

	[SetUp]
	public void StartDns() => dns = new Dnsmasq(
		DnsRecord.A("withaddress.test", "192.0.2.10"),
		DnsRecord.Mx("mxonly.test", "mail.mxonly.test", 10),
		DnsRecord.Aaaa("v6only.test", "2001:db8::10"),
		DnsRecord.Txt("txtonly.test", "v=spf1 -all"),
		DnsRecord.Broken("broken.test"),
		DnsRecord.Silent("silent.test"),
		DnsRecord.Zone("42"));

	[TearDown]
	public void StopDns() => dns.Dispose();

	string Conf(bool verify = true, string? server = null) =>
		Tree.DefaultConf + $"dnsserver {server ?? dns.Server}\n" + (verify ? "verifysenderdom on\n" : "");

	/// <summary>HELO client.9fans.net, the commands, QUIT.</summary>
	static string Session(params string[] commands) =>
		"HELO client.9fans.net\r\n" + string.Concat(commands.Select(c => c + "\r\n")) + "QUIT\r\n";

	static string Replies(params string[] replies) => Greeting + string.Concat(replies.Select(r => r + "\r\n")) + Bye;

	/// <summary>
	/// How many queries (any type) dnsmasq has logged for name, in any case, after waiting for at least
	/// <paramref name="least"/> of them (its log is read asynchronously) and a moment for stray later ones.
	/// </summary>
	int Queries(string name, int least)
	{
		var re = new Regex($@"query\[\w+\] {Regex.Escape(name)} from ", RegexOptions.IgnoreCase);
		int Count() => dns.Log.Split('\n').Count(re.IsMatch);
		var deadline = DateTime.Now.AddSeconds(5);
		while (Count() < least && DateTime.Now < deadline)
			Thread.Sleep(20);
		Thread.Sleep(100);
		return Count();
	}

	[TestCase("withaddress.test", TestName = "SenderDomainWithAnARecordIsAccepted")]
	[TestCase("mxonly.test", TestName = "SenderDomainWithOnlyAnMXRecordIsAccepted")]
	[TestCase("v6only.test", TestName = "SenderDomainWithOnlyAnAAAARecordIsAccepted")]
	public void SenderDomainThatExistsIsAccepted(string domain)
	{
		using var t = new Tree(Conf());
		var r = t.Run(Session($"MAIL FROM:<alice@{domain}>"));
		Assert.That(r.Out, Is.EqualTo(Replies($"250 2.0.0 sender is {domain}!alice")));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.2 as client.9fans.net" }));
		Assert.That(Queries(domain, 1), Is.GreaterThanOrEqualTo(1), "smtpd did not ask the DNS");
	}

	[Test]
	public void NonexistentSenderDomainIsRefusedAndRemembered()
	{
		using var t = new Tree(Conf());
		var r = t.Run(Session("MAIL FROM:<alice@nonexistent.test>", "RSET", "MAIL FROM:<bob@NonExistent.test>"));
		Assert.That(r.Out, Is.EqualTo(Replies(
			"554 5.7.1 Sender domain must exist: nonexistent.test!alice",
			"250 2.0.0 ok",
			"554 5.1.8 Sender domain must exist: NonExistent.test!bob")));
		Assert.That(t.Log(), Is.EqualTo(new[] {
			"helo from 127.0.0.2 as client.9fans.net",
			"Refused nonexistent.test!alice (client.9fans.net/127.0.0.2)",
			"Refused NonExistent.test!bob (client.9fans.net/127.0.0.2)",
		}));
		// NXDOMAIN on the first query settles it, and the second MAIL asks nothing
		Assert.That(Queries("nonexistent.test", 1), Is.EqualTo(1));
	}

	[Test]
	public void SenderDomainWithNoAddressOrMXIsRefused()
	{
		using var t = new Tree(Conf());
		var r = t.Run(Session("MAIL FROM:<alice@txtonly.test>"));
		Assert.That(r.Out, Is.EqualTo(Replies("554 5.7.1 Sender domain must exist: txtonly.test!alice")));
		Assert.That(t.Log()[1..], Is.EqualTo(new[] { "Refused txtonly.test!alice (client.9fans.net/127.0.0.2)" }));
		// MX, A and AAAA were all asked: each answered NODATA
		Assert.That(Queries("txtonly.test", 3), Is.EqualTo(3));
	}

	[Test]
	public void DnsFailureIsATemporaryError()
	{
		using var t = new Tree(Conf());
		var r = t.Run(Session("MAIL FROM:<alice@broken.test>", "MAIL FROM:<alice@withaddress.test>"));
		Assert.That(r.Out, Is.EqualTo(Replies(
			"450 4.4.3 Cannot check that sender domain exists, try again later: broken.test!alice",
			"250 2.0.0 sender is withaddress.test!alice")));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.2 as client.9fans.net" }));
	}

	[Test]
	public void DnsTimeoutIsATemporaryError()
	{
		// the server never answers: smtpd waits out its DNS timeouts (slow), then says try later
		using var t = new Tree(Conf());
		var r = t.Run(Session("MAIL FROM:<alice@silent.test>"));
		Assert.That(r.Out, Is.EqualTo(Replies("450 4.4.3 Cannot check that sender domain exists, try again later: silent.test!alice")));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.2 as client.9fans.net" }));
	}

	[Test]
	public void TrustedClientIsNotChecked()
	{
		using var t = new Tree(Conf(), peer: "10.1.2.3");
		var r = t.Run(Session("MAIL FROM:<alice@nonexistent.test>"));
		Assert.That(r.Out, Is.EqualTo(Replies("250 2.0.0 sender is nonexistent.test!alice")));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 10.1.2.3 as client.9fans.net" }));
		Assert.That(Queries("nonexistent.test", 0), Is.EqualTo(0));
	}

	[Test]
	public void NullSenderAndAddressLiteralsNeedNoDns()
	{
		// no DNS server answers at all: a look-up would end in 450
		using var t = new Tree(Conf(server: $"127.0.0.1!{Dnsmasq.FreePort()}"));
		var r = t.Run(Session("MAIL FROM:<>", "RSET", "MAIL FROM:<a@[192.0.2.1]>", "RSET", "MAIL FROM:<a@192.0.2.1>", "RSET", "MAIL FROM:<a@[IPv6:2001:db8::1]>"));
		Assert.That(r.Out, Is.EqualTo(Replies(
			"250 2.0.0 sender is /dev/null",
			"250 2.0.0 ok",
			"250 2.0.0 sender is [192.0.2.1]!a",
			"250 2.0.0 ok",
			"250 2.0.0 sender is 192.0.2.1!a",
			"250 2.0.0 ok",
			"250 2.0.0 sender is [IPv6:2001:db8::1]!a")));
	}

	[Test]
	public void AllDigitDomainIsNotAnAddressLiteral()
	{
		// "42" parses as an IPv4 address (0.0.0.42), but only a dotted quad is an address literal
		using var t = new Tree(Conf());
		var r = t.Run(Session("MAIL FROM:<alice@42>"));
		Assert.That(r.Out, Is.EqualTo(Replies("554 5.7.1 Sender domain must exist: 42!alice")));
	}

	[Test]
	public void NameTheDnsCannotHoldIsRefused()
	{
		// a label longer than 63 bytes: no such domain can exist (and smtpd must not fall over)
		var label = new string('x', 64);
		using var t = new Tree(Conf());
		var r = t.Run(Session($"MAIL FROM:<alice@{label}.test>", "MAIL FROM:<alice@withaddress.test>"));
		Assert.That(r.Out, Is.EqualTo(Replies(
			$"554 5.7.1 Sender domain must exist: {label}.test!alice",
			"250 2.0.0 sender is withaddress.test!alice")));
		Assert.That(t.Log()[1..], Is.EqualTo(new[] { $"Refused {label}.test!alice (client.9fans.net/127.0.0.2)" }));
	}

	[Test]
	public void DashRWithDnsserverFromTheEnvironment()
	{
		using var t = new Tree();
		var env = new Dictionary<string, string> { ["dnsserver"] = dns.Server };
		var r = t.Run(System.Text.Encoding.Latin1.GetBytes(Session("MAIL FROM:<alice@nonexistent.test>", "MAIL FROM:<alice@withaddress.test>")), ["-r"], env);
		Assert.That(r.Out, Is.EqualTo(Replies(
			"554 5.7.1 Sender domain must exist: nonexistent.test!alice",
			"250 2.0.0 sender is withaddress.test!alice")));
		Assert.That(t.Log(), Is.EqualTo(new[] {
			"helo from 127.0.0.2 as client.9fans.net",
			"Refused nonexistent.test!alice (client.9fans.net/127.0.0.2)",
		}));
	}

	[Test]
	public void WithoutDashRNorVerifysenderdomTheDomainIsNotChecked()
	{
		using var t = new Tree(Conf(verify: false));
		var env = new Dictionary<string, string> { ["dnsserver"] = dns.Server };
		var r = t.Run(System.Text.Encoding.Latin1.GetBytes(Session("MAIL FROM:<alice@nonexistent.test>")), [], env);
		Assert.That(r.Out, Is.EqualTo(Replies("250 2.0.0 sender is nonexistent.test!alice")));
		Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.2 as client.9fans.net" }));
		// SPF (issue 12) asks for the domain's TXT record; the existence check (A, AAAA, MX) is not made
		Assert.That(Queries("nonexistent.test", 1), Is.EqualTo(1));
		Assert.That(dns.Log, Does.Contain("query[TXT] nonexistent.test from ").And.Not.Contain("query[MX] nonexistent.test").And.Not.Contain("query[A] nonexistent.test"));
	}

	[Test]
	public void FixtureAnswersAsConfigured()
	{
		// the fixture itself (the smtp client's MX tests rely on it): MX preferences, NODATA, NXDOMAIN, REFUSED
		using var mx = new Dnsmasq(
			DnsRecord.Mx("dest.test", "mx2.dest.test", 20),
			DnsRecord.Mx("dest.test", "mx1.dest.test", 10),
			DnsRecord.A("mx1.dest.test", "127.0.0.1"),
			DnsRecord.Aaaa("mx1.dest.test", "::1"),
			DnsRecord.Broken("broken.test"));
		Assert.That(mx.Server, Is.EqualTo($"127.0.0.1!{mx.Port}"));
		var c = mx.Client();
		var r = c.Query("dest.test", DnsClient.QueryType.MX);
		Assert.That(r.Answers.MxRecords().OrderBy(m => m.Preference).Select(m => $"{m.Preference} {m.Exchange}"),
			Is.EqualTo(new[] { "10 mx1.dest.test.", "20 mx2.dest.test." }));
		Assert.That(c.Query("mx1.dest.test", DnsClient.QueryType.A).Answers.ARecords().Single().Address.ToString(), Is.EqualTo("127.0.0.1"));
		Assert.That(c.Query("mx1.dest.test", DnsClient.QueryType.AAAA).Answers.AaaaRecords().Single().Address.ToString(), Is.EqualTo("::1"));
		var nodata = c.Query("dest.test", DnsClient.QueryType.A);
		Assert.That((nodata.HasError, nodata.Answers.Count), Is.EqualTo((false, 0)));
		Assert.That(c.Query("nowhere.test", DnsClient.QueryType.MX).Header.ResponseCode, Is.EqualTo(DnsClient.DnsHeaderResponseCode.NotExistentDomain));
		Assert.That(c.Query("broken.test", DnsClient.QueryType.MX).Header.ResponseCode, Is.EqualTo(DnsClient.DnsHeaderResponseCode.Refused));
		Assert.That(c.Query("elsewhere.org", DnsClient.QueryType.MX).Header.ResponseCode, Is.EqualTo(DnsClient.DnsHeaderResponseCode.Refused));
	}
}
