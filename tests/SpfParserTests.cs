using System.Net;
using NUnit.Framework;
using Upas.Spf;

namespace Upas.Tests;

/// <summary>The record parser (lib/spf/spfrecord.cs) and the small pure helpers of SpfCheck, table-driven.</summary>
[TestFixture]
public sealed class SpfParserTests
{
	// term → "qualifier mechanism domain-spec network cidr4 cidr6" ("-" for none)
	[TestCase("all", "+ All - - 32 128")]
	[TestCase("-all", "- All - - 32 128")]
	[TestCase("~ALL", "~ All - - 32 128")]
	[TestCase("?all", "? All - - 32 128")]
	[TestCase("include:_spf.example.com", "+ Include _spf.example.com - 32 128")]
	[TestCase("-include:%{d2}", "- Include %{d2} - 32 128")]
	[TestCase("a", "+ A - - 32 128")]
	[TestCase("a/24", "+ A - - 24 128")]
	[TestCase("a//64", "+ A - - 32 64")]
	[TestCase("a/24//64", "+ A - - 24 64")]
	[TestCase("a/0//0", "+ A - - 0 0")]
	[TestCase("A:Mail.Example.com/32//128", "+ A Mail.Example.com - 32 128")]
	[TestCase("a:foo:bar/baz.example.com", "+ A foo:bar/baz.example.com - 32 128")]
	[TestCase("a:foo.example.xn--zckzah", "+ A foo.example.xn--zckzah - 32 128")]
	[TestCase("a:example.com.", "+ A example.com. - 32 128")]
	[TestCase("mx", "+ Mx - - 32 128")]
	[TestCase("mx:%%%_/.Clara.de/27", "+ Mx %%%_/.Clara.de - 27 128")]
	[TestCase("mx:%{d}//97", "+ Mx %{d} - 32 97")]
	[TestCase("ptr", "+ Ptr - - 32 128")]
	[TestCase("ptr:example.com", "+ Ptr example.com - 32 128")]
	[TestCase("ip4:192.0.2.0/24", "+ Ip4 - 192.0.2.0 24 128")]
	[TestCase("ip4:1.1.1.1/0", "+ Ip4 - 1.1.1.1 0 128")]
	[TestCase("iP4:10.0.0.1", "+ Ip4 - 10.0.0.1 32 128")]
	[TestCase("-ip6:2001:db8::/32", "- Ip6 - 2001:db8:: 32 32")]
	[TestCase("ip6:::1.1.1.1/0", "+ Ip6 - ::1.1.1.1 32 0")]
	[TestCase("ip6:::FFFF:1.2.3.4", "+ Ip6 - ::ffff:1.2.3.4 32 128")]
	[TestCase("ip6:Cafe:Babe:8000::/33", "+ Ip6 - cafe:babe:8000:: 32 33")]
	[TestCase("exists:%{i}.%{s1}.100/86400.rate.%{d}", "+ Exists %{i}.%{s1}.100/86400.rate.%{d} - 32 128")]
	[TestCase("exists:%{ir}.sbl.example.com", "+ Exists %{ir}.sbl.example.com - 32 128")]
	public void Directive(string term, string expected)
	{
		var d = SpfParser.Directive(term);
		Assert.That(d, Is.Not.Null, term);
		var got = $"{d!.Qualifier} {d.Mechanism} {d.DomainSpec ?? "-"} {(d.Network is { } n ? n.ToString() : "-")} {d.Cidr4} {d.Cidr6}";
		Assert.That(got, Is.EqualTo(expected));
	}

