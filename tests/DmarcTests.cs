using System.Net;
using NUnit.Framework;
using Upas.Dmarc;

namespace Upas.Tests;

/// <summary>The Public Suffix List, DMARC records and evaluation (RFC 7489), table-driven.</summary>
public class DmarcTests
{
	static readonly PublicSuffixList Psl = PublicSuffixList.Parse(File.ReadAllText(Path.Join(Repo.Dir, "mail/lib/public_suffix_list.dat")));

	[Test]
	public void ShippedListIsComplete() => Assert.That(Psl.Count, Is.GreaterThan(5000));

	// the list's own test cases (publicsuffix.org's checkPublicSuffix), with what DMARC calls the org domain
	[TestCase("com", "com")]
	[TestCase("example.com", "example.com")]
	[TestCase("b.example.com", "example.com")]
	[TestCase("a.b.example.com", "example.com")]
	[TestCase("A.B.Example.COM", "example.com")]
	[TestCase("a.b.example.co.uk", "example.co.uk")]
	[TestCase("example.co.uk", "example.co.uk")]
	[TestCase("co.uk", "co.uk")]
	[TestCase("www.test.ck", "www.test.ck")]          // *.ck: test.ck is a public suffix
	[TestCase("a.www.ck", "www.ck")]                   // !www.ck: an exception
	[TestCase("www.ck", "www.ck")]
	[TestCase("b.c.kobe.jp", "b.c.kobe.jp")]           // *.kobe.jp
	[TestCase("c.city.kobe.jp", "city.kobe.jp")]       // !city.kobe.jp
	[TestCase("a.b.unlisted-tld", "b.unlisted-tld")]  // the implicit rule *
	[TestCase("foo.github.io", "foo.github.io")]       // a private-section rule
	[TestCase("x.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn")] // 食狮.公司.cn, listed in Unicode
	public void OrganizationalDomain(string domain, string org) => Assert.That(Psl.OrganizationalDomain(domain), Is.EqualTo(org));

	[Test]
	public void ListRulesAndComments()
	{
		var l = PublicSuffixList.Parse("// comment\nuk\nco.uk  trailing words\n*.sch.uk\n!school.sch.uk\n\n");
		Assert.Multiple(() => {
			Assert.That(l.OrganizationalDomain("a.b.co.uk"), Is.EqualTo("b.co.uk"));
			Assert.That(l.OrganizationalDomain("a.b.c.sch.uk"), Is.EqualTo("b.c.sch.uk"));
			Assert.That(l.OrganizationalDomain("a.school.sch.uk"), Is.EqualTo("school.sch.uk"));
		});
	}

	[TestCase("v=DMARC1; p=reject", true)]
	[TestCase("v = DMARC1 ;p=none", true)]
	[TestCase("p=reject; v=DMARC1", false)]   // v= must come first
	[TestCase("v=DMARC2; p=reject", false)]
	[TestCase("v=dmarc1; p=reject", false)]   // the value is case-sensitive
	[TestCase("v=spf1 -all", false)]
	public void IsDmarc(string txt, bool yes) => Assert.That(DmarcRecord.IsDmarc(txt), Is.EqualTo(yes));

	[TestCase("v=DMARC1; p=reject", "Reject,,100,False,False")]
	[TestCase("v=DMARC1; p=quarantine; sp=none; pct=20; adkim=s; aspf=s", "Quarantine,None,20,True,True")]
	[TestCase("v=DMARC1; p=Reject; pct=101", "Reject,,100,False,False")]     // a bad pct keeps the default
	[TestCase("v=DMARC1; p=none; p=reject", "None,,100,False,False")]       // the first of a tag counts
	[TestCase("v=DMARC1; rua=mailto:d@example.org", "None,,100,False,False")] // no p= but rua=: p=none
	[TestCase("v=DMARC1; p=bogus; rua=mailto:d@example.org", "None,,100,False,False")]
	[TestCase("v=DMARC1; pct=50", "no p=")]
	[TestCase("v=DMARC1; p=bogus", "invalid p=")]
	[TestCase("v=DMARC1; p=reject; sp=bogus", "invalid sp=")]
	public void Record(string txt, string want)
	{
		var r = DmarcRecord.Parse(txt, out var why);
		Assert.That(r is null ? why : $"{r.P},{r.Sp},{r.Pct},{r.StrictDkim},{r.StrictSpf}", Is.EqualTo(want));
	}

	static readonly Dictionary<string, string[]> Zone = new() {
		["_dmarc.example.org"] = ["v=DMARC1; p=reject"],
		["_dmarc.strict.example"] = ["v=DMARC1; p=reject; adkim=s; aspf=s"],
		["_dmarc.sub.example"] = ["v=DMARC1; p=none; sp=quarantine"],
		["_dmarc.pct0.example"] = ["v=DMARC1; p=reject; pct=0"],
		["_dmarc.pct100.example"] = ["v=DMARC1; p=reject; pct=100"],
		["_dmarc.example.co.uk"] = ["v=DMARC1; p=quarantine"],
		["_dmarc.two.example"] = ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
		["_dmarc.other.example"] = ["some other text", "v=DMARC1; p=quarantine"],
		["_dmarc.bad.example"] = ["v=DMARC1; p=always"],
		["_dmarc.own.sub.example"] = ["v=DMARC1; p=reject"],
	};

