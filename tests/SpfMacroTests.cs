using System.Net;
using NUnit.Framework;
using Upas.Spf;

namespace Upas.Tests;

/// <summary>The macro expander (lib/spf/spfmacro.cs), table-driven: RFC 7208 §7.4's examples and the edges.</summary>
[TestFixture]
public sealed class SpfMacroTests
{
	static SpfMacroValues V(string ip = "192.0.2.3", string? p = "mx.example.org") =>
		new("strong-bad@email.example.com", "strong-bad", "email.example.com", "email.example.com", IPAddress.Parse(ip),
			"mx.example.org", "example.net", p, 1700000000);

	// RFC 7208 §7.4, sender strong-bad@email.example.com, IPv4 client 192.0.2.3
	[TestCase("%{s}", "strong-bad@email.example.com")]
	[TestCase("%{o}", "email.example.com")]
	[TestCase("%{d}", "email.example.com")]
	[TestCase("%{d4}", "email.example.com")]
	[TestCase("%{d3}", "email.example.com")]
	[TestCase("%{d2}", "example.com")]
	[TestCase("%{d1}", "com")]
	[TestCase("%{dr}", "com.example.email")]
	[TestCase("%{d2r}", "example.email")]
	[TestCase("%{l}", "strong-bad")]
	[TestCase("%{l-}", "strong.bad")]
	[TestCase("%{lr}", "strong-bad")]
	[TestCase("%{lr-}", "bad.strong")]
	[TestCase("%{l1r-}", "strong")]
	[TestCase("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com")]
	[TestCase("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com")]
	[TestCase("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com")]
	[TestCase("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com")]
	[TestCase("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net")]
	// the rest of the letters, the escapes, the transformers
	[TestCase("%{i}", "192.0.2.3")]
	[TestCase("%{h}", "mx.example.org")]
	[TestCase("%{p}", "mx.example.org")]
	[TestCase("%{p2}", "example.org")]
	[TestCase("%{v}", "in-addr")]
	[TestCase("%%%_%-", "% %20")]
	[TestCase("a%%{d}", "a%{d}")]
	[TestCase("%{d1000}", "email.example.com")]
	[TestCase("%{d99999999999}", "email.example.com")]
	[TestCase("%{s2.}", "example.com")]
	[TestCase("%{l+-,/_=}", "strong.bad")]
	[TestCase("%{or.}", "com.example.email")]
	[TestCase("%{D}", "email.example.com")]
	[TestCase("%{S}", "strong-bad%40email.example.com")]
	[TestCase("%{L-}", "strong.bad")]
	[TestCase("x.%{Ir}", "x.3.2.0.192")]
	[TestCase("", "")]
	public void DomainSpecExpansion(string spec, string expected)
	{
		Assert.That(SpfMacro.Valid(spec, explanation: false), Is.True);
		Assert.That(SpfMacro.Expand(spec, V(), explanation: false), Is.EqualTo(expected));
	}

	// IPv6: %{i} is 32 nibbles (upper case, as the RFC 7208 test suite and pyspf write them; DNS ignores the case)
	[TestCase("%{ir}.%{v}._spf.%{d2}", "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com")]
	[TestCase("%{i}", "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1")]
	[TestCase("%{i4}", "C.B.0.1")]
	[TestCase("%{v}", "ip6")]
	public void Ipv6Expansion(string spec, string expected) =>
		Assert.That(SpfMacro.Expand(spec, V("2001:db8::cb01"), explanation: false), Is.EqualTo(expected));

	// explanation text: c, r, t too; spaces kept; final dot kept
	[TestCase("%{c} from %{r} at %{t}.", "192.0.2.3 from example.net at 1700000000.")]
	[TestCase("See http://%{d}/why?s=%{S}", "See http://email.example.com/why?s=strong-bad%40email.example.com")]
	[TestCase("connect from %{p}", "connect from mx.example.org")]
	public void ExplanationExpansion(string text, string expected) =>
		Assert.That(SpfMacro.Expand(text, V(), explanation: true), Is.EqualTo(expected));

	[Test]
	public void CIsTheReadableAddressAndPUnknownWhenNotValidated()
	{
		Assert.That(SpfMacro.Expand("%{c}", V("2001:db8::cb01"), true), Is.EqualTo("2001:db8::cb01"));
		Assert.That(SpfMacro.Expand("%{p}", V(p: null), false), Is.EqualTo("unknown"));
		Assert.That(SpfMacro.Expand("%{r}", V() with { Receiver = "" }, true), Is.EqualTo("unknown"));
	}

	[TestCase("%")]
	[TestCase("a%")]
	[TestCase("%x")]
	[TestCase("%(ir)")]
	[TestCase("%{")]
	[TestCase("%{d")]
	[TestCase("%{}")]
	[TestCase("%{x}")]
	[TestCase("%{a}")]
	[TestCase("%{d0}")]
	[TestCase("%{d2rr}")]
	[TestCase("%{dr2}")]
	[TestCase("%{d!}")]
	[TestCase("%{s@}")]
	[TestCase("%{c}")]
	[TestCase("%{r}")]
	[TestCase("%{t}")]
	[TestCase("a b")]
	[TestCase("a\tb")]
	[TestCase("caf\u00e9")]
	public void InvalidInADomainSpec(string spec)
	{
		Assert.That(SpfMacro.Valid(spec, explanation: false), Is.False);
		Assert.That(SpfMacro.Expand(spec, V(), explanation: false), Is.Null);
	}

	[TestCase("The %{x}-files.")]
	[TestCase("50%")]
	[TestCase("tab\there")]
	public void InvalidInAnExplanation(string text) => Assert.That(SpfMacro.Expand(text, V(), explanation: true), Is.Null);

	[TestCase("%{d}", true)]
	[TestCase("x.%{d}", true)]
	[TestCase("x%%", true)]
	[TestCase("x%_", true)]
	[TestCase("x%-", true)]
	[TestCase("x%%%%", true)]
	[TestCase("%%{d}", false)]	// "%%" then the literal "{d}"
	[TestCase("%{d}.com", false)]
	[TestCase("x.com", false)]
	[TestCase("%{d}x", false)]
	public void EndsWithMacro(string s, bool expected) => Assert.That(SpfMacro.EndsWithMacro(s), Is.EqualTo(expected));

	[TestCase("~jack&jill=up-a_b3.c", "~jack%26jill%3Dup-a_b3.c")]
	[TestCase("a b/c@d", "a%20b%2Fc%40d")]
	public void UrlEscape(string s, string expected) => Assert.That(SpfMacro.UrlEscape(s), Is.EqualTo(expected));
}
