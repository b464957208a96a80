using System.Net;
using System.Net.Sockets;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

public class ConfTests
{
	static Conf Parse(string text, List<string>? logs = null) => Conf.Parse(text, s => (logs ?? []).Add(s));

	[Test]
	public void Defaults()
	{
		var c = Parse("");
		Assert.Multiple(() => {
			Assert.That(c.DefaultDomain, Is.Null);
			Assert.That(c.NoRelay || c.VerifySenderDom || c.SaveBlockedMsg, Is.False);
			Assert.That(c.OurNets, Is.Empty);
			Assert.That(c.OurDomains, Is.Empty);
			Assert.That(c.GreetDelay, Is.EqualTo(3));
			Assert.That(c.MaxMessage, Is.EqualTo(67108864));
			Assert.That(c.MaxRcpts, Is.EqualTo(1000));
			Assert.That(c.IdleTimeout, Is.EqualTo(300));
			Assert.That(c.DataTimeout, Is.EqualTo(180));
			Assert.That(c.SessionTimeout, Is.EqualTo(2700));
			Assert.That(c.DnsServers, Is.Empty);
		});
	}

	[Test]
	public void EveryKeyword()
	{
		var logs = new List<string>();
		var c = Parse("""
			# smtpd.conf
			defaultdomain   Example.COM
			norelay         on
			verifysenderdom on
			saveblockedmsg  on
			ournets         192.168.0.0/16, 10.0.0.0/8
			ourdomains      example.com, *.example.com
			greetdelay      0
			maxmsgsize      1048576
			maxrcpts        50
			idletimeout     60
			datatimeout     30
			sessiontimeout  600
			dnsserver       192.0.2.53
			dnsserver       2001:db8::53!5353
			""", logs);
		Assert.Multiple(() => {
			Assert.That(logs, Is.Empty);
			Assert.That(c.DefaultDomain, Is.EqualTo("example.com"));
			Assert.That(c.NoRelay && c.VerifySenderDom && c.SaveBlockedMsg, Is.True);
			Assert.That(c.OurNets.Select(n => n.ToString()), Is.EqualTo(new[] { "192.168.0.0/16", "10.0.0.0/8" }));
			Assert.That(c.OurDomains, Is.EqualTo(new[] { "example.com", "*.example.com" }));
			Assert.That(c.GreetDelay, Is.EqualTo(0));
			Assert.That(c.MaxMessage, Is.EqualTo(1048576));
			Assert.That(c.MaxRcpts, Is.EqualTo(50));
			Assert.That(c.IdleTimeout, Is.EqualTo(60));
			Assert.That(c.DataTimeout, Is.EqualTo(30));
			Assert.That(c.SessionTimeout, Is.EqualTo(600));
			Assert.That(c.DnsServers, Is.EqualTo(new[] { "192.0.2.53", "2001:db8::53!5353" }));
		});
	}

	[Test]
	public void ListsAccumulateAndFirstDomainWins()
	{
		var c = Parse("""
			defaultdomain first.org
			ournets 10.0.0.0/8
			ourdomains a.org
			defaultdomain second.org
			ournets 2001:db8::/32
			ourdomains b.org, c.org
			""");
		Assert.That(c.DefaultDomain, Is.EqualTo("first.org"));
		Assert.That(c.OurNets, Has.Count.EqualTo(2));
		Assert.That(c.OurNets[1].Contains("2001:db8::7"), Is.True);
		Assert.That(c.OurDomains, Is.EqualTo(new[] { "a.org", "b.org", "c.org" }));
	}

	[TestCase("norelay on", true)]
	[TestCase("norelay ON", true)]
	[TestCase("norelay off", false)]
	[TestCase("norelay yes", false)]
	[TestCase("norelay on\nnorelay off", true)]
	public void OnlyOnTurnsOn(string text, bool want) => Assert.That(Parse(text).NoRelay, Is.EqualTo(want));