	static AuthId Pass(string d) => new(d, true, false);
	static AuthId Fail(string d) => new(d, false, false);
	static AuthId Temp(string d) => new(d, false, true);

	static DmarcOutcome Check(string from, AuthId? spf, AuthId[] dkim, int roll = 0, params string[] broken) =>
		DmarcCheck.CheckAsync(TableDns.From(Zone, broken), Psl, from, spf, dkim, () => roll, CancellationToken.None).Result;

	static string Show(DmarcOutcome o) => $"{DmarcCheck.Name(o.Result)} {(o.Policy is { } p ? DmarcRecord.Name(p) : "-")} {DmarcRecord.Name(o.Disposition)}";

	[TestCase("example.org", "example.org", null, "pass reject none", TestName = "SPF aligned exactly")]
	[TestCase("example.org", "bounces.example.org", null, "pass reject none", TestName = "SPF aligned relaxed (subdomain)")]
	[TestCase("example.org", null, "example.org", "pass reject none", TestName = "DKIM aligned only")]
	[TestCase("news.example.org", null, "example.org", "pass reject none", TestName = "DKIM relaxed: parent d= for a subdomain From")]
	[TestCase("example.org", "example.net", "example.net", "fail reject reject", TestName = "both pass, neither aligned")]
	[TestCase("strict.example", "mail.strict.example", "mail.strict.example", "fail reject reject", TestName = "strict: subdomains do not align")]
	[TestCase("strict.example", "strict.example", null, "pass reject none", TestName = "strict: the same domain aligns")]
	[TestCase("a.sub.example", null, null, "fail quarantine quarantine", TestName = "subdomain policy sp= from the org record")]
	[TestCase("sub.example", null, null, "fail none none", TestName = "p= for the org domain itself")]
	[TestCase("own.sub.example", null, null, "fail reject reject", TestName = "a subdomain's own record wins")]
	[TestCase("pct100.example", null, null, "fail reject reject", TestName = "pct=100 applies")]
	[TestCase("pct0.example", null, null, "fail reject quarantine", TestName = "pct=0: the next policy down")]
	[TestCase("a.b.example.co.uk", null, null, "fail quarantine quarantine", TestName = "org domain by the PSL: example.co.uk")]
	[TestCase("nothing.example", null, null, "none - none", TestName = "no record")]
	[TestCase("two.example", null, null, "none - none", TestName = "two records: no policy")]
	[TestCase("other.example", null, null, "fail quarantine quarantine", TestName = "other TXT strings ignored")]
	[TestCase("bad.example", null, null, "permerror - none", TestName = "an invalid p= is a permerror")]
	public void Evaluate(string from, string? spfPass, string? dkimPass, string want)
	{
		var o = Check(from, spfPass is null ? Fail("x.example") : Pass(spfPass), dkimPass is null ? [Fail(from)] : [Pass(dkimPass)]);
		Assert.That(Show(o), Is.EqualTo(want), o.Detail);
	}

	[Test]
	public void PctRollDecides()
	{
		Dictionary<string, string[]> z = new() { ["_dmarc.half.example"] = ["v=DMARC1; p=reject; pct=50"] };
		var inSample = DmarcCheck.CheckAsync(TableDns.From(z), Psl, "half.example", null, [], () => 49, CancellationToken.None).Result;
		var outside = DmarcCheck.CheckAsync(TableDns.From(z), Psl, "half.example", null, [], () => 50, CancellationToken.None).Result;
		Assert.That((inSample.Disposition, outside.Disposition), Is.EqualTo((DmarcPolicy.Reject, DmarcPolicy.Quarantine)));
	}

	[Test]
	public void DnsFailureIsTempError()
	{
		var o = Check("example.org", null, [], 0, "_dmarc.example.org");
		Assert.That(Show(o), Is.EqualTo("temperror - none"));
	}

	[Test]
	public void TempErrorOfAnAlignedIdentifier()
	{
		// DKIM of example.org could not be checked: not a fail yet
		Assert.That(Show(Check("example.org", Fail("example.org"), [Temp("example.org")])), Is.EqualTo("temperror reject none"));
		// an unaligned one does not matter
		Assert.That(Show(Check("example.org", Fail("example.org"), [Temp("example.net")])), Is.EqualTo("fail reject reject"));
	}

	[Test]
	public void LooksUpFromThenOrgDomain()
	{
		var dns = TableDns.From(Zone);
		DmarcCheck.CheckAsync(dns, Psl, "a.b.example.co.uk", null, [], () => 0, CancellationToken.None).Wait();
		Assert.That(dns.Asked, Is.EqualTo(new[] { "_dmarc.a.b.example.co.uk", "_dmarc.example.co.uk" }));
	}
}
