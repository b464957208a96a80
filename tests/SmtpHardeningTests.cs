using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9 items 1 and 2, the client's side: smtp never dials a host written as a number, nor this host on
/// port 25 however it is named; an envelope address that would become more than one SMTP command is a
/// permanent failure before any connection; `--` ends the options.
/// </summary>
[Parallelizable(ParallelScope.All)]
public class SmtpHardeningTests
{
	const string D = Smtp.Domain;
	const string Msg = "Subject: x\n\nbody\n";

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		return t;
	}

	// 127.0.0.3, in the notations inet_aton(3) (and so a resolver) takes for an IPv4 address
	[TestCase("2130706435")]
	[TestCase("0x7f000003")]
	[TestCase("0X7F000003")]
	[TestCase("017700000003")]
	[TestCase("0177.3")]
	[TestCase("127.3")]
	[TestCase("127.0.3")]
	[TestCase("0x7f.0.0.3")]
	[TestCase("127.000.000.003")]
	[TestCase("127.0.0.03")]
	[TestCase("127.0.0.3.")]
	public void ABareNumberIsNeverDialled(string host)
	{
		using var t = NewTree();
		using var srv = new HostileServer(HostileServer.Accepting, ["127.0.0.3"]);
		var dial = $"tcp!{host}!{srv.Port}";
		var r = Smtp.Run(t, Msg, D, dial, "alice", "bob");
		NoCrash.Check(r, 1);
		var why = $"illegal address: host {host} is a number, not a name or a dotted quad";
		Assert.That(r.Err, Does.StartWith($"smtp: {why} ({dial})\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"{why} ({dial})" }));
		Assert.That(srv.Connections, Is.Zero);
	}

	[Test]
	public void ADottedQuadOnAnotherPortIsStillDialled()
	{
		using var t = NewTree();
		using var srv = new HostileServer(HostileServer.Accepting, ["127.0.0.3"]);
		var r = Smtp.Run(t, Msg, D, $"tcp!127.0.0.3!{srv.Port}", "alice", "bob");
		NoCrash.Check(r, 0);
		Assert.That(srv.Received, Does.Contain("RCPT TO:<bob@127.0.0.3>\r\n"));
	}

	[TestCase("2130706433")]
	[TestCase("127.1")]
	public void ABareNumberGatewayIsNeverDialled(string host)
	{
		using var t = NewTree();
		using var srv = new HostileServer(HostileServer.Accepting);
		// an unknown service cannot be translated: the gateway is tried, with no DNS query at all
		var r = Smtp.Run(t, Msg, "-g", $"tcp!{host}!{srv.Port}", D, "tcp!dest.test!nosuchservice", "alice", "bob");
		NoCrash.Check(r, 1);
		Assert.That(r.Err, Does.StartWith($"smtp: illegal address: host {host} is a number, not a name or a dotted quad (gateway) (tcp!dest.test!nosuchservice)\n"));
		Assert.That(srv.Connections, Is.Zero);
	}

	[TestCase("a%%0D%%0ARSET%%0D%%0AMAIL FROM:<x@y>@z", "bob", @"illegal sender address a\x0d\x0aRSET\x0d\x0aMAIL FROM:<x@y>@z: control character in address")]
	[TestCase("alice", "bob%%0D%%0ADATA", @"illegal recipient address bob\x0d\x0aDATA: control character in address")]
	[TestCase("alice", "bob\r\nRSET", @"illegal recipient address bob\x0d\x0aRSET: control character in address")]
	[TestCase("alice\n", "bob", @"illegal sender address alice\x0a: control character in address")]
	[TestCase("alice", "evil.example!a%%0Db", @"illegal recipient address a\x0db@evil.example: control character in address")]
	[TestCase("alice", "bob%%00x", @"illegal recipient address bob\x00x: control character in address")]
	[TestCase("alice", "bob%%7F", @"illegal recipient address bob\x7f: control character in address")]
	[TestCase("alice", "bob%%09x", @"illegal recipient address bob\x09x: control character in address")]
	[TestCase("alice%%3E SIZE=1", "bob", "illegal sender address alice> SIZE=1: angle bracket in address")]
	[TestCase("alice", "bob>", "illegal recipient address bob>: angle bracket in address")]
	[TestCase("alice", "<bob", "illegal recipient address <bob: angle bracket in address")]
	public void AnAddressThatWouldBeMoreThanOneCommandIsPermanentBeforeConnecting(string sender, string rcpt, string why)
	{
		using var t = NewTree();
		using var srv = new HostileServer(HostileServer.Accepting);
		var r = Smtp.Run(t, Msg, D, srv.Dial, sender, "carol", rcpt);
		NoCrash.Check(r, 1);
		Assert.That(r.Err, Is.EqualTo($"smtp: {why}\nPermanent Failure\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"{why} ({srv.Dial})" }));
		Assert.That(srv.Connections, Is.Zero);
		Assert.That(srv.Received, Is.Empty);
	}

	[TestCase("tcp!mx.example.org\r\nRSET!25", @"tcp!mx.example.org\x0d\x0aRSET!25")]
	[TestCase("tcp!mx.example.org!25\n", @"tcp!mx.example.org!25\x0a")]
	[TestCase("tcp!mx.example.org>!25", "tcp!mx.example.org>!25")]
	[TestCase("tcp!mx example.org", "tcp!mx example.org")]
	public void ADialStringWithAControlByteIsIllegal(string dial, string shown)
	{
		using var t = NewTree();
		var r = Smtp.Run(t, Msg, D, dial, "alice", "bob");
		NoCrash.Check(r, 1);
		Assert.That(r.Err, Is.EqualTo($"smtp: illegal address ({shown})\nPermanent Failure\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {shown} failed: illegal address" }));
	}

	[Test]
	public void AHostNameWithAControlByteIsIllegal()
	{
		using var t = NewTree();
		using var srv = new HostileServer(HostileServer.Accepting);
		// remotemail takes -h from the sender's domain
		var r = Smtp.Run(t, Msg, "-h", "evil.example\r\nRSET", D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 1);
		Assert.That(r.Err, Is.EqualTo("smtp: illegal host name evil.example\\x0d\\x0aRSET: control character in address\nPermanent Failure\n"));
		Assert.That(srv.Connections, Is.Zero);
	}

	[Test]
	public void WhatTheServerSaysIsLoggedWithItsControlBytesShown()
	{
		using var t = NewTree();
		using var srv = new HostileServer(c => {
			c.Say("220 mx.example.org");
			c.Line();
			c.Say("250 mx.example.org");
			c.Line();
			c.Say("550 no\x1b[2J\rsmtp Dec  1 00:00:00 forged line\0");
		});
		var r = Smtp.Run(t, Msg, D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 1);
		const string shown = @"550 no\x1b[2J\x0dsmtp Dec  1 00:00:00 forged line\x00";
		Assert.That(r.Err.Split('\n')[1], Is.EqualTo(shown));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {srv.Dial} failed: {shown}" }));
	}

	[Test]
	public void TheFilterRefusesASenderThatWouldForgeHeaderLines()
	{
		using var t = NewTree();
		var r = Smtp.Run(t, Msg, "-f", D, "tcp!mx.example.org", "alice%%0ABcc: victim@example.org");
		NoCrash.Check(r, 1);
		Assert.That(r.Out, Is.Empty);
		Assert.That(r.Err, Is.EqualTo("smtp: illegal sender address alice\\x0aBcc: victim@example.org: control character in address\nPermanent Failure\n"));
	}

	[Test]
	public void EscapedBytesThatAreHarmlessStillGoThrough()
	{
		using var t = NewTree();
		using var srv = new ScriptServer();
		var r = Smtp.Run(t, Msg, D, srv.Dial, "a%%28b%%29@x.example", "c%%25d%%3be@y.example");
		NoCrash.Check(r, 0);
		Assert.That(srv.Log[1..3], Is.EqualTo(new[] { "MAIL FROM:<a(b)@x.example>", "RCPT TO:<c%d;e@y.example>" }));
	}

	[Test]
	public void DoubleDashEndsTheOptions()
	{
		using var t = NewTree();
		using var srv = new ScriptServer();
		var r = Smtp.Run(t, Msg, "-h", "gnot.example.org", "--", D, srv.Dial, "alice", "-d", "-x");
		NoCrash.Check(r, 0);
		Assert.That(srv.Log[1..4], Is.EqualTo(new[] { "MAIL FROM:<alice@gnot.example.org>", "RCPT TO:<-d@127.0.0.1>", "RCPT TO:<-x@127.0.0.1>" }));
		Assert.That(r.Err, Is.Empty, "-d after -- is a recipient, not the trace flag");
	}
}

/// <summary>
/// This host on port 25 (issue 9 item 1): refused however it is named, before any connection. One at a time:
/// each needs port 25 on 127.0.0.1 and ::1 to see that nothing connects.
/// </summary>
[NonParallelizable]
public class SmtpHardeningPort25Tests
{
	const string D = Smtp.Domain;
	const string Msg = "Subject: x\n\nbody\n";

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		return t;
	}

	/// <summary>A server on port 25 of 127.0.0.1 (and ::1 when it can), to see nothing connects; null when the port is taken.</summary>
	static HostileServer? Port25() =>
		HostileServer.TryOn(25, HostileServer.Accepting, "127.0.0.1", "::1") ?? HostileServer.TryOn(25, HostileServer.Accepting, "127.0.0.1");

	static void Refused(Tree t, HostileServer? srv, SmtpRun r, string address)
	{
		NoCrash.Check(r, 1);
		Assert.That(r.Err, Does.Contain($"illegal: {address} is this host, not dialled on port 25"));
		if (srv is not null)
			Assert.That(srv.Connections, Is.Zero);
	}

	[TestCase("tcp!127.0.0.1", "127.0.0.1")]
	[TestCase("tcp!127.0.0.1!25", "127.0.0.1")]
	[TestCase("net!127.0.0.1!smtp", "127.0.0.1")]
	[TestCase("127.0.0.1", "127.0.0.1")]
	[TestCase("tcp!127.9.9.9", "127.9.9.9")]
	[TestCase("tcp!::1", "::1")]
	[TestCase("tcp!::ffff:127.0.0.1", "::ffff:127.0.0.1")]
	[TestCase("tcp!0.0.0.0", "0.0.0.0")]
	[TestCase("tcp!::", "::")]
	[TestCase("tcp!::ffff:0.0.0.0", "::ffff:0:0")]
	[TestCase("tcp!::127.0.0.1", "::127.0.0.1")]
	public void AnAddressOfThisHostIsNotDialledOnPort25(string dial, string address)
	{
		using var t = NewTree();
		using var srv = Port25();
		var r = Smtp.Run(t, Msg, D, dial, "alice", "bob");
		Refused(t, srv, r, address);
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"illegal: {address} is this host, not dialled on port 25 ({dial})" }));
	}

	[TestCase("tcp!127.0.0.1", "127.0.0.1")]
	[TestCase("tcp!self.test", "127.0.0.1")]	// a name, dialled through its address records
	[TestCase("tcp!::1!smtp", "::1")]
	public void AGatewayOfThisHostIsNotDialledOnPort25(string gw, string address)
	{
		using var t = NewTree();
		using var srv = Port25();
		using var dns = new Dnsmasq(DnsRecord.Zone("test"), DnsRecord.A("self.test", "127.0.0.1"));
		var r = Smtp.Run(t, Msg.Select(c => (byte)c).ToArray(), ["-g", gw, D, "tcp!dest.test!nosuchservice", "alice", "bob"], new Dictionary<string, string> { ["dnsserver"] = dns.Server });
		Refused(t, srv, r, address);
	}

	[TestCase("0.0.0.0")]
	[TestCase("127.0.0.2")]
	public void AnMxAtThisHostIsRefusedOnPort25(string a)
	{
		using var t = NewTree();
		using var srv = Port25();
		using var dns = new Dnsmasq(DnsRecord.Mx("zero.test", "mx.zero.test", 10), DnsRecord.A("mx.zero.test", a));
		var r = Smtp.Run(t, Msg.Select(c => (byte)c).ToArray(), [D, "tcp!zero.test", "alice", "bob"], new Dictionary<string, string> { ["dnsserver"] = dns.Server });
		NoCrash.Check(r, 1);
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"illegal: domain lists {a} as mail server (tcp!zero.test)" }));
		if (srv is not null)
			Assert.That(srv.Connections, Is.Zero);
	}

	[Test]
	public void AnAaaaAtThisHostIsRefusedOnPort25()
	{
		using var t = NewTree();
		using var srv = Port25();
		using var dns = new Dnsmasq(DnsRecord.Aaaa("six.test", "::ffff:127.0.0.1"));
		var r = Smtp.Run(t, Msg.Select(c => (byte)c).ToArray(), [D, "tcp!six.test", "alice", "bob"], new Dictionary<string, string> { ["dnsserver"] = dns.Server });
		NoCrash.Check(r, 1);
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { "illegal: domain lists ::ffff:127.0.0.1 as mail server (tcp!six.test)" }));
		if (srv is not null)
			Assert.That(srv.Connections, Is.Zero);
	}
}