	[TestCase("frobnicate 1", "smtpd.conf:1: unknown keyword: frobnicate 1")]
	[TestCase("norelay", "smtpd.conf:1: wrong argument count: norelay")]
	[TestCase("norelay on off", "smtpd.conf:1: wrong argument count: norelay on off")]
	[TestCase("defaultdomain", "smtpd.conf:1: wrong argument count: defaultdomain")]
	[TestCase("ournets", "smtpd.conf:1: wrong argument count: ournets")]
	[TestCase("ournets 10.0.0.0/8, 10.0.0.0/33", "smtpd.conf:1: bad CIDR 10.0.0.0/33: ournets 10.0.0.0/8, 10.0.0.0/33")]
	[TestCase("ournets example.com", "smtpd.conf:1: bad CIDR example.com: ournets example.com")]
	[TestCase("maxrcpts many", "smtpd.conf:1: bad number many: maxrcpts many")]
	[TestCase("maxrcpts 0", "smtpd.conf:1: bad number 0: maxrcpts 0")]
	[TestCase("greetdelay -1", "smtpd.conf:1: bad number -1: greetdelay -1")]
	[TestCase("idletimeout 99999999999", "smtpd.conf:1: bad number 99999999999: idletimeout 99999999999")]
	[TestCase("maxmsgsize 1 2", "smtpd.conf:1: wrong argument count: maxmsgsize 1 2")]
	[TestCase("dnsserver ns.example.com", "smtpd.conf:1: bad address ns.example.com: dnsserver ns.example.com")]
	[TestCase("dnsserver 192.0.2.1!0", "smtpd.conf:1: bad address 192.0.2.1!0: dnsserver 192.0.2.1!0")]
	public void BadLineIsLoggedAndIgnored(string line, string want)
	{
		var logs = new List<string>();
		var c = Parse(line, logs);
		Assert.That(logs, Is.EqualTo(new[] { want }));
		Assert.That(c.OurNets, Is.Empty, "a bad ournets line adds nothing");
		Assert.That(c.MaxRcpts, Is.EqualTo(1000));
	}

	[Test]
	public void LineNumbersCountBlankAndCommentLines()
	{
		var logs = new List<string>();
		var c = Parse("# comment\n\n   \t\nmaxrcpts ten\r\nnorelay on\nbogus\n", logs);
		Assert.That(logs, Is.EqualTo(new[] { "smtpd.conf:4: bad number ten: maxrcpts ten", "smtpd.conf:6: unknown keyword: bogus" }));
		Assert.That(c.NoRelay, Is.True);
	}

	[Test]
	public void BackslashEscapesHashAndCommasSeparate()
	{
		var c = Parse("ourdomains a\\#b.org,,c.org , d.org # e.org\nournets 10.0.0.0/8,,192.168.1");
		Assert.That(c.OurDomains, Is.EqualTo(new[] { "a#b.org", "c.org", "d.org" }));
		Assert.That(c.OurNets, Has.Count.EqualTo(2));
		Assert.That(c.OurNets[1].Contains("192.168.1.77"), Is.True);
		Assert.That(c.OurNets[1].Contains("192.168.2.1"), Is.False);
	}
}

public class BlockedTests
{
	// files.md §3.2
	const string Example = """
		#	addresses that we refuse to accept messages from
		dial	152.166.0.0/15, 152.168.0.0/14		# modem pool
		allow	63.12.0.0/16				# a good mail server inside the pool below
		dial	63.0.0.0/11
		block	255.255.255.255/32
		*block	cyberpromo.com!*			# everyone at that domain
		*block	*!freeporn*				# any user name starting freeporn
		*allow	cse.psu.edu!owner-9fans
		*deny	example.net!loopingrobot		# "contact postmaster" rejection
		*delay	*.spamhaus.example!*			# accept, dump, answer 450, never deliver
		""";

	static readonly Blocked Ex = Blocked.Parse(Example);

