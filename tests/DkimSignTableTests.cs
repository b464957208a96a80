using NUnit.Framework;
using Upas.Smtp;

namespace Upas.Tests;

/// <summary>The signing table /mail/lib/dkim (dkim(6)), line by line: what is taken, what is refused and why.</summary>
[Parallelizable(ParallelScope.All)]
public class DkimSignTableTests
{
	static string Show(DkimTable t) =>
		string.Join(" | ", t.Entries.Select(e => $"{e.Line}: {e.Domain} {e.Selector} {e.KeyFile}").Concat(t.Errors.Select(x => $"{x.Line}! {x.Why}")));

	[TestCase("", "")]
	[TestCase("# only a comment\n\n   \n\t\n", "")]
	[TestCase("example.org sel /mail/lib/k.pem\n", "1: example.org sel /mail/lib/k.pem")]
	[TestCase("example.org\tsel\t\tk.pem", "1: example.org sel k.pem")]
	[TestCase("  Example.ORG.  Sel2026  k.pem  # comment\r\n", "1: example.org sel2026 k.pem")]
	[TestCase("example.org sel k.pem#no blank needed\n", "1: example.org sel k.pem")]
	[TestCase("a.example.org s1.2026 k\nexample.org s1 k2\n", "1: a.example.org s1.2026 k | 2: example.org s1 k2")]
	[TestCase("xn--bcher-kva.example s k\n", "1: xn--bcher-kva.example s k")]
	[TestCase("localhost s k\n", "1: localhost s k")]
	[TestCase("example.org\n", "1! 1 field, not 3 (domain selector keyfile)")]
	[TestCase("example.org sel\n", "1! 2 fields, not 3 (domain selector keyfile)")]
	[TestCase("example.org sel k.pem extra\n", "1! 4 fields, not 3 (domain selector keyfile)")]
	[TestCase("exa_mple.org s k\n", "1! bad domain exa_mple.org")]
	[TestCase("-example.org s k\n", "1! bad domain -example.org")]
	[TestCase("example-.org s k\n", "1! bad domain example-.org")]
	[TestCase("example..org s k\n", "1! bad domain example..org")]
	[TestCase(".example.org s k\n", "1! bad domain .example.org")]
	[TestCase("bücher.example s k\n", "1! bad domain bücher.example")]
	[TestCase("[192.0.2.1] s k\n", "1! bad domain [192.0.2.1]")]
	[TestCase("example.org s_1 k\n", "1! bad selector s_1")]
	[TestCase("example.org s. k\n", "1! bad selector s.")]
	[TestCase("example.org s k\u0001x\n", "1! bad key file name")]
	[TestCase("example.org s k1\nexample.org S k2\n", "1: example.org s k1 | 2! selector s of example.org again (first on line 1)")]
	[TestCase("example.org s k1\nEXAMPLE.org. r k2\n", "1: example.org s k1 | 2: example.org r k2")]
	[TestCase("bad\nexample.org s k\nworse one\n", "2: example.org s k | 1! 1 field, not 3 (domain selector keyfile) | 3! 2 fields, not 3 (domain selector keyfile)")]
	public void Parse(string text, string want) => Assert.That(Show(DkimTable.Parse(text)), Is.EqualTo(want));

	[Test]
	public void AVeryLongNameIsRefused()
	{
		var label = new string('a', 63);
		var huge = $"{label}.{label}.{label}.{label}.example";	// 263
		Assert.That(Show(DkimTable.Parse($"{huge} s k\n")), Is.EqualTo($"1! bad domain {huge}"), "over 253");
		Assert.That(Show(DkimTable.Parse($"{new string('a', 64)}.org s k\n")), Does.StartWith("1! bad domain"), "a label over 63");
		var d = $"{label}.{label}.{label}.{new string('b', 50)}.org";	// 246: fits, but not with the selector
		Assert.That(Show(DkimTable.Parse($"{d} sel k\n")), Is.EqualTo($"1! sel._domainkey.{d} is longer than 253 characters"));
	}

	const string Table = """
		example.org	r	/mail/lib/r.pem
		example.org	e	e.pem
		sub.example.org	s	s.pem
		example.net	n	n.pem
		""";

	[TestCase("example.org", "example.org r, example.org e")]
	[TestCase("EXAMPLE.ORG.", "example.org r, example.org e")]
	[TestCase("mail.example.org", "example.org r, example.org e")]
	[TestCase("sub.example.org", "sub.example.org s")]
	[TestCase("a.b.sub.example.org", "sub.example.org s")]
	[TestCase("notexample.org", "")]
	[TestCase("example.org.evil.com", "")]
	[TestCase("org", "")]
	[TestCase("example.net", "example.net n")]
	[TestCase("", "")]
	public void TheMostSpecificListedDomainSigns(string from, string want) =>
		Assert.That(string.Join(", ", DkimTable.Parse(Table).For(from).Select(e => $"{e.Domain} {e.Selector}")), Is.EqualTo(want));

	[Test]
	public void KeyFilesAreUnderTheRoot()
	{
		Assert.That(DkimTable.HostPath("/mail/lib/dkim.d/k.pem"), Is.EqualTo(Path.Join(Root.Dir, "mail/lib/dkim.d/k.pem")));
		Assert.That(DkimTable.HostPath("k.pem"), Is.EqualTo(Path.Join(Root.Dir, "mail/lib/k.pem")));
	}

	[TestCase("v=DKIM1; k=ed25519; p=abc", "\"v=DKIM1; k=ed25519; \" \"p=abc\"")]
	[TestCase("p=abc", "\"p=abc\"")]
	public void TheRecordInZoneStrings(string record, string want) => Assert.That(DkimKeyGen.ZoneStrings(record), Is.EqualTo(want));

	[Test]
	public void ALongRecordIsCutInStringsOf255()
	{
		var p = "p=" + new string('A', 600);
		var z = DkimKeyGen.ZoneStrings("v=DKIM1; k=rsa; " + p);
		Assert.That(z, Is.EqualTo($"\"v=DKIM1; k=rsa; \" \"{p[..255]}\" \"{p[255..510]}\" \"{p[510..]}\""));
	}
}