/// <summary>The pure part: which hosts are bare numbers, which addresses are this host.</summary>
public class SmtpHardeningUnitTests
{
	[TestCase("2130706435", true)]
	[TestCase("0x7f000001", true)]
	[TestCase("0x", true)]
	[TestCase("0177.1", true)]
	[TestCase("127.1", true)]
	[TestCase("1.2.3.4.", true)]
	[TestCase("01.2.3.4", true)]
	[TestCase("1.2.3.256", true)]
	[TestCase("1.2.3.4.5", true)]
	[TestCase("1.2.3.4", false)]
	[TestCase("10.0.0.1", false)]
	[TestCase("255.255.255.255", false)]
	[TestCase("0xdead.example", false)]
	[TestCase("123.example", false)]
	[TestCase("mail9", false)]
	[TestCase("0xg1", false)]
	[TestCase("::1", false)]
	[TestCase("", false)]
	public void BareNumber(string host, bool want) => Assert.That(DialString.IsBareNumber(host), Is.EqualTo(want));

	[TestCase("127.0.0.1", true)]
	[TestCase("127.255.1.2", true)]
	[TestCase("0.0.0.0", true)]
	[TestCase("0.1.2.3", true)]
	[TestCase("::1", true)]
	[TestCase("::", true)]
	[TestCase("::ffff:127.0.0.1", true)]
	[TestCase("::ffff:0.0.0.0", true)]
	[TestCase("::127.0.0.1", true)]
	[TestCase("128.0.0.1", false)]
	[TestCase("10.0.0.1", false)]
	[TestCase("::ffff:10.0.0.1", false)]
	[TestCase("2001:db8::1", false)]
	[TestCase("fe80::1", false)]
	public void ThisHost(string a, bool want) => Assert.That(Upas.Smtp.DialGuard.IsThisHost(System.Net.IPAddress.Parse(a)), Is.EqualTo(want));
}