	[TestCase("152.166.1.1", Verdict.Dialup)]
	[TestCase("152.167.255.255", Verdict.Dialup)]
	[TestCase("152.171.0.1", Verdict.Dialup)]
	[TestCase("152.172.0.1", Verdict.Accept)]
	[TestCase("63.12.5.5", Verdict.Accept)] // allow beats the dial line after it
	[TestCase("63.13.5.5", Verdict.Dialup)]
	[TestCase("63.31.0.1", Verdict.Dialup)]
	[TestCase("63.32.0.1", Verdict.Accept)]
	[TestCase("255.255.255.255", Verdict.Blocked)]
	[TestCase("::ffff:152.166.1.1", Verdict.Dialup)]
	[TestCase("192.0.2.7", Verdict.Accept)]
	[TestCase("", Verdict.Accept)]
	public void ExampleIp(string rsys, Verdict want) => Assert.That(Ex.IpVerdict(rsys), Is.EqualTo(want));

	[TestCase("cyberpromo.com!joe", Verdict.Blocked)]
	[TestCase("relay.org!cyberpromo.com!joe", Verdict.Blocked)] // any domain component
	[TestCase("mail.cyberpromo.com!joe", Verdict.Accept)] // no *. so exact
	[TestCase("example.org!freeporn", Verdict.Blocked)]
	[TestCase("example.org!freeporn4u", Verdict.Blocked)]
	[TestCase("freeporn", Verdict.Blocked)]
	[TestCase("example.org!free", Verdict.Accept)]
	[TestCase("example.org!xfreeporn", Verdict.Accept)]
	[TestCase("cse.psu.edu!owner-9fans", Verdict.Accept)]
	[TestCase("example.net!loopingrobot", Verdict.Denied)]
	[TestCase("example.net!loopingrobots", Verdict.Accept)]
	[TestCase("a.example.net!loopingrobot", Verdict.Accept)]
	[TestCase("spamhaus.example!bob", Verdict.Delay)]
	[TestCase("mx.spamhaus.example!bob", Verdict.Delay)]
	[TestCase("notspamhaus.example!bob", Verdict.Accept)]
	[TestCase("", Verdict.Accept)]
	public void ExampleAccount(string path, Verdict want) => Assert.That(Ex.AccountVerdict(path), Is.EqualTo(want));

	[TestCase("dial 10.0.0.0/8\nallow 10.1.0.0/16")]
	[TestCase("allow 10.1.0.0/16\ndial 10.0.0.0/8")]
	[TestCase("block 10.0.0.0/8\ndeny 10.0.0.0/8\ndelay 10.0.0.0/8\nallow 10.1.2.3")]
	public void AllowBeatsEverythingWhereverItIs(string text)
	{
		var b = Blocked.Parse(text);
		Assert.That(b.IpVerdict("10.1.2.3"), Is.EqualTo(Verdict.Accept));
		Assert.That(b.IpVerdict("10.2.2.3"), Is.Not.EqualTo(Verdict.Accept));
	}

	[TestCase("delay 10.0.0.0/8\ndial 10.0.0.0/8\ndeny 10.0.0.0/8\nblock 10.0.0.0/8", Verdict.Blocked)]
	[TestCase("delay 10.0.0.0/8\ndial 10.0.0.0/8\ndeny 10.0.0.0/8", Verdict.Denied)]
	[TestCase("delay 10.0.0.0/8\ndial 10.0.0.0/8", Verdict.Dialup)]
	[TestCase("relay 10.0.0.0/8", Verdict.Delay)]
	[TestCase("accept 10.0.0.0/8\nblock 10.0.0.0/8", Verdict.Accept)]
	[TestCase("frob 10.0.0.0/8", Verdict.Accept)]
	[TestCase("block 10.1.2.3/8", Verdict.Blocked)] // masked, unlike the original
	[TestCase("block 10.9", Verdict.Blocked)] // two octets: /16
	[TestCase("block 10", Verdict.Accept)] // one octet: /16 too, never class A
	[TestCase("*block 10.0.0.0/8", Verdict.Accept)] // a sender pattern, not an address
	public void VerbOrderAndIpForms(string text, Verdict want) =>
		Assert.That(Blocked.Parse(text).IpVerdict("10.9.9.9"), Is.EqualTo(want));

