using NUnit.Framework;
using Upas.Smtp;

namespace Upas.Tests;

/// <summary>The pure parts of the client: dial strings, names, addresses, thumbprint lines (smtp.md §1.2, §2, §5.2, §6).</summary>
public class SmtpUnitTests
{
	[TestCase("mail.example.com", null, "net", "mail.example.com", "smtp", 25)]
	[TestCase("tcp!mail.example.com", null, "tcp", "mail.example.com", "smtp", 25)]
	[TestCase("net!example.com!587", null, "net", "example.com", "587", 587)]
	[TestCase("tcp!example.com!submission", null, "tcp", "example.com", "submission", 587)]
	[TestCase("tcp!127.0.0.1!2525", null, "tcp", "127.0.0.1", "2525", 2525)]
	[TestCase("tcp!::1!25", null, "tcp", "::1", "25", 25)]
	[TestCase("/net.alt/tcp!mx.example.com", "/net.alt", "tcp", "mx.example.com", "smtp", 25)]
	[TestCase("/net/tcp!mx!smtp", "/net", "tcp", "mx", "smtp", 25)]
	[TestCase("il!kremvax!smtp", null, "il", "kremvax", "smtp", 25)]
	[TestCase("tcp!$smtp", null, "tcp", "$smtp", "smtp", 25)]
	[TestCase("tcp!x!nosuchservice", null, "tcp", "x", "nosuchservice", null)]
	[TestCase("tcp!x!0", null, "tcp", "x", "0", null)]
	[TestCase("tcp!x!65536", null, "tcp", "x", "65536", null)]
	[TestCase("tcp!x!", null, "tcp", "x", "smtp", 25)]
	public void DialStrings(string s, string? netdir, string net, string host, string service, int? port)
	{
		var d = DialString.Parse(s)!;
		Assert.That((d.NetDir, d.Net, d.Host, d.Service, d.Port), Is.EqualTo((netdir, net, host, service, port)));
	}

	[TestCase("mail.example.com", "net!mail.example.com!smtp")]
	[TestCase("tcp!a!587", "tcp!a!587")]
	[TestCase("/net.alt/tcp!a", "/net.alt/tcp!a!smtp")]
	public void DialStringCompleted(string s, string want) => Assert.That(DialString.Parse(s)!.ToString(), Is.EqualTo(want));

	[TestCase("")]
	[TestCase("tcp!")]
	[TestCase("!host")]
	public void DialStringBad(string s) => Assert.That(DialString.Parse(s), Is.Null);

	[TestCase("alice", "alice")]
	[TestCase("example.org!alice", "alice@example.org")]
	[TestCase("kremvax!alice", "kremvax!alice")]
	[TestCase("a.x.y!b.p.o!c!d", "@a.x.y:c!d@b.p.o")]
	[TestCase("a.com!b.com!c.com!u", "@a.com,@b.com:u@c.com")]
	[TestCase("example.org!kremvax!u", "kremvax!u@example.org")]
	[TestCase("alice@example.org", "alice@example.org")]
	[TestCase("/dev/null", "/dev/null")]
	public void BangToAt(string a, string want) => Assert.That(Addr.BangToAt(a), Is.EqualTo(want));

	[TestCase("a%%20b", "a b")]
	[TestCase("x%%28y%%29", "x(y)")]
	[TestCase("100%%zz", "100%%zz")]
	[TestCase("50%", "50%")]
	[TestCase("plain", "plain")]
	public void Unescape(string a, string want) => Assert.That(QueueWord.Unescape(a), Is.EqualTo(want));

	[TestCase("bob", false, "bob@testhost.example.com")]
	[TestCase("x!y", false, "x!y@testhost.example.com")]
	[TestCase("a.com!b.com!c", false, "<@a.com:c@b.com>")]
	[TestCase("@a.com:u@b.com", true, "@a.com:u@b.com")]
	[TestCase("d@example.net", false, "d@example.net")]
	public void HeaderAddress(string a, bool bracketed, string want) => Assert.That(Addr.Header(a, bracketed, "testhost.example.com"), Is.EqualTo(want));

	[TestCase("gnot", ".cs.example.com", "gnot.cs.example.com")]
	[TestCase("gnot", "kremvax.example.com", "gnot.example.com")]
	[TestCase("gnot", "com", "gnot.com")]
	[TestCase("gnot.x.org", ".example.com", "gnot.x.org")]
	[TestCase("gnot", null, "gnot")]
	public void Domainify(string name, string? domain, string want) => Assert.That(Names.Domainify(name, domain), Is.EqualTo(want));

	[TestCase("sha1=1d6e1cf70ec6f9ab28d3ea4b27a49a77654d370e", "sha1=1D6E1CF70EC6F9AB28D3EA4B27A49A77654D370E")]
	[TestCase("SHA1=1D6E1CF70EC6F9AB28D3EA4B27A49A77654D370E", "sha1=1D6E1CF70EC6F9AB28D3EA4B27A49A77654D370E")]
	[TestCase("sha256=ab000000000000000000000000000000000000000000000000000000000000cd", "sha256=AB000000000000000000000000000000000000000000000000000000000000CD")]
	[TestCase("sha1=1d6e", null)]
	[TestCase("md5=1d6e1cf70ec6f9ab28d3ea4b27a49a77", null)]
	[TestCase("sha1=zz6e1cf70ec6f9ab28d3ea4b27a49a77654d370e", null)]
	public void ThumbprintField(string f, string? want) => Assert.That(Thumbprints.Parse(f), Is.EqualTo(want));

	[TestCase(null, 0)]
	[TestCase("Retry, Temporary Failure", 2)]
	[TestCase("Permanent Failure", 1)]
	[TestCase("No supported AUTH method", 1)]
	[TestCase("more than 100 busted mxs given", 1)]
	public void ExitCodes(string? status, int code) => Assert.That(Status.Code(status), Is.EqualTo(code));

	[Test]
	public void FactotumFileKeys()
	{
		var f = Path.GetTempFileName();
		try {
			File.WriteAllText(f, "key proto=pass service=smtp server=mx.example.org user=glenda !password='s3 cret'\n" +
				"key proto=pass service=imap server=mx.example.org user=glenda !password=no\n" +
				"key proto=pass service=smtp server=other.org user=bob !password=b\n");
			var k = new FactotumFile(f);
			Assert.That(k.GetPassword("mx.example.org", "glenda"), Is.EqualTo(("glenda", "s3 cret")));
			Assert.That(k.GetPassword("mx.example.org", null), Is.EqualTo(("glenda", "s3 cret")));
			Assert.That(k.GetPassword("other.org", null), Is.EqualTo(("bob", "b")));
			Assert.That(k.GetPassword("mx.example.org", "bob"), Is.Null);
			Assert.That(new FactotumFile(f + ".missing").GetPassword("mx.example.org", null), Is.Null);
		} finally {
			File.Delete(f);
		}
	}
}