	[TestCase("")]
	[TestCase("+")]
	[TestCase("all.")]
	[TestCase("all:foobar")]
	[TestCase("all/8")]
	[TestCase("=all")]
	[TestCase("*all")]
	[TestCase("include")]
	[TestCase("include:")]
	[TestCase("include:ip5.example.com/24")]
	[TestCase("include:foo")]
	[TestCase("exists")]
	[TestCase("exists:")]
	[TestCase("exists:mail.example.com/24")]
	[TestCase("ptr:")]
	[TestCase("ptr/0")]
	[TestCase("a:")]
	[TestCase("a:/24")]
	[TestCase("a/33")]
	[TestCase("a//129")]
	[TestCase("a/24/64")]
	[TestCase("a/032")]
	[TestCase("a:foo-bar")]
	[TestCase("a:museum")]
	[TestCase("a:museum.")]
	[TestCase("a:abc.123")]
	[TestCase("a:111.222.33.44")]
	[TestCase("a:example.-com")]
	[TestCase("a:example.com-")]
	[TestCase("a:example.com:8080")]
	[TestCase("a:foo.example.com\0")]
	[TestCase("a:%{c}.example.com")]
	[TestCase("a:%{d")]
	[TestCase("mx/33")]
	[TestCase("mx:example.-com")]
	[TestCase("ip4")]
	[TestCase("ip4:")]
	[TestCase("ip4:1.2.3")]
	[TestCase("ip4:1.2.3.4.5")]
	[TestCase("ip4:1.2.3.4/33")]
	[TestCase("ip4:1.2.3.4/032")]
	[TestCase("ip4:1.2.3.4//32")]
	[TestCase("ip4:1.2.3.4:8080")]
	[TestCase("ip4:1.2.03.4")]
	[TestCase("ip4:1.2.3.444")]
	[TestCase("ip4:::1")]
	[TestCase("ip6")]
	[TestCase("ip6:1.2.3.4")]
	[TestCase("ip6::CAFE::BABE")]
	[TestCase("ip6:::1.1.1.1/129")]
	[TestCase("ip6:::1.1.1.1//33")]
	[TestCase("ip6:2001:db8::%eth0")]
	[TestCase("ip6:[::1]")]
	[TestCase("ip6:2001:db8:ZZZZ::")]
	[TestCase("redirect:example.com")]
	[TestCase("moo")]
	[TestCase("\u0096all")]
	public void NotADirective(string term) => Assert.That(SpfParser.Directive(term), Is.Null, term);

	// whole records: null = permerror
	[TestCase("v=spf1", 0, null, null)]
	[TestCase("v=spf1 ", 0, null, null)]
	[TestCase("V=SPF1 -all", 1, null, null)]
	[TestCase("v=spf1  a   -all ", 2, null, null)]
	[TestCase("v=spf1 ip4:1.2.3.4 redirect=_spf.example.com", 1, "_spf.example.com", null)]
	[TestCase("v=spf1 exp=explain.%{d} -all", 1, null, "explain.%{d}")]
	[TestCase("v=spf1 REDIRECT=x.example.com Exp=y.example.com", 0, "x.example.com", "y.example.com")]
	[TestCase("v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", 2, null, null)]
	[TestCase("v=spf1 default=pass", 0, null, null)]
	[TestCase("v=spf1 foo= -all", 1, null, null)]
	[TestCase("v=spf1 x=%{d}%{ir} -all", 1, null, null)]
	[TestCase("v=spf1 ip4:1.2.3.4 -all moo", -1, null, null)]
	[TestCase("v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all", -1, null, null)]
	[TestCase("v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all", -1, null, null)]
	[TestCase("v=spf1 1up=foo", -1, null, null)]
	[TestCase("v=spf1 =all", -1, null, null)]
	[TestCase("v=spf1 -all foo=%abc", -1, null, null)]
	[TestCase("v=spf1 -all x=%{c}", -1, null, null)]
	[TestCase("v=spf1 redirect=a.example.com redirect=a.example.com", -1, null, null)]
	[TestCase("v=spf1 exp=a.example.com -all exp=b.example.com", -1, null, null)]
	[TestCase("v=spf1 exp= -all", -1, null, null)]
	[TestCase("v=spf1 redirect=", -1, null, null)]
	[TestCase("v=spf1 exp=-all", -1, null, null)]
	[TestCase("v=spf1 redirect=-all ?all", -1, null, null)]
	[TestCase("v=spf1 exp=%{r}.example.com -all", -1, null, null)]
	[TestCase("v=spf1 a:ctrl.example.com\rptr -all", -1, null, null)]
	[TestCase("v=spf1 ip4:192.0.2.5\n include:x.example.com ~all", -1, null, null)]
	[TestCase("v=spf1\ta -all", -1, null, null)]
	public void Record(string txt, int directives, string? redirect, string? exp)
	{
		var r = SpfParser.Parse(txt, out var error);
		if (directives < 0) {
			Assert.That(r, Is.Null, txt);
			Assert.That(error, Is.Not.Null.And.Not.Empty);
			return;
		}
		Assert.That(r, Is.Not.Null, error);
		Assert.That(r!.Directives, Has.Count.EqualTo(directives));
		Assert.That(r.Redirect, Is.EqualTo(redirect));
		Assert.That(r.Explanation, Is.EqualTo(exp));
	}

