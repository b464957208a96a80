using System.Security.Cryptography;
using System.Text;
using NUnit.Framework;
using Upas.Dkim;

namespace Upas.Tests;

/// <summary>
/// DKIM keys, canonicalization and signing (RFC 6376, 8463, 8301): our signatures verify with dkimpy and with
/// our own verifier; canonical forms are checked byte for byte, whatever the chunking.
/// </summary>
public class DkimTests
{
	internal const string Header = """
		From: Alice Example <alice@example.com>
		To: bob@example.net
		Subject: a test of DKIM
		  folded over two lines
		Date: Tue, 01 Dec 2026 23:00:00 +0000
		Message-ID: <1@example.com>
		MIME-Version: 1.0
		Content-Type: text/plain; charset=us-ascii
		Received: from somewhere by example.com; Tue, 01 Dec 2026 23:00:00 +0000
		""";

	internal const string Body = "Hello Bob,\n\n  white  space\t\tand tabs \t\nend.\n\n\n";

	internal static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_795_000_000);

	internal static readonly Lazy<DkimKey> Rsa = new(() => DkimKey.Generate(DkimAlgorithm.RsaSha256));
	internal static readonly Lazy<DkimKey> Ed = new(() => DkimKey.Generate(DkimAlgorithm.Ed25519Sha256));

	internal static DkimKey Key(DkimAlgorithm a) => a == DkimAlgorithm.RsaSha256 ? Rsa.Value : Ed.Value;

	static string Sha(string canonical) => Convert.ToBase64String(SHA256.HashData(Encoding.Latin1.GetBytes(canonical)));

	// ---- canonicalization ----

	// body, simple form, relaxed form
	static readonly object[] Bodies = [
		new object[] { "", "\r\n", "" },
		new object[] { "\r\n", "\r\n", "" },
		new object[] { "\r\n\r\n\n", "\r\n", "" },
		new object[] { "abc", "abc\r\n", "abc\r\n" },
		new object[] { "abc\n", "abc\r\n", "abc\r\n" },
		new object[] { "a \t b \r\n", "a \t b \r\n", "a b\r\n" },
		new object[] { "  a\r\n", "  a\r\n", " a\r\n" },
		new object[] { "a\r\n \r\n\r\nb\r\n\r\n \t\r\n", "a\r\n \r\n\r\nb\r\n\r\n \t\r\n", "a\r\n\r\n\r\nb\r\n" },
		new object[] { "a\rb\r\n", "a\rb\r\n", "a\rb\r\n" },
		new object[] { "a\n\n\nb\n", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n" },
		new object[] { "x \r\n\r\n", "x \r\n", "x\r\n" },
		new object[] { "a\r", "a\r\r\n", "a\r\r\n" },
		// RFC 6376 3.4.6's example body
		new object[] { " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n" },
	];

	[TestCaseSource(nameof(Bodies))]
	public void BodyCanonicalization(string body, string simple, string relaxed)
	{
		var b = Encoding.Latin1.GetBytes(body);
		foreach (var (isRelaxed, want) in new[] { (false, simple), (true, relaxed) }) {
			// every cut into two chunks, and one byte at a time
			for (var cut = 0; cut <= b.Length; cut++) {
				using var c = new BodyCanon(isRelaxed);
				c.Feed(b.AsSpan(0, cut));
				c.Feed(b.AsSpan(cut));
				Assert.That(Convert.ToBase64String(c.Finish()), Is.EqualTo(Sha(want)), $"relaxed={isRelaxed} cut at {cut}");
				Assert.That(c.Length, Is.EqualTo(want.Length));
			}
			using var d = new BodyCanon(isRelaxed);
			foreach (var x in b)
				d.Feed([x]);
			Assert.That(Convert.ToBase64String(d.Finish()), Is.EqualTo(Sha(want)), $"relaxed={isRelaxed} bytewise");
		}
	}

	[TestCase("abc\r\ndef\r\n", false, 3, "abc")]
	[TestCase("abc\r\ndef\r\n", false, 5, "abc\r\n")]
	[TestCase("a  b\r\n\r\n\r\nc\r\n", true, 6, "a b\r\n\r")]
	[TestCase("abc\r\n", true, 0, "")]
	public void BodyLengthCountsCanonicalBytes(string body, bool relaxed, long l, string hashed)
	{
		using var c = new BodyCanon(relaxed, l);
		c.Feed(Encoding.Latin1.GetBytes(body));
		Assert.That(Convert.ToBase64String(c.Finish()), Is.EqualTo(Sha(hashed)));
	}

	[TestCase("A: X\r\n", "a:X\r\n")]
	[TestCase("B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n")]	// RFC 6376 3.4.6
	[TestCase("Subject:\r\n  hello   world\r\n", "subject:hello world\r\n")]
	[TestCase("SUBJECT \t:\t \r\n", "subject:\r\n")]
	[TestCase("X-A: a\r\n \r\n b\r\n", "x-a:a b\r\n")]
	public void HeaderRelaxed(string field, string want)
	{
		Assert.That(Encoding.Latin1.GetString(HeaderCanon.Relaxed(Encoding.Latin1.GetBytes(field))), Is.EqualTo(want));
		Assert.That(Encoding.Latin1.GetString(HeaderCanon.Simple(Encoding.Latin1.GetBytes(field))), Is.EqualTo(field));
	}

	[Test]
	public void FieldsAndBottomUpSelection()
	{
		var h = HeaderCanon.Crlf("From: a\nTo: x\n y\nFrom: b\nSubject: s\n"u8);
		var f = HeaderCanon.Fields(h);
		Assert.That(f.Select(x => x.Name), Is.EqualTo(new[] { "From", "To", "From", "Subject" }));
		Assert.That(Encoding.Latin1.GetString(f[1].Bytes.Span), Is.EqualTo("To: x\r\n y\r\n"));
		var sel = HeaderCanon.Select(f, ["from", "subject", "FROM", "from", "cc"]);
		Assert.That(sel.Select(x => x is { } r ? Encoding.Latin1.GetString(r.Bytes.Span) : null),
			Is.EqualTo(new[] { "From: b\r\n", "Subject: s\r\n", "From: a\r\n", null, null }));
	}

	[TestCase("v=1; a=rsa-sha256;", "v=1|a=rsa-sha256", "")]
	[TestCase(" v = 1 ;\r\n\tb= ab\r\n cd ", "v=1|b=ab\r\n cd", "")]
	[TestCase("v=1; v=1", null, "duplicate tag v=")]
	[TestCase("v=1;; a=b", null, "empty tag")]
	[TestCase("v", null, "tag without \"=\"")]
	[TestCase("1v=2", null, "bad tag name")]
	[TestCase("v=\u0001", null, "bad character in tag v=")]
	[TestCase("p=", "p=", "")]
	public void TagLists(string text, string? tags, string why)
	{
		var l = TagList.Parse(text, out var w);
		Assert.That(l is null ? null : string.Join("|", l.Tags.Select(t => $"{t.Key}={t.Value}")), Is.EqualTo(tags));
		Assert.That(w, Is.EqualTo(why));
	}

	// ---- keys ----

	[TestCase(DkimAlgorithm.RsaSha256, 2048)]
	[TestCase(DkimAlgorithm.Ed25519Sha256, 256)]
	public void KeysRoundTripThroughPem(DkimAlgorithm alg, int bits)
	{
		var k = Key(alg);
		Assert.That(k.Bits, Is.EqualTo(bits));
		var f = Path.GetTempFileName();
		try {
			File.WriteAllText(f, k.PrivatePem());
			using var back = DkimKey.Load(f);
			Assert.That(back.Algorithm, Is.EqualTo(alg));
			Assert.That(back.DnsRecord(), Is.EqualTo(k.DnsRecord()));
			Assert.That(k.PrivatePem(), Does.StartWith("-----BEGIN PRIVATE KEY-----\n"));
		} finally {
			File.Delete(f);
		}
	}

	[Test]
	public void Ed25519PemIsOpenSsls()
	{
		// openssl's own Ed25519 key (PKCS#8, OID 1.3.101.112) loads, and ours reads back in openssl
		var dir = Directory.CreateTempSubdirectory("dkimkey").FullName;
		try {
			var psi = new System.Diagnostics.ProcessStartInfo("openssl", ["genpkey", "-algorithm", "ed25519", "-out", $"{dir}/k.pem"]) {
				UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
			};
			Assert.That(Tree.Exec(psi, []).Exit, Is.EqualTo(0));
			using var k = DkimKey.Load($"{dir}/k.pem");
			Assert.That(k.Algorithm, Is.EqualTo(DkimAlgorithm.Ed25519Sha256));
			psi = new System.Diagnostics.ProcessStartInfo("openssl", ["pkey", "-in", $"{dir}/k.pem", "-pubout", "-outform", "DER"]) {
				UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
			};
			var der = Tree.Exec(psi, []).Out;
			Assert.That(k.DnsRecord(), Is.EqualTo("v=DKIM1; k=ed25519; p=" + Convert.ToBase64String(der[^32..])));
			File.WriteAllText($"{dir}/ours.pem", Ed.Value.PrivatePem());
			psi = new System.Diagnostics.ProcessStartInfo("openssl", ["pkey", "-in", $"{dir}/ours.pem", "-noout", "-text"]) {
				UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
			};
			var (o, _, exit) = Tree.Exec(psi, []);
			Assert.That(exit, Is.EqualTo(0));
			Assert.That(Encoding.ASCII.GetString(o), Does.StartWith("ED25519 Private-Key:"));
		} finally {
			Directory.Delete(dir, true);
		}
	}

	static string Pem(string label, byte[] der) => PemEncoding.WriteString(label, der) + "\n";

	static readonly Func<string?>[] BadKeys = [
		() => null,	// no file
		() => "hello\n",
		() => "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
		() => Pem("PRIVATE KEY", [0x30, 0x03, 0x02, 0x01, 0x00]),
		() => { using var r = RSA.Create(512); return r.ExportRSAPrivateKeyPem(); },
		() => { using var e = ECDsa.Create(ECCurve.NamedCurves.nistP256); return e.ExportPkcs8PrivateKeyPem(); },
		() => { using var e = ECDsa.Create(ECCurve.NamedCurves.nistP256); return e.ExportECPrivateKeyPem(); },
		() => Rsa.Value.Rsa!.ExportSubjectPublicKeyInfoPem(),
	];

	[TestCase(0, "no such file")]
	[TestCase(1, "not a PEM file")]
	[TestCase(2, "not a PEM file")]
	[TestCase(3, "bad key data in the PEM file")]
	[TestCase(4, "RSA key of 512 bits, fewer than 1024 (RFC 8301)")]
	[TestCase(5, "unsupported key type (algorithm 1.2.840.10045.2.1; RSA or Ed25519 only)")]
	[TestCase(6, "unsupported key type \"EC PRIVATE KEY\" (RSA or Ed25519 only)")]
	[TestCase(7, "a public key, not a private one")]
	public void BadKeyFiles(int which, string why)
	{
		var f = Path.Combine(Path.GetTempPath(), $"dkimbad-{Environment.ProcessId}-{which}.pem");
		if (BadKeys[which]() is { } text)
			File.WriteAllText(f, text);
		try {
			var e = Assert.Throws<DkimKeyException>(() => DkimKey.Load(f))!;
			Assert.That(e.Message, Is.EqualTo($"{f}: {why}"));
			Assert.That(e.Message, Does.Not.Contain("\n"));
		} finally {
			File.Delete(f);
		}
	}

	[Test]
	public void KeyFileThatIsADirectoryOrTooLarge()
	{
		var dir = Directory.CreateTempSubdirectory("dkimdir").FullName;
		try {
			Assert.That(Assert.Throws<DkimKeyException>(() => DkimKey.Load(dir))!.Message, Is.EqualTo($"{dir}: a directory, not a key file"));
			File.WriteAllText($"{dir}/big.pem", new string('A', 70_000));
			Assert.That(Assert.Throws<DkimKeyException>(() => DkimKey.Load($"{dir}/big.pem"))!.Message, Is.EqualTo($"{dir}/big.pem: too large for a key file"));
		} finally {
			Directory.Delete(dir, true);
		}
	}

	// ---- signing ----

	[TestCase(DkimAlgorithm.RsaSha256)]
	[TestCase(DkimAlgorithm.Ed25519Sha256)]
	public void OurSignatureVerifiesWithDkimpyAndOurs(DkimAlgorithm alg)
	{
		var k = Key(alg);
		var msg = Ours.Sign(Header, Body, Now, new DkimSigning("example.com", "sel", k));
		var records = new Dictionary<string, string> { ["sel._domainkey.example.com"] = k.DnsRecord() };
		Assert.That(DkimPy.Verify(msg, records), Is.EqualTo(new[] { "pass" }));
		var dns = new TableDns().Txt("sel._domainkey.example.com", k.DnsRecord());
		var o = Ours.Verify(msg, dns).Single();
		Assert.That(o, Is.EqualTo(new DkimOutcome(DkimResult.Pass, "example.com", "sel", DkimNames.Tag(alg), null, "signature verified")));
		// one byte of the body changed: dkimpy and we say fail
		var bad = Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(msg).Replace("end.", "End."));
		Assert.That(DkimPy.Verify(bad, records), Is.EqualTo(new[] { "fail" }));
		Assert.That(Ours.Verify(bad, dns).Single().Detail, Is.EqualTo("body hash did not verify"));
	}

	[Test]
	public void TwoKeysTwoSignaturesFoldedShort()
	{
		var msg = Ours.Sign(Header, Body, Now, new DkimSigning("example.com", "ed", Ed.Value), new DkimSigning("example.com", "rsa", Rsa.Value));
		var text = Encoding.Latin1.GetString(msg);
		var sigs = text[..text.IndexOf("From:", StringComparison.Ordinal)];
		Assert.That(sigs, Does.StartWith("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;\n s=ed; t=1795000000; h=from:from:to:subject:date:message-id:mime-version:\n content-type; bh="));
		Assert.That(sigs.Split('\n').Max(l => l.Length), Is.LessThan(78));
		Assert.That(sigs.Split("DKIM-Signature:").Length - 1, Is.EqualTo(2));
		Assert.That(sigs, Does.Contain("a=rsa-sha256"));
		var records = new Dictionary<string, string> {
			["ed._domainkey.example.com"] = Ed.Value.DnsRecord(),
			["rsa._domainkey.example.com"] = Rsa.Value.DnsRecord(),
		};
		Assert.That(DkimPy.Verify(msg, records), Is.EqualTo(new[] { "pass", "pass" }));
	}

	[Test]
	public void SignedHeaderSetListsPresentFieldsAndOverSignsFrom()
	{
		var msg = Encoding.Latin1.GetString(Ours.Sign("From: a@example.com\nX-Other: 1\nCc: c@example.com\nCc: d@example.com\n", "hi\n", Now, new DkimSigning("example.com", "s", Ed.Value)));
		Assert.That(msg, Does.Contain(" h=from:from:cc;"));
		// a second From added later breaks the signature (over-signed)
		var dns = new TableDns().Txt("s._domainkey.example.com", Ed.Value.DnsRecord());
		Assert.That(Ours.Verify(Encoding.Latin1.GetBytes(msg), dns).Single().Result, Is.EqualTo(DkimResult.Pass));
		var added = msg.Replace("X-Other: 1\n", "X-Other: 1\nFrom: evil@example.com\n");
		Assert.That(Ours.Verify(Encoding.Latin1.GetBytes(added), dns).Single().Detail, Is.EqualTo("signature did not verify"));
	}
}
