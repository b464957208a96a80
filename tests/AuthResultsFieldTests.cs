using System.Diagnostics;
using NUnit.Framework;
using Upas.Dmarc;

namespace Upas.Tests;

/// <summary>The Authentication-Results field (RFC 8601): what smtpd writes, and which incoming fields it takes for forgeries.</summary>
public class AuthResultsFieldTests
{
	[Test]
	public void FieldIsFoldedOneResultALine()
	{
		var f = new AuthResults("example.com")
			.Add("spf", "pass", null, ("smtp.mailfrom", "alice@example.org"))
			.Add("dkim", "fail", "body hash did not verify", ("header.d", "example.org"), ("header.s", "sel"))
			.Add("dmarc", "fail", "p=reject dis=reject", ("header.from", "example.org"))
			.Field();
		Assert.That(f, Is.EqualTo(
			"Authentication-Results: example.com;\n" +
			"\tspf=pass smtp.mailfrom=alice@example.org;\n" +
			"\tdkim=fail (body hash did not verify) header.d=example.org header.s=sel;\n" +
			"\tdmarc=fail (p=reject dis=reject) header.from=example.org\n"));
	}

	[Test]
	public void NoResultIsNone() => Assert.That(new AuthResults("example.com").Field(), Is.EqualTo("Authentication-Results: example.com; none\n"));

	[Test]
	public void LongResultFoldsBetweenWords()
	{
		var f = new AuthResults("example.com").Add("dkim", "fail", new string('x', 40) + " " + new string('y', 40), ("header.d", "example.org")).Field();
		Assert.Multiple(() => {
			foreach (var line in f.TrimEnd('\n').Split('\n'))
				Assert.That(line.Length, Is.LessThanOrEqualTo(78), line);
			Assert.That(f, Does.Contain("\n\t  "));
		});
	}

	[TestCase("alice@example.org", "alice@example.org")]
	[TestCase("example.org", "example.org")]
	[TestCase("a b@example.org", "\"a b@example.org\"")]
	[TestCase("x\"y\\z", "\"x\\\"y\\\\z\"")]
	[TestCase("evil\r\nX-Bad: 1", "\"evil??X-Bad: 1\"")]
	[TestCase("caf\u00e9.example", "\"caf?.example\"")]
	[TestCase("a;b", "\"a;b\"")]
	[TestCase("", "\"\"")]
	public void ValuesAreSafe(string v, string want) => Assert.That(AuthResults.Value(v), Is.EqualTo(want));

	[Test]
	public void CommentsAreSafe()
	{
		var f = new AuthResults("example.com").Add("dkim", "fail", "bad (nested) \\ \x01 text", ("header.d", "d.example")).Field();
		Assert.That(f, Does.Contain("dkim=fail (bad [nested] / ? text) header.d=d.example"));
	}

	[TestCase("Authentication-Results: example.com; spf=pass", true)]
	[TestCase("authentication-results:EXAMPLE.COM;spf=pass", true)]
	[TestCase("Authentication-Results: (forged) (nested (comment)) example.com; none", true)]
	[TestCase("Authentication-Results:\n\texample.com 1; dkim=pass", true)]  // folded, with a version
	[TestCase("Authentication-Results: \"example.com\"; none", true)]
	[TestCase("Authentication-Results: example.com.; none", true)]
	[TestCase("Authentication-Results : example.com; none", true)]
	[TestCase("Authentication-Results: mx.example.com; spf=pass", false)]
	[TestCase("Authentication-Results: example.com.evil; spf=pass", false)]
	[TestCase("Authentication-Results: (example.com) other.example; spf=pass", false)]
	[TestCase("X-Authentication-Results: example.com; spf=pass", false)]
	[TestCase("Authentication-Results:", false)]
	public void RecognisesOurs(string field, bool ours) => Assert.That(AuthResults.ClaimsDomain(field, "example.com"), Is.EqualTo(ours));

	/// <summary>Debian's python3-authres parses what we write, quoted values and comments included.</summary>
	[Test]
	public void ParsesWithPythonAuthres()
	{
		var f = new AuthResults("example.com")
			.Add("spf", "softfail", null, ("smtp.mailfrom", "odd local@example.org"))
			.Add("dkim", "pass", "l=10", ("header.d", "example.org"), ("header.s", "s1"))
			.Add("dkim", "fail", "signature did not verify", ("header.d", "example.net"), ("header.s", "s2"))
			.Add("dmarc", "pass", "p=none dis=none", ("header.from", "example.org"))
			.Field();
		var got = PyAuthres(f);
		Assert.That(got, Is.EqualTo(
			"example.com\n" +
			"spf softfail smtp.mailfrom=odd local@example.org\n" +
			"dkim pass header.d=example.org header.s=s1\n" +
			"dkim fail header.d=example.net header.s=s2\n" +
			"dmarc pass header.from=example.org\n"));
	}

	/// <summary>authres' reading of a field: the authserv-id, then per result "method result ptype.property=value ...".</summary>
	internal static string PyAuthres(string field)
	{
		if (!File.Exists("/usr/bin/python3"))
			Assert.Ignore("needs /usr/bin/python3 with python3-authres");
		var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		psi.ArgumentList.Add("-c");
		psi.ArgumentList.Add("""
			import sys, authres
			f = authres.AuthenticationResultsHeader.parse(sys.stdin.read())
			print(f.authserv_id)
			for r in f.results:
			    print(' '.join([r.method, r.result] + ['%s.%s=%s' % (p.type, p.name, p.value) for p in r.properties]))
			""");
		using var p = Process.Start(psi)!;
		p.StandardInput.Write(field.Replace("\n\t", "\r\n\t").TrimEnd('\n'));
		p.StandardInput.Close();
		var o = p.StandardOutput.ReadToEnd();
		var e = p.StandardError.ReadToEnd();
		p.WaitForExit(30_000);
		Assert.That(p.ExitCode, Is.Zero, e);
		return o;
	}
}
