using NUnit.Framework;

namespace Upas.Tests;

/// <summary>MX lookup and dialling (smtp.md §3) against dnsmasq on 127.0.0.1; the mail servers are scripted
/// servers on 127.0.0.1 and 127.0.0.2, on one port, named by the dial string (loopback answers are allowed
/// for a port other than smtp's).</summary>
[Parallelizable(ParallelScope.All)]
public class SmtpMxTests
{
	const string D = Smtp.Domain;
	const string Full = "Subject: mx\n\nbody\n";

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		return t;
	}

	static SmtpRun Run(Tree t, Dnsmasq dns, params string[] args) =>
		Smtp.Run(t, System.Text.Encoding.Latin1.GetBytes(Full), args, new Dictionary<string, string> { ["dnsserver"] = dns.Server });

	/// <summary>Servers on 127.0.0.1 and 127.0.0.2 listening on the same port.</summary>
	static (ScriptServer One, ScriptServer Two) Pair()
	{
		var one = new ScriptServer("127.0.0.1");
		return (one, new ScriptServer("127.0.0.2", one.Endpoint.Port));
	}

	[Test]
	public void PreferenceOrderAndBusted()
	{
		using var t = NewTree();
		var (one, two) = Pair();
		using var _1 = one;
		using var _2 = two;
		using var dns = new Dnsmasq(
			DnsRecord.Mx("dest.test", "mx2.dest.test", 20),
			DnsRecord.Mx("dest.test", "mx1.dest.test", 10),
			DnsRecord.A("mx1.dest.test", "127.0.0.2"),
			DnsRecord.A("mx2.dest.test", "127.0.0.1"));
		var dial = $"tcp!dest.test!{one.Endpoint.Port}";
		var r = Run(t, dns, D, dial, "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That((one.Messages.Count, two.Messages.Count), Is.EqualTo((0, 1)));
		Assert.That(two.Log[2], Is.EqualTo("RCPT TO:<bob@dest.test>"));
		var b = Run(t, dns, "-b", "mx1.dest.test", D, dial, "alice", "bob");
		Assert.That(b.Exit, Is.EqualTo(0), b.Err);
		Assert.That((one.Messages.Count, two.Messages.Count), Is.EqualTo((1, 1)));
	}

	[Test]
	public void NextMxWhenRefused()
	{
		using var t = NewTree();
		using var one = new ScriptServer("127.0.0.1");
		using var dns = new Dnsmasq(
			DnsRecord.Mx("dest.test", "mx1.dest.test", 10),
			DnsRecord.Mx("dest.test", "mx2.dest.test", 20),
			DnsRecord.A("mx1.dest.test", "127.0.0.2"),	// nothing listens there
			DnsRecord.A("mx2.dest.test", "127.0.0.1"));
		var r = Run(t, dns, "-d", D, $"tcp!dest.test!{one.Endpoint.Port}", "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(one.Messages, Has.Count.EqualTo(1));
		Assert.That(r.Err, Does.Contain("mxdial trying tcp!mx1.dest.test!").And.Contain("mxdial trying tcp!mx2.dest.test!"));
	}

	[Test]
	public void NoMxMeansTheHostItself()
	{
		using var t = NewTree();
		using var one = new ScriptServer("127.0.0.1");
		using var dns = new Dnsmasq(DnsRecord.A("plain.test", "127.0.0.1"));
		var r = Run(t, dns, D, $"tcp!plain.test!{one.Endpoint.Port}", "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(one.Log[2], Is.EqualTo("RCPT TO:<bob@plain.test>"));
	}

	[Test]
	public void FirstConnectionIsFinal()
	{
		using var t = NewTree();
		var (one, two) = Pair();
		using var _1 = one;
		using var _2 = two;
		one.Answer = c => c.StartsWith("MAIL") ? "451 4.3.0 not now" : null;
		using var dns = new Dnsmasq(
			DnsRecord.Mx("dest.test", "mx1.dest.test", 10),
			DnsRecord.Mx("dest.test", "mx2.dest.test", 20),
			DnsRecord.A("mx1.dest.test", "127.0.0.1"),
			DnsRecord.A("mx2.dest.test", "127.0.0.2"));
		var r = Run(t, dns, D, $"tcp!dest.test!{one.Endpoint.Port}", "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(2));
		Assert.That(two.Log, Is.Empty);
	}

	/// <summary>Run under strace: every address smtp connects or sends a datagram to is a loopback one
	/// (no DNS query leaves the machine, not even through the system's resolver).</summary>
	static SmtpRun RunOnLoopbackOnly(Tree t, Dnsmasq dns, params string[] args)
	{
		var file = t.P("/strace.out");
		var psi = Strace.Wrap(Smtp.Start(t, args, new Dictionary<string, string> { ["dnsserver"] = dns.Server }), file, "connect,sendto,sendmsg,sendmmsg");
		var (outp, err, exit) = Tree.Exec(psi, System.Text.Encoding.Latin1.GetBytes(Full));
		var trace = File.ReadAllText(file);
		var v4 = System.Text.RegularExpressions.Regex.Matches(trace, @"inet_addr\(""([^""]+)""\)").Select(m => m.Groups[1].Value);
		var v6 = System.Text.RegularExpressions.Regex.Matches(trace, @"inet_pton\(AF_INET6,\s*""([^""]+)""").Select(m => m.Groups[1].Value);
		var away = v4.Where(a => !a.StartsWith("127.")).Concat(v6.Where(a => a != "::1" && !a.StartsWith("::ffff:127."))).Distinct().ToList();
		Assert.That(away, Is.Empty, "smtp talked to addresses off the machine");
		Assert.That(v4, Does.Contain("127.0.0.1"), "the trace shows smtp's own connections");
		return new SmtpRun(outp, err, exit);
	}

	[Test]
	public void UnknownNameIsPermanentAndTakesTheGateway()
	{
		using var t = NewTree();
		using var gw = new ScriptServer("127.0.0.1");
		using var dns = new Dnsmasq();
		var dial = $"tcp!nosuch.test!{gw.Endpoint.Port}";
		var r = RunOnLoopbackOnly(t, dns, D, dial, "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(1), r.Err);
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"can't translate address ({dial})" }));
		var g = RunOnLoopbackOnly(t, dns, "-g", $"tcp!127.0.0.1!{gw.Endpoint.Port}", D, dial, "alice", "bob");
		Assert.That(g.Exit, Is.EqualTo(0), g.Err);
		Assert.That(gw.Log[2], Is.EqualTo("RCPT TO:<bob@nosuch.test>"));
	}

	[Test]
	public void DnsFailureIsRetryAndNoGateway()
	{
		using var t = NewTree();
		using var gw = new ScriptServer("127.0.0.1");
		using var dns = new Dnsmasq(DnsRecord.Broken("broken.test"));
		var r = Run(t, dns, "-g", $"tcp!127.0.0.1!{gw.Endpoint.Port}", D, "tcp!mail.broken.test!25", "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(2), r.Err);
		Assert.That(t.Log("smtp.fail")[0], Does.StartWith("dns failure"));
		Assert.That(gw.Log, Is.Empty);
	}

	[Test]
	public void LoopbackMxRefusedOnTheSmtpPort()
	{
		using var t = NewTree();
		using var dns = new Dnsmasq(DnsRecord.Mx("loop.test", "mx.loop.test", 10), DnsRecord.A("mx.loop.test", "127.0.0.1"));
		var r = Run(t, dns, D, "tcp!loop.test", "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(1), r.Err);
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { "illegal: domain lists 127.0.0.1 as mail server (tcp!loop.test)" }));
	}

	[Test]
	public void NullMxIsPermanent()
	{
		using var t = NewTree();
		using var dns = new Dnsmasq(DnsRecord.Mx("nomail.test", ".", 0));
		var r = Run(t, dns, D, "tcp!nomail.test!2525", "alice", "bob");
		Assert.That(r.Exit, Is.EqualTo(1), r.Err);
		Assert.That(t.Log("smtp.fail")[0], Does.StartWith("illegal: domain nomail.test accepts no mail"));
	}
}