	[TestCase("deny 2001:db8::/32", "2001:db8:5::1", Verdict.Denied)]
	[TestCase("deny 2001:db8::/32", "2001:db9::1", Verdict.Accept)]
	[TestCase("deny 2001:db8::1", "2001:db8::1", Verdict.Denied)]
	public void Ipv6(string text, string rsys, Verdict want) =>
		Assert.That(Blocked.Parse(text).IpVerdict(rsys), Is.EqualTo(want));

	[TestCase("*block dom.org", "dom.org!u", Verdict.Blocked)]
	[TestCase("*block dom.org!", "x.org!dom.org!u", Verdict.Blocked)]
	[TestCase("*block dom.org!*", "dom.org!x.org!u", Verdict.Blocked)]
	[TestCase("*block dom.org", "sub.dom.org!u", Verdict.Accept)]
	[TestCase("*block *.dom.org", "dom.org!u", Verdict.Blocked)]
	[TestCase("*block *.dom.org!", "a.b.dom.org!u", Verdict.Blocked)]
	[TestCase("*block *.dom.org!*", "xdom.org!u", Verdict.Accept)]
	[TestCase("*block !bob", "any.org!bob", Verdict.Blocked)]
	[TestCase("*block *!bob", "bob", Verdict.Blocked)]
	[TestCase("*block *!bob", "any.org!bobby", Verdict.Accept)]
	[TestCase("*block dom.org!bob", "dom.org!bob", Verdict.Blocked)]
	[TestCase("*block dom.org!bob", "dom.org!relay.org!bob", Verdict.Accept)] // only the last domain counts
	[TestCase("*block dom.org!bob", "bob", Verdict.Accept)]
	[TestCase("*block *.dom.org!bob", "mx.dom.org!bob", Verdict.Blocked)]
	[TestCase("*block *.dom.org!bob*", "mx.dom.org!bobby", Verdict.Blocked)]
	[TestCase("* block dom.org", "dom.org!u", Verdict.Blocked)] // lone * then the verb
	[TestCase("*relay dom.org", "dom.org!u", Verdict.Delay)]
	[TestCase("*block Dom.ORG!Bob", "dom.org!bob", Verdict.Blocked)] // the file is lower-cased too
	public void Patterns(string text, string path, Verdict want) =>
		Assert.That(Blocked.Parse(text).AccountVerdict(path), Is.EqualTo(want));

	[TestCase("*")]
	[TestCase("!")]
	[TestCase("*!")]
	[TestCase("!*")]
	[TestCase("*!*")]
	public void DangerousPatternsAreIgnored(string pattern)
	{
		var logs = new List<string>();
		var b = Blocked.Parse($"*block {pattern}", logs.Add);
		Assert.That(b.AccountVerdict("any.org!anyone"), Is.EqualTo(Verdict.Accept));
		Assert.That(b.AccountVerdict("anyone"), Is.EqualTo(Verdict.Accept));
		Assert.That(logs, Has.Count.EqualTo(1));
	}

	[Test]
	public void BadEntriesAreLogged()
	{
		var logs = new List<string>();
		Blocked.Parse("frob 1.2.3.4\n\nblock 10.0.0.0/99", logs.Add);
		Assert.That(logs, Is.EqualTo(new[] { "blocked:1: unknown verb: frob 1.2.3.4", "blocked:3: bad address block 10.0.0.0/99" }));
	}
}

public class KilledTests
{
	[TestCase("192.0.2.7", "192.0.2.7", true)]
	[TestCase("192.0.2.8", "192.0.2.7", false)]
	[TestCase("192.0.2.8", "192.0.2", true)] // 3 octets: /24
	[TestCase("192.0.3.8", "192.0.2", false)]
	[TestCase("192.7.3.8", "192.7", true)] // 2 octets: /16
	[TestCase("192.8.3.8", "192", false)] // 1 octet: /16, never class A
	[TestCase("192.0.3.8", "192", true)]
	[TestCase("10.1.2.3", "10.0.0.0/8", true)]
	[TestCase("2001:db8::1", "2001:db8::1", true)]
	[TestCase("2001:db8::2", "2001:db8::1", false)]
	[TestCase("2001:db8::2", "2001:db8::/64", true)]
	[TestCase("::ffff:192.0.2.7", "192.0.2.7", true)]
	[TestCase("192.0.2.7", "junk", false)]
	public void Killed(string rsys, string k, bool want) => Assert.That(Policy.Killed(rsys, [k]), Is.EqualTo(want));