	[TestCase("v=spf1", true)]
	[TestCase("v=spf1 -all", true)]
	[TestCase("V=Spf1 -all", true)]
	[TestCase("v=spf10", false)]
	[TestCase("v=spf1-all", false)]
	[TestCase("v=spf1\t-all", false)]
	[TestCase(" v=spf1 -all", false)]
	[TestCase("v=spf2.0/pra -all", false)]
	[TestCase("spf1", false)]
	public void Selection(string txt, bool spf) => Assert.That(SpfParser.IsSpf(txt), Is.EqualTo(spf));

	[TestCase("com", true)]
	[TestCase("xn--zckzah", true)]
	[TestCase("a1", true)]
	[TestCase("1a", true)]
	[TestCase("123-456", true)]
	[TestCase("a-b-c", true)]
	[TestCase("123", false)]
	[TestCase("-com", false)]
	[TestCase("com-", false)]
	[TestCase("c_m", false)]
	[TestCase("", false)]
	public void TopLabel(string s, bool ok) => Assert.That(SpfParser.TopLabel(s), Is.EqualTo(ok));

	// MAIL FROM → (sender, domain) for check_host()
	[TestCase("user@example.com", "mail.example.net", "user@example.com", "example.com")]
	[TestCase("", "mail.example.net", "postmaster@mail.example.net", "mail.example.net")]
	[TestCase("@example.net", "mail.example.net", "postmaster@example.net", "example.net")]
	[TestCase("a@b@example.org", "h.example", "a@b@example.org", "example.org")]
	[TestCase("nodomain", "h.example", "postmaster@h.example", "h.example")]
	[TestCase("user@", "h.example", "postmaster@h.example", "h.example")]
	public void Sender(string mailFrom, string helo, string sender, string domain) =>
		Assert.That(SpfCheck.Sender(mailFrom, helo), Is.EqualTo((sender, domain)));

	[TestCase("example.com", true)]
	[TestCase("example.com.", true)]
	[TestCase("_spf.example.com", true)]
	[TestCase("a-1.example", true)]
	[TestCase("com", false)]
	[TestCase("A2345678", false)]
	[TestCase("[1.2.3.5]", false)]
	[TestCase("1.2.3.4", false)]
	[TestCase("A...example.com", false)]
	[TestCase("JUMPIN' JUPITER", false)]
	[TestCase("caf\u00e9.example", false)]
	public async Task InitialDomain(string domain, bool checkedAtAll)
	{
		// a domain that is not a name gives "none" without a DNS question (no server is even needed)
		var o = await SpfCheck.CheckHostAsync(new NoDns(), IPAddress.Parse("192.0.2.1"), domain, "x@" + domain, "h.example", "r.example", default);
		Assert.That(o.Result == SpfResult.None && o.Detail.Contains("not a domain name"), Is.EqualTo(!checkedAtAll), o.Detail);
	}

	/// <summary>A resolver that knows nothing: every name is NXDOMAIN.</summary>
	sealed class NoDns : IDnsQuery
	{
		static Task<DnsAnswer<T>> Nx<T>() => Task.FromResult(new DnsAnswer<T>(DnsStatus.NxDomain, []));
		public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct) => Nx<string>();
		public Task<DnsAnswer<IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct) => Nx<IPAddress>();
		public Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct) => Nx<string>();
		public Task<DnsAnswer<string>> PtrAsync(IPAddress ip, CancellationToken ct) => Nx<string>();
	}
}
