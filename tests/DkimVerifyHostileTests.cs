using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using NUnit.Framework;
using Upas.Dkim;

namespace Upas.Tests;

/// <summary>
/// Hostile and broken signatures and key records, table-driven: each gives one exact result and Detail, never
/// an exception; the work per message is bounded (8 signatures, header size, key sizes).
/// </summary>
public class DkimVerifyHostileTests
{
	const string Body = "hello\n";
	const string Head = "From: a@example.com\nSubject: hi\n";
	const string Good = "v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA";

	static DkimOutcome OneOf(string msg, IDnsQuery dns) => Ours.Verify(Encoding.Latin1.GetBytes(msg), dns, now: DkimTests.Now).Single();

	// a signature field's tags (Good changed) -> result, Detail; decided without the key
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA; b=AAAA", DkimResult.PermError, "duplicate tag b=")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; b=AAAA", DkimResult.PermError, "missing tag bh=")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "missing tag s=")]
	[TestCase("a=ed25519-sha256; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "missing tag v=")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=A!A; b=AAAA", DkimResult.PermError, "bad base64 in bh=")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=AAAA; b=AA\r\n AA=", DkimResult.PermError, "bad base64 in b=")]
	[TestCase("v=1; a=rsa-sha1; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "rsa-sha1 is not accepted (RFC 8301)")]
	[TestCase("v=1; a=rsa-md5; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "unknown algorithm a=rsa-md5")]
	[TestCase("v=2; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "unknown version v=2")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=to:subject; bh=AAAA; b=AAAA", DkimResult.PermError, "From is not signed (h=)")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; i=@evil.example.com.org; bh=AAAA; b=AAAA", DkimResult.PermError, "i= is not within d=")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; i=nobody; bh=AAAA; b=AAAA", DkimResult.PermError, "i= is not within d=")]
	[TestCase("v=1; a=ed25519-sha256; c=fancy; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "unknown canonicalization c=fancy")]
	[TestCase("v=1; a=ed25519-sha256; q=http; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "unknown query method q=http")]
	[TestCase("v=1; a=ed25519-sha256; l=99999999999999999999; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "bad body length l=")]
	[TestCase("v=1; a=ed25519-sha256; t=1000; x=2000; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.Fail, "signature expired")]
	[TestCase("v=1; a=ed25519-sha256; t=3000; x=2000; d=example.com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "x= is before t=")]
	[TestCase("v=1; a=ed25519-sha256; d=example..com; s=ed; h=from; bh=AAAA; b=AAAA", DkimResult.PermError, "bad domain d=")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from; bh=AAAA; b", DkimResult.PermError, "tag without \"=\"")]
	[TestCase("v=1; a=ed25519-sha256; d=example.com; s=ed; h=from;; bh=AAAA; b=AAAA", DkimResult.PermError, "empty tag")]
	public void BadSignatureFields(string tags, DkimResult result, string detail)
	{
		var dns = new TableDns();
		var o = OneOf($"DKIM-Signature: {tags}\n{Head}\n{Body}", dns);
		Assert.That((o.Result, o.Detail), Is.EqualTo((result, detail)));
		Assert.That(dns.Queries, Is.EqualTo(0), "no key looked up for a broken signature");
	}

	[Test]
	public void GoodFieldShapeLooksUpTheKey()
	{
		// the control for the table above: its base field is well-formed, so it gets as far as DNS
		var o = OneOf($"DKIM-Signature: {Good}\n{Head}\n{Body}", new TableDns());
		Assert.That(o, Is.EqualTo(new DkimOutcome(DkimResult.PermError, "example.com", "ed", "ed25519-sha256", null, "no key")));
	}

	static readonly Lazy<string> EdSigned = new(() => Encoding.Latin1.GetString(Ours.Sign(Head, Body, DkimTests.Now, new DkimSigning("example.com", "sel", DkimTests.Ed.Value))));
	static readonly Lazy<string> RsaSigned = new(() => Encoding.Latin1.GetString(Ours.Sign(Head, Body, DkimTests.Now, new DkimSigning("example.com", "sel", DkimTests.Rsa.Value))));

	static string EdP => DkimTests.Ed.Value.DnsRecord().Split("p=")[1];

	/// <summary>An RSA public key (SPKI, base64) of any size, its modulus random: only its size matters here.</summary>
	static string RsaOfBits(int bits)
	{
		var n = RandomNumberGenerator.GetBytes(bits / 8);
		n[0] |= 0x80;
		n[^1] |= 1;
		using var r = RSA.Create();
		r.ImportParameters(new RSAParameters { Modulus = n, Exponent = [1, 0, 1] });
		return Convert.ToBase64String(r.ExportSubjectPublicKeyInfo());
	}

	// the key record served for an Ed25519 signature -> result, Detail
	static readonly object[] EdKeys = [
		new object[] { "v=DKIM1; k=ed25519; p=", DkimResult.Fail, "key revoked (empty p=)" },
		new object[] { "v=DKIM1; k=ed25519; p=!!!!", DkimResult.PermError, "key record: bad base64 in p=" },
		new object[] { "k=ed25519; v=DKIM1; p=ED", DkimResult.PermError, "key record: bad v=" },
		new object[] { "v=DKIM2; k=ed25519; p=ED", DkimResult.PermError, "key record: bad v=" },
		new object[] { "v=DKIM1; k=rsa; p=ED", DkimResult.PermError, "key record: key type k=rsa does not match a=" },
		new object[] { "v=DKIM1; p=ED", DkimResult.PermError, "key record: key type k=rsa does not match a=" },
		new object[] { "v=DKIM1; k=ecdsa; p=ED", DkimResult.PermError, "key record: unknown key type k=ecdsa" },
		new object[] { "v=DKIM1; k=ed25519; h=sha1; p=ED", DkimResult.PermError, "key record: h= does not allow sha256" },
		new object[] { "v=DKIM1; k=ed25519; h=sha1:sha256; p=ED", DkimResult.Pass, "signature verified" },
		new object[] { "v=DKIM1; k=ed25519; s=tlsrpt; p=ED", DkimResult.PermError, "key record: s= does not allow email" },
		new object[] { "v=DKIM1; k=ed25519; p=ED; p=ED", DkimResult.PermError, "key record: duplicate tag p=" },
		new object[] { "v=DKIM1; k=ed25519", DkimResult.PermError, "key record: missing tag p=" },
		new object[] { "v=DKIM1; k=ed25519; p=" + Convert.ToBase64String(new byte[31]), DkimResult.PermError, "key record: Ed25519 key of 31 bytes, not 32" },
		new object[] { "v=DKIM1; k=ed25519; p=" + Convert.ToBase64String(new byte[64]), DkimResult.PermError, "key record: Ed25519 key of 64 bytes, not 32" },
		new object[] { "v=DKIM1; k=ed25519; p=" + Convert.ToBase64String(new byte[32]), DkimResult.Fail, "signature did not verify" },
		new object[] { "v=DKIM1; k=ed25519; t=y; p=ED", DkimResult.Pass, "signature verified (key in testing mode, t=y)" },
		new object[] { "v=DKIM1; k=ed25519; t=s; p=ED", DkimResult.Pass, "signature verified" },
		new object[] { "v=DKIM1; k=ed25519; p=" + new string('A', 9000), DkimResult.PermError, "key record too long" },
		new object[] { "v=DKIM1;\tk = ed25519 ;\r\n p=" + "ED", DkimResult.Pass, "signature verified" },
	];

	[TestCaseSource(nameof(EdKeys))]
	public void KeyRecordsEd25519(string record, DkimResult result, string detail)
	{
		var o = OneOf(EdSigned.Value, new TableDns().Txt("sel._domainkey.example.com", record.Replace("p=ED", "p=" + EdP)));
		Assert.That((o.Result, o.Detail), Is.EqualTo((result, detail)));
		Assert.That((o.Domain, o.Selector, o.Algorithm), Is.EqualTo(("example.com", "sel", "ed25519-sha256")));
	}

	[TestCase(512, DkimResult.PermError, "key record: RSA key of 512 bits (allowed 1024 to 8192)")]
	[TestCase(1016, DkimResult.PermError, "key record: RSA key of 1016 bits (allowed 1024 to 8192)")]
	[TestCase(8200, DkimResult.PermError, "key record: RSA key of 8200 bits (allowed 1024 to 8192)")]
	[TestCase(16384, DkimResult.PermError, "key record: RSA key of 16384 bits (allowed 1024 to 8192)")]
	[TestCase(2048, DkimResult.Fail, "signature did not verify")]	// a key of the right size, but not the signer's
	public void RsaKeySizes(int bits, DkimResult result, string detail)
	{
		var sw = Stopwatch.StartNew();
		var o = OneOf(RsaSigned.Value, new TableDns().Txt("sel._domainkey.example.com", "v=DKIM1; k=rsa; p=" + RsaOfBits(bits)));
		Assert.That((o.Result, o.Detail), Is.EqualTo((result, detail)));
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
	}

	[Test]
	public void RsaKeyAsBarePkcs1AndBadDer()
	{
		var pkcs1 = Convert.ToBase64String(DkimTests.Rsa.Value.Rsa!.ExportRSAPublicKey());
		Assert.That(OneOf(RsaSigned.Value, new TableDns().Txt("sel._domainkey.example.com", "k=rsa; p=" + pkcs1)).Result, Is.EqualTo(DkimResult.Pass));
		var o = OneOf(RsaSigned.Value, new TableDns().Txt("sel._domainkey.example.com", "v=DKIM1; k=rsa; p=" + Convert.ToBase64String(new byte[200])));
		Assert.That((o.Result, o.Detail), Is.EqualTo((DkimResult.PermError, "key record: bad RSA key in p=")));
	}

	[TestCase(DnsStatus.NxDomain, DkimResult.PermError, "no key")]
	[TestCase(DnsStatus.NoData, DkimResult.PermError, "no key")]
	[TestCase(DnsStatus.TempError, DkimResult.TempError, "key lookup failed (DNS)")]
	public void DnsFailures(DnsStatus status, DkimResult result, string detail)
	{
		var o = OneOf(EdSigned.Value, new TableDns().Status("sel._domainkey.example.com", status));
		Assert.That((o.Result, o.Detail), Is.EqualTo((result, detail)));
	}

	[Test]
	public void SeveralKeyRecords()
	{
		var rec = DkimTests.Ed.Value.DnsRecord();
		var o = OneOf(EdSigned.Value, new TableDns().Txt("sel._domainkey.example.com", rec, rec));
		Assert.That((o.Result, o.Detail), Is.EqualTo((DkimResult.PermError, "several key records")));
	}

	[Test]
	public void StrictKeyAndASubdomainIdentity()
	{
		var msg = DkimPy.Sign(Encoding.Latin1.GetBytes(Tree.Crlf(Head + "\n" + Body)), new PySig("example.com", "sel", DkimTests.Ed.Value, Identity: "a@sub.example.com"));
		var signed = Encoding.Latin1.GetString(msg) + Tree.Crlf(Head + "\n" + Body);
		var rec = DkimTests.Ed.Value.DnsRecord();
		Assert.That(OneOf(signed, new TableDns().Txt("sel._domainkey.example.com", rec)).Result, Is.EqualTo(DkimResult.Pass));
		var o = OneOf(signed, new TableDns().Txt("sel._domainkey.example.com", rec.Replace("k=ed25519;", "k=ed25519; t=y:s;")));
		Assert.That((o.Result, o.Detail), Is.EqualTo((DkimResult.PermError, "i= is a subdomain of d= but the key is strict (t=s) (key in testing mode, t=y)")));
	}

	[Test]
	public void LengthLongerThanTheBody()
	{
		var msg = DkimPy.Sign(Encoding.Latin1.GetBytes(Tree.Crlf(Head + "\n" + Body + "more\n")), new PySig("example.com", "sel", DkimTests.Ed.Value, Length: true));
		var o = OneOf(Encoding.Latin1.GetString(msg) + Tree.Crlf(Head + "\n" + Body), new TableDns().Txt("sel._domainkey.example.com", DkimTests.Ed.Value.DnsRecord()));
		Assert.That((o.Result, o.Detail, o.Length), Is.EqualTo((DkimResult.PermError, "l=13 is longer than the body (7 bytes)", 13L)));
	}

	[Test]
	public void AHundredSignaturesOnlyEightEvaluated()
	{
		var signed = EdSigned.Value;
		var field = signed[..signed.IndexOf("From:", StringComparison.Ordinal)];
		var msg = string.Concat(Enumerable.Repeat(field, 100)) + signed[field.Length..];
		var dns = new TableDns().Txt("sel._domainkey.example.com", DkimTests.Ed.Value.DnsRecord());
		var sw = Stopwatch.StartNew();
		var v = new DkimVerifier();
		v.Feed(Encoding.Latin1.GetBytes(msg));
		var o = v.FinishAsync(dns, CancellationToken.None).Result;
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
		Assert.That(v.Signatures, Is.EqualTo(100));
		Assert.That(o.Select(x => x.Result), Is.EqualTo(Enumerable.Repeat(DkimResult.Pass, 8)));
		Assert.That(dns.Queries, Is.EqualTo(8));
	}

	[Test]
	public void HeaderTooLarge()
	{
		var signed = EdSigned.Value;
		var pad = string.Concat(Enumerable.Repeat("X-Pad: " + new string('x', 990) + "\n", 300));
		var dns = new TableDns().Txt("sel._domainkey.example.com", DkimTests.Ed.Value.DnsRecord());
		var o = OneOf(signed.Replace("Subject: hi\n", "Subject: hi\n" + pad), dns);
		Assert.That((o.Result, o.Detail, o.Domain), Is.EqualTo((DkimResult.PermError, "header too large", "example.com")));
		Assert.That(dns.Queries, Is.EqualTo(0));
	}

	[Test]
	public void NoSignatureNoOutcomeAndNoHeaderEnd()
	{
		var v = new DkimVerifier();
		v.Feed("From: a@example.com\nSubject: no body, no empty line"u8);
		Assert.That(v.HeaderDone, Is.False);
		Assert.That(v.FinishAsync(new TableDns(), CancellationToken.None).Result, Is.Empty);
		Assert.That(v.HeaderDone, Is.True);
	}

	[Test]
	public void FinishTwiceAndFeedAfterFinish()
	{
		var dns = new TableDns().Txt("sel._domainkey.example.com", DkimTests.Ed.Value.DnsRecord());
		var v = new DkimVerifier();
		v.Feed(Encoding.Latin1.GetBytes(EdSigned.Value));
		var first = v.FinishAsync(dns, CancellationToken.None).Result;
		v.Feed("more"u8);
		Assert.That(v.FinishAsync(dns, CancellationToken.None).Result, Is.SameAs(first));
		Assert.That(first.Single().Result, Is.EqualTo(DkimResult.Pass));
		Assert.That(dns.Queries, Is.EqualTo(1));
		var s = new DkimSigner([new DkimSigning("example.com", "sel", DkimTests.Ed.Value)], DkimTests.Now);
		s.Header("From: a@example.com\n"u8);
		var f = s.Finish();
		s.Body("late\n"u8);
		Assert.That(s.Finish(), Is.EqualTo(f));
	}

	[Test]
	public void RandomBytesNeverThrow()
	{
		var rnd = new Random(12);
		var dns = new TableDns().Txt("sel._domainkey.example.com", DkimTests.Ed.Value.DnsRecord());
		var signed = Encoding.Latin1.GetBytes(EdSigned.Value);
		for (var i = 0; i < 500; i++) {
			var m = (byte[])signed.Clone();
			for (var k = rnd.Next(1, 6); k > 0; k--)
				m[rnd.Next(m.Length)] = (byte)rnd.Next(256);
			var o = Ours.Verify(m, dns, chunk: rnd.Next(0, 40));
			Assert.That(o, Has.Count.LessThanOrEqualTo(1));
			foreach (var x in o)
				Assert.That(x.Detail + x.Domain + x.Selector + x.Algorithm, Does.Match("^[ -~]*$"), "printable");
		}
	}
}

/// <summary>The body is hashed as it streams, never kept: a large message costs time per byte, not memory.</summary>
public class DkimVerifyStreamingTests
{
	[Test]
	public void HundredMebibyteBodyStreamsInBoundedMemory()
	{
		var msg = Encoding.Latin1.GetString(Ours.Sign("From: a@example.com\nSubject: big\n", "x\n", DkimTests.Now,
			new DkimSigning("example.com", "sel", DkimTests.Ed.Value)));
		// a second signature with simple canonicalization: two body hashes run side by side
		var field = msg[..msg.IndexOf("From:", StringComparison.Ordinal)].Replace("c=relaxed/relaxed", "c=simple/simple");
		var top = Encoding.Latin1.GetBytes(field + msg[..(msg.IndexOf("\n\n", StringComparison.Ordinal) + 2)]);
		var line = Encoding.Latin1.GetBytes("Lorem ipsum  dolor sit amet,\tconsectetur adipiscing elit, sed do eiusmod tempor\r\n");
		var chunk = new byte[64 * 1024];
		for (var i = 0; i + line.Length <= chunk.Length; i += line.Length)
			line.CopyTo(chunk, i);
		var v = new DkimVerifier();
		v.Feed(top);
		var before = GC.GetAllocatedBytesForCurrentThread();
		var sw = System.Diagnostics.Stopwatch.StartNew();
		for (var n = 0; n < 1600; n++)	// 100 MiB
			v.Feed(chunk);
		var took = sw.Elapsed;
		var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
		var o = v.FinishAsync(new TableDns().Txt("sel._domainkey.example.com", DkimTests.Ed.Value.DnsRecord()), CancellationToken.None).Result;
		Assert.That(o.Select(x => x.Detail), Is.EqualTo(new[] { "body hash did not verify", "body hash did not verify" }));
		Assert.That(allocated, Is.LessThan(64 * 1024), "bytes allocated while hashing 100 MiB");
		TestContext.Out.WriteLine($"100 MiB, 2 body hashes: {took.TotalMilliseconds:F0} ms");
		Assert.That(took, Is.LessThan(TimeSpan.FromSeconds(20)));
	}
}