	[Test]
	public void SeveralAccumulate() => Assert.That(Policy.Killed("10.0.0.1", ["192.0.2.1", "10.0.0.1"]), Is.True);
}

[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // executable scripts need Unix modes
public class PolicyTests
{
	string tmp = "";
	string oldRoot = "";
	readonly List<string> logs = [];

	[SetUp]
	public void SetUp()
	{
		oldRoot = Root.Dir;
		tmp = Directory.CreateTempSubdirectory("upas-policy-").FullName;
		Root.Dir = tmp;
		Directory.CreateDirectory(Path.Join(tmp, "mail/lib"));
		logs.Clear();
	}

	[TearDown]
	public void TearDown()
	{
		Root.Dir = oldRoot;
		Directory.Delete(tmp, recursive: true);
	}

	void Write(string plan9path, string text) => File.WriteAllText(Root.Path9(plan9path), text);

	void Script(string plan9path, string body)
	{
		var p = Root.Path9(plan9path);
		File.WriteAllText(p, "#!/bin/sh\n" + body + "\n");
		File.SetUnixFileMode(p, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
	}

	Policy New(string rsys = "192.0.2.7", string conf = "") =>
		new(Conf.Parse(conf, logs.Add), rsys, "198.51.100.1", logs.Add);

	[Test]
	public void NoFilesNoVerdicts()
	{
		var p = New();
		Assert.That(p.Trusted, Is.False);
		Assert.That(p.IpVerdict, Is.EqualTo(Verdict.Accept));
		Assert.That(p.SenderVerdict("cyberpromo.com!joe"), Is.EqualTo(Verdict.Accept));
		Assert.That(p.CheckRecipient("anyone"), Is.EqualTo(RcptCheck.Ok));
		Assert.That(p.ValidateSender("example.org!alice", 1, "/net"), Is.Null);
		Assert.That(logs, Is.Empty);
	}

	[Test]
	public void LoadMissingConfIsDefaultsWithoutLog()
	{
		var c = Conf.Load(logs.Add);
		Assert.That(c.MaxRcpts, Is.EqualTo(1000));
		Assert.That(logs, Is.Empty);
		Write("/mail/lib/smtpd.conf", "maxrcpts 7\nnonsense\n");
		Assert.That(Conf.Load(logs.Add).MaxRcpts, Is.EqualTo(7));
		Assert.That(logs, Is.EqualTo(new[] { "smtpd.conf:2: unknown keyword: nonsense" }));
	}

	[TestCase("192.0.2.7", "ournets 192.0.2.0/24", "", true)]
	[TestCase("192.0.2.7", "ournets 10.0.0.0/8", "", false)]
	[TestCase("192.0.2.7", "", "ournets 192.0.2", true)]
	[TestCase("192.0.2.7", "", "ourdomains x.org\nournets 10.0.0.0/8, 192.0.0.0/16", true)]
	[TestCase("192.0.2.7", "", "norelay on", false)]
	[TestCase("2001:db8::7", "ournets 2001:db8::/32", "", true)]
	public void TrustedFromOurnets(string rsys, string conf, string ext, bool want)
	{
		Write("/mail/lib/smtpd.conf.ext", ext);
		Assert.That(New(rsys, conf).Trusted, Is.EqualTo(want));
	}

	[Test]
	public void SenderVerdict()
	{
		Write("/mail/lib/blocked", "dial 192.0.2.0/24\n*block cyberpromo.com\n*deny x.org!spammer\n");
		var dial = New("192.0.2.7");
		Assert.That(dial.IpVerdict, Is.EqualTo(Verdict.Dialup));
		Assert.That(dial.SenderVerdict("cse.psu.edu!rob"), Is.EqualTo(Verdict.Dialup), "the IP verdict beats the sender's");
		dial.Trusted = true; // as after AUTH
		Assert.That(dial.SenderVerdict("cyberpromo.com!joe"), Is.EqualTo(Verdict.Trusted));

		var other = New("198.51.100.9");
		Assert.That(other.SenderVerdict("CyberPromo.COM!Joe"), Is.EqualTo(Verdict.Blocked), "the sender is lower-cased");
		Assert.That(other.SenderVerdict("x.org!Spammer"), Is.EqualTo(Verdict.Denied));
		Assert.That(other.SenderVerdict("x.org!friend"), Is.EqualTo(Verdict.Accept));
	}

	const string OurDoms = "ourdomains example.com, *.example.org";

	[TestCase("postmaster", false)] // decisions #21: a dotless name is no longer ours by having no dot
	[TestCase("localhost", true)]
	[TestCase("2130706435", false)]
	[TestCase("127.1", false)]
	[TestCase("0x7f000001", false)]
	[TestCase("#5", false)]
	[TestCase("example.com", true)]
	[TestCase("EXAMPLE.COM", true)]
	[TestCase("mail.example.com", false)]
	[TestCase("example.org", true)]
	[TestCase("a.b.example.org", true)]
	[TestCase("badexample.org", false)]
	[TestCase("evil.net", false)]
	public void IsOurDomain(string dom, bool want) => Assert.That(New(conf: OurDoms).IsOurDomain(dom), Is.EqualTo(want));

	[TestCase("postmaster", false)]
	[TestCase("example.com!bob", false)]
	[TestCase("Example.COM!bob", false)]
	[TestCase("mx.example.org!bob", false)]
	[TestCase("local!example.com!bob", true)] // decisions #21: "local" is not one of our names
	[TestCase("example.com!victim@evil.net", true)]
	[TestCase("example.com!victim%evil.net", true)]
	[TestCase("example.com!\"victim@evil.net\"", true)]
	[TestCase("example.com!victim@example.org", false)]
	[TestCase("example.com!victim%a.example.org", false)]
	[TestCase("evil.net!bob", true)]
	[TestCase("example.com!evil.net!bob", true)]
	[TestCase("bob.with.dots", false)] // the last component is the user, never a hop
	public void IsForeign(string rcpt, bool want) => Assert.That(New(conf: OurDoms).IsForeign(rcpt), Is.EqualTo(want));

	[TestCase("[]!joe", "[192.0.2.7]!joe")]
	[TestCase("example.com![]!user", "[192.0.2.7]!user")]
	[TestCase("[]!x.org!joe", "[192.0.2.7]!x.org!joe")]
	[TestCase("joe", null)]
	[TestCase("example.com!joe", null)]
	[TestCase("a!b![]!joe", null)] // only the first two components are looked at
	[TestCase("[]joe", null)]
	public void Loopback(string rcpt, string? want) => Assert.That(New().Loopback(rcpt), Is.EqualTo(want));

	[Test]
	public void LoopbackNeedsAnAddress() => Assert.That(New(rsys: "").Loopback("[]!joe"), Is.Null);

	[Test]
	public void ShellCharsInRecipient()
	{
		Assert.That(New().CheckRecipient("bob\rrm -rf"), Is.EqualTo(RcptCheck.UserUnknown));
		Assert.That(New().CheckRecipient("bob\n"), Is.EqualTo(RcptCheck.UserUnknown));
		Assert.That(logs, Is.EqualTo(new[] { "shellchars in user name", "shellchars in user name" }));
	}

	[TestCase("root", RcptCheck.UserUnknown)]
	[TestCase("ROOT", RcptCheck.UserUnknown)]
	[TestCase("bootes", RcptCheck.UserUnknown)]
	[TestCase("example.com!oldlist", RcptCheck.UserUnknown)]
	[TestCase("oldlist", RcptCheck.Ok)]
	[TestCase("glenda", RcptCheck.Ok)]
	[TestCase("recipients", RcptCheck.Ok)] // words of the comment line are not names
	public void NamesBlocked(string rcpt, RcptCheck want)
	{
		Write("/mail/lib/names.blocked", "# recipients we never accept mail for\nroot\n\t  bootes# trailing comment\nexample.com!oldlist  extra words\n\n");
		Assert.That(New().CheckRecipient(rcpt), Is.EqualTo(want));
		Assert.That(logs, Is.EqualTo(want == RcptCheck.Ok ? Array.Empty<string>() : [$"names.blocked blocks {rcpt}"]));
	}

	[TestCase("192.0.2.50", "example.com!pager", RcptCheck.SendingSystemNotAllowed)]
	[TestCase("192.0.2.9", "example.com!pager", RcptCheck.Ok)] // gateway.example.net's address
	[TestCase("2001:db8::9", "example.com!pager", RcptCheck.Ok)]
	[TestCase("192.0.2.77", "example.com!pager", RcptCheck.Ok)] // granted by its second line
	[TestCase("192.0.2.50", "Example.com!pager", RcptCheck.Ok)] // case-sensitive: not listed
	[TestCase("192.0.2.50", "ops", RcptCheck.Ok)]
	[TestCase("192.0.2.51", "ops", RcptCheck.SendingSystemNotAllowed)]
	[TestCase("192.0.2.51", "glenda", RcptCheck.Ok)] // its line has three fields
	[TestCase("192.0.2.51", "nobody", RcptCheck.Ok)]
	public void Senders(string rsys, string rcpt, RcptCheck want)
	{
		Write("/mail/lib/senders", """
			# recipient		may only be sent to from
			example.com!pager	gateway.example.net
			example.com!pager	nxdomain.example
			example.com!pager	192.0.2.77
			ops			192.0.2.50
			glenda	192.0.2.1	oops
			""");
		var p = New(rsys);
		var asked = new List<string>();
		p.ResolveHost = h => {
			asked.Add(h);
			return h == "gateway.example.net"
				? [IPAddress.Parse("192.0.2.9"), IPAddress.Parse("2001:db8::9")]
				: throw new SocketException((int)SocketError.HostNotFound);
		};
		Assert.That(p.CheckRecipient(rcpt), Is.EqualTo(want));
		Assert.That(logs, Is.Empty);
	}

	[Test]
	public void SendersIsReadOncePerConnection()
	{
		Write("/mail/lib/senders", "ops 192.0.2.50\n");
		var p = New("192.0.2.51");
		Assert.That(p.CheckRecipient("ops"), Is.EqualTo(RcptCheck.SendingSystemNotAllowed));
		Write("/mail/lib/senders", "");
		Assert.That(p.CheckRecipient("ops"), Is.EqualTo(RcptCheck.SendingSystemNotAllowed));
		Assert.That(New("192.0.2.51").CheckRecipient("ops"), Is.EqualTo(RcptCheck.Ok));
	}

	[TestCase("glenda", RcptCheck.Ok)]
	[TestCase("nobody", RcptCheck.UserUnknown)]
	[TestCase("x.org!nobody's", RcptCheck.UserUnknown)] // one argument, no shell
	[TestCase("a b; exit 0", RcptCheck.Ok)]
	public void ValidateAddress(string rcpt, RcptCheck want)
	{
		Script("/mail/lib/validateaddress", """
			[ $# -eq 1 ] || exit 2
			case "$1" in *nobody*) echo "unknown user" ; exit 1 ;; esac
			exit 0
			""");
		Assert.That(New().CheckRecipient(rcpt), Is.EqualTo(want));
	}

	[Test]
	public void ValidateAddressThatCannotRunDefers()
	{
		// decisions #23: a validator that is there but cannot answer refuses (for now), it never accepts unchecked
		Write("/mail/lib/validateaddress", "#!/bin/sh\nexit 1\n");
		File.SetUnixFileMode(Root.Path9("/mail/lib/validateaddress"), UnixFileMode.UserRead);
		Assert.That(New().CheckRecipient("glenda"), Is.EqualTo(RcptCheck.TryLater));
	}

	[Test]
	public void ValidateAddressComesBeforeNamesBlocked()
	{
		Script("/mail/lib/validateaddress", "exit 1");
		Write("/mail/lib/names.blocked", "root\n");
		Assert.That(New().CheckRecipient("root"), Is.EqualTo(RcptCheck.UserUnknown));
		Assert.That(logs, Is.Empty);
	}

	[TestCase("/dev/null", 1, null)]
	[TestCase("/dev/null", 2, "rejected: /dev/null sending to multiple recipients")]
	[TestCase("alice", 1, "rejected: domainless sender alice")]
	[TestCase("example.org!alice", 1, null)]
	[TestCase("example.org!nosuch", 1, "rejected: no such user")]
	[TestCase("example.org!later", 1, "deferred: try later")]
	[TestCase("example.org!silent", 1, "deferred: validatesender exit status 3")]
	[TestCase("example.org!prefixed", 1, "rejected: smtp ping: 550 no")]
	public void ValidateSender(string sender, int nrcpt, string? want)
	{
		Script("/mail/lib/validatesender", """
			[ "$1 $2 $3" = "-n /net example.org" ] || { echo "bad args $*" >&2; exit 1; }
			echo this goes nowhere
			case "$4" in
			alice)	echo "fine, but chatty" >&2; exit 0 ;;
			nosuch)	echo "checking" >&2; echo "rejected: no such user" >&2; exit 1 ;;
			later)	echo "deferred: try later" >&2; exit 1 ;;
			silent)	exit 3 ;;
			prefixed)	echo "validatesender 4711: rejected: smtp ping: 550 no" >&2; exit 1 ;;
			esac
			exit 1
			""");
		Assert.That(New().ValidateSender(sender, nrcpt, "/net"), Is.EqualTo(want));
	}

	[Test]
	public void NullSenderNeedsNoScript() =>
		Assert.That(New().ValidateSender("/dev/null", 3, "/net"), Is.EqualTo("rejected: /dev/null sending to multiple recipients"));

	[TestCase("validatesender 4711: rejected: x", "rejected: x")]
	[TestCase("rejected: no such user", "rejected: no such user")]
	[TestCase("deferred: smtp ping: 421 busy", "deferred: smtp ping: 421 busy")]
	[TestCase("validatesender x1: deferred", "validatesender x1: deferred")]
	[TestCase("/mail/lib/validatesender: 3: oops", "/mail/lib/validatesender: 3: oops")]
	public void ProcPrefix(string line, string want) => Assert.That(Policy.StripProcPrefix(line), Is.EqualTo(want));

	[TestCase(new[] { "bob" }, true)]
	[TestCase(new[] { "example.com!bob" }, true)]
	[TestCase(new[] { "bob", "x.org!carol" }, true)]
	[TestCase(new[] { "bob", "dave" }, false)]
	[TestCase(new[] { "dave" }, false)]
	[TestCase(new[] { "x!../mail/box/bob" }, false)]
	[TestCase(new[] { "x!bob/../bob" }, false)]
	[TestCase(new[] { "x!." }, false)]
	[TestCase(new[] { ".." }, false)]
	[TestCase(new string[0], false)]
	public void NoSpamFiltering(string[] rcpts, bool want)
	{
		foreach (var u in new[] { "bob", "carol" }) {
			Directory.CreateDirectory(Root.Path9($"/mail/box/{u}"));
			Write($"/mail/box/{u}/nospamfiltering", "");
		}
		Directory.CreateDirectory(Root.Path9("/mail/box/dave"));
		File.WriteAllText(Root.Path9("/mail/box/nospamfiltering"), ""); // what "." would find
		File.WriteAllText(Root.Path9("/mail/nospamfiltering"), ""); // and ".."
		Assert.That(New().NoSpamFiltering(rcpts), Is.EqualTo(want));
	}
}
