using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Records for the SPF, DKIM and DMARC tests: any TXT text, as raw RDATA (strings of 255 bytes at most, commas and all).</summary>
static class AuthDns
{
	public static DnsRecord Txt(string name, string text) => DnsRecord.RawTxt(name, text);

	/// <summary>A tree for smtpd over pipes (peer 127.0.0.2, domain example.com, ournets 10/8) asking dns.</summary>
	public static Tree NewTree(Dnsmasq dns, string conf = "") => new(Tree.DefaultConf + $"dnsserver {dns.Server}\n" + conf);

	/// <summary>The header lines smtpd put before the client's header: everything from the From_ line's end to Received:.</summary>
	public static string Added(string msg)
	{
		var start = msg.IndexOf('\n') + 1;
		var end = msg.IndexOf("Received: ", StringComparison.Ordinal);
		return msg[start..end];
	}

	public static string Dialogue(string from, string body, string helo = "client.9fans.net") =>
		Tree.Crlf($"HELO {helo}\nMAIL FROM:<{from}>\nRCPT TO:<bob@example.com>\nDATA\n{body}.\nQUIT\n");
}

/// <summary>
/// Issue 12, incoming: DKIM, DMARC and the Authentication-Results field through real smtpd dialogues, with
/// dnsmasq on loopback serving the records, and messages signed by Debian's dkimpy.
/// </summary>
[TestFixture]
public class AuthResultsTests
{
	const string Msg = "From: Alice <alice@from.test>\nTo: bob@example.com\nSubject: hello\n\nbody\n";

	static string Delivered(Tree t)
	{
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1), "one mailer run");
		return caps[0].Text;
	}

	[Test]
	public void HeaderComesFirstWithEveryResult()
	{
		using var dns = new Dnsmasq(
			AuthDns.Txt("from.test", "v=spf1 ip4:127.0.0.2 -all"),
			AuthDns.Txt("_dmarc.from.test", "v=DMARC1; p=reject"));
		using var t = AuthDns.NewTree(dns);
		var r = t.Run(AuthDns.Dialogue("alice@from.test", Msg));
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
		var m = Delivered(t);
		Assert.That(m, Does.Match("^From from\\.test!alice .* remote from \n" +
			"Authentication-Results: example\\.com;\n" +
			"\tspf=pass smtp\\.mailfrom=alice@from\\.test;\n" +
			"\tdkim=none;\n" +
			"\tdmarc=pass \\(p=reject dis=none\\) header\\.from=from\\.test\n" +
			"Received: from client\\.9fans\\.net \\(\\[127\\.0\\.0\\.2\\]\\) by testhost; "));
		var field = m.Split('\n').Skip(1).TakeWhile(l => !l.StartsWith("Received:")).Aggregate((a, b) => a + "\n" + b) + "\n";
		Assert.That(AuthResultsFieldTests.PyAuthres(field), Is.EqualTo(
			"example.com\nspf pass smtp.mailfrom=alice@from.test\ndkim none\ndmarc pass header.from=from.test\n"));
	}

	[Test]
	public void ForgedFieldForOurDomainIsRemovedOthersKept()
	{
		using var dns = new Dnsmasq();
		using var t = AuthDns.NewTree(dns);
		var body = "Authentication-Results: Example.COM; spf=pass smtp.mailfrom=ceo@example.com\n" +
			"Authentication-Results: (comment) example.com;\n\tdkim=pass header.d=example.com\n" +
			"Authentication-Results: mx.other.example; spf=fail\n" +
			"X-upas-quarantine: no\n" + Msg;
		t.Run(AuthDns.Dialogue("alice@from.test", body));
		var m = Delivered(t);
		Assert.Multiple(() => {
			Assert.That(Regex.Matches(m, "^Authentication-Results: example\\.com;", RegexOptions.Multiline), Has.Count.EqualTo(1));
			Assert.That(m, Does.Not.Contain("ceo@example.com").And.Not.Contain("(comment)").And.Not.Contain("X-upas-quarantine"));
			Assert.That(m, Does.Contain("\nAuthentication-Results: mx.other.example; spf=fail\nFrom: Alice"));
			Assert.That(AuthDns.Added(m), Does.StartWith("Authentication-Results: example.com;\n\tspf=none smtp.mailfrom=alice@from.test;\n\tdkim=none;\n\tdmarc=none header.from=from.test\n"));
		});
	}

	[Test]
	public void TrustedClientKeepsItsFieldsAndGetsNone()
	{
		using var dns = new Dnsmasq();
		using var t = new Tree(Tree.DefaultConf + $"dnsserver {dns.Server}\n", "10.1.2.3");
		var body = "Authentication-Results: example.com; spf=pass smtp.mailfrom=a@b.example\n" + Msg;
		t.Run(AuthDns.Dialogue("alice@from.test", body));
		var m = Delivered(t);
		Assert.That(AuthDns.Added(m), Is.Empty);
		Assert.That(m, Does.Contain("\nAuthentication-Results: example.com; spf=pass smtp.mailfrom=a@b.example\nFrom: Alice"));
		Assert.That(dns.Log, Does.Not.Contain("query[TXT]"), "no look-up for a trusted client");
	}

	[Test]
	public void AuthenticatedClientGetsAuthPass()
	{
		using var dns = new Dnsmasq();
		using var t = AuthDns.NewTree(dns);
		t.Write("/mail/lib/smtpd.keys", "key proto=pass service=smtp user=glenda !password=secret\n", 0x180);
		var plain = Convert.ToBase64String(Encoding.ASCII.GetBytes("\0glenda\0secret"));
		var input = Tree.Crlf($"EHLO client.9fans.net\nAUTH PLAIN {plain}\nMAIL FROM:<alice@from.test>\nRCPT TO:<bob@9fans.net>\nDATA\n" +
			"Authentication-Results: example.com; dmarc=pass header.from=from.test\n" + Msg + ".\nQUIT\n");
		var r = t.Run(Encoding.Latin1.GetBytes(input), ["-p"], null);
		Assert.That(r.Out, Does.Contain("235 2.0.0").And.Contain("250 2.5.0 sent"));
		var m = Delivered(t);
		Assert.That(AuthDns.Added(m), Is.EqualTo("Authentication-Results: example.com;\n\tauth=pass smtp.auth=glenda\n"));
		Assert.That(m, Does.Not.Contain("dmarc=pass"));
	}

	static readonly DnsRecord[] DmarcZone = [
		AuthDns.Txt("from.test", "v=spf1 ip4:127.0.0.2 -all"),
		AuthDns.Txt("other.test", "v=spf1 ip4:127.0.0.2 -all"),
		AuthDns.Txt("_dmarc.reject.test", "v=DMARC1; p=reject"),
		AuthDns.Txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine"),
		AuthDns.Txt("_dmarc.sampled.test", "v=DMARC1; p=reject; pct=0"),
		DnsRecord.Broken("broken.test"),
	];

	[Test]
	public void DmarcRejectRefusesAndDeliversNothing()
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns, "dmarc reject\n");
		var r = t.Run(AuthDns.Dialogue("alice@other.test", Msg.Replace("alice@from.test", "ceo@reject.test")));
		Assert.That(r.Out, Does.Contain("354 Input message; end with <CRLF>.<CRLF>\r\n550 5.7.1 Rejected by the DMARC policy of reject.test\r\n221 "));
		Assert.That(t.Captures(), Is.Empty, "nothing delivered");
		Assert.That(t.Log(), Does.Contain("authres [client.9fans.net/127.0.0.2] other.test!alice spf=pass(alice@other.test) dkim=none dmarc=fail(reject.test p=reject dis=reject) action=550"));
	}

	[Test]
	public void WithoutDmarcRejectNothingIsRefused()
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns);
		var r = t.Run(AuthDns.Dialogue("alice@other.test", Msg.Replace("alice@from.test", "ceo@reject.test")));
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(Delivered(t)), Does.EndWith("\tdmarc=fail (p=reject dis=reject) header.from=reject.test\n"));
	}

	[Test]
	public void QuarantineAddsTheHeader()
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns, "dmarc reject\n");
		var r = t.Run(AuthDns.Dialogue("alice@other.test", Msg.Replace("alice@from.test", "ceo@quarantine.test")));
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(Delivered(t)), Does.EndWith(
			"\tdmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.test\n" +
			"X-upas-quarantine: dmarc=fail policy=quarantine header.from=quarantine.test\n"));
	}

	[Test]
	public void PctZeroTurnsRejectIntoQuarantine()
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns, "dmarc reject\n");
		var r = t.Run(AuthDns.Dialogue("alice@other.test", Msg.Replace("alice@from.test", "ceo@sampled.test")));
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
		Assert.That(AuthDns.Added(Delivered(t)), Does.Contain("dmarc=fail (p=reject dis=quarantine) header.from=sampled.test\nX-upas-quarantine: "));
	}

	[Test]
	public void DmarcTempErrorDefersOnlyUnderDmarcReject()
	{
		using var dns = new Dnsmasq(DmarcZone);
		var body = Msg.Replace("alice@from.test", "ceo@broken.test");
		using (var t = AuthDns.NewTree(dns, "dmarc reject\n")) {
			var r = t.Run(AuthDns.Dialogue("alice@other.test", body));
			Assert.That(r.Out, Does.Contain("\r\n451 4.7.1 Cannot check the DMARC policy of broken.test now, try again later\r\n"));
			Assert.That(t.Captures(), Is.Empty);
		}
		using (var t = AuthDns.NewTree(dns)) {
			var r = t.Run(AuthDns.Dialogue("alice@other.test", body));
			Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
			Assert.That(AuthDns.Added(Delivered(t)), Does.Contain("\tdmarc=temperror header.from=broken.test\n"));
		}
	}

	[TestCase("alice@from.test\nFrom: bob@other.test", "dmarc=permerror (several From: fields)", TestName = "two From: fields")]
	[TestCase("alice@from.test, bob@other.test", "dmarc=permerror (several domains in From:)", TestName = "two From: domains")]
	[TestCase("alice@from.test, bob@from.test", "dmarc=none header.from=from.test", TestName = "two addresses of one domain")]
	public void FromFieldShapes(string from, string want)
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns);
		t.Run(AuthDns.Dialogue("alice@other.test", $"From: {from}\nSubject: x\n\nbody\n"));
		Assert.That(AuthDns.Added(Delivered(t)), Does.Contain("\t" + want + "\n"));
	}

	[Test]
	public void NoFromFieldIsNone()
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns);
		t.Run(AuthDns.Dialogue("alice@other.test", "Subject: x\n\nbody\n"));
		Assert.That(AuthDns.Added(Delivered(t)), Does.EndWith("\tdmarc=none (no From: field)\n"));
	}

	[Test]
	public void TraceShowsEachCheck()
	{
		using var dns = new Dnsmasq(DmarcZone);
		using var t = AuthDns.NewTree(dns);
		t.Run(Encoding.Latin1.GetBytes(AuthDns.Dialogue("alice@other.test", Msg.Replace("alice@from.test", "ceo@reject.test"))), ["-d"], null);
		var trace = File.ReadAllText(Directory.GetFiles(t.P("/sys/log/smtpdb")).Single());
		Assert.That(trace, Does.Contain("spf: check_host(127.0.0.2, other.test, alice@other.test, helo client.9fans.net) = pass: "));
		Assert.That(trace, Does.Contain("dkim: no signature\n"));
		Assert.That(trace, Does.Contain("dmarc: header.from=reject.test = fail: record at _dmarc.reject.test p=reject: no aligned SPF or DKIM pass\n"));
	}

	[Test]
	public void HundredSignaturesAreBounded()
	{
		using var dns = new Dnsmasq();
		using var t = AuthDns.NewTree(dns);
		var sigs = string.Concat(Enumerable.Range(0, 100).Select(i =>
			$"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=signer.test; s=s{i}; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\n"));
		var r = t.Run(AuthDns.Dialogue("alice@from.test", sigs + Msg));
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"));
		var added = AuthDns.Added(Delivered(t));
		Assert.That(Regex.Matches(added, "\tdkim=").Count, Is.InRange(1, 8), added);
		Assert.That(Regex.Matches(dns.Log, "query\\[TXT\\] s\\d+\\._domainkey").Count, Is.LessThanOrEqualTo(8));
	}

		// --- DKIM, signed by Debian's dkimpy ---

	static string Python(string script, params string[] args)
	{
		if (!File.Exists("/usr/bin/python3"))
			Assert.Ignore("needs /usr/bin/python3 with python3-dkim");
		var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
		psi.ArgumentList.Add("-c");
		psi.ArgumentList.Add(script);
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		using var p = Process.Start(psi)!;
		var o = p.StandardOutput.ReadToEndAsync();
		var e = p.StandardError.ReadToEnd();
		if (!p.WaitForExit(60_000))
			p.Kill(true);
		Assert.That(p.ExitCode, Is.Zero, e);
		return o.Result;
	}

	/// <summary>A key pair: the PEM file dkimpy signs with and the TXT record to publish.</summary>
	static (string KeyFile, string Record) NewKey(string dir, string alg)
	{
		var key = Path.Join(dir, alg + ".key");
		if (alg == "rsa") {
			using var rsa = RSA.Create(2048);
			File.WriteAllText(key, rsa.ExportRSAPrivateKeyPem());
			return (key, "v=DKIM1; k=rsa; p=" + Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo()));
		}
		Python("import sys, os; os.chdir(sys.argv[1]); import subprocess; subprocess.run(['/usr/bin/dknewkey', '--ktype', 'ed25519', 'ed25519'], check=True, capture_output=True)", dir);
		return (key, File.ReadAllText(Path.Join(dir, "ed25519.dns")).Trim());
	}

	const string SignAndSend = """
		import sys, dkim, smtplib
		port, key, sel, alg, canon, tamper = sys.argv[1:7]
		msg = (b"From: Alice <alice@signer.test>\r\nTo: bob@example.com\r\nSubject: signed\r\n"
		       b"Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nMessage-ID: <1@signer.test>\r\n\r\n"
		       b"Hello,\r\n\r\n.a line with a leading dot\r\nand  spaces  \r\n")
		c = canon.encode()
		sig = dkim.sign(msg, sel.encode(), b"signer.test", open(key, "rb").read(),
		                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
		                signature_algorithm=alg.encode(), canonicalize=(c, c))
		signed = sig + msg
		if tamper == "body":
		    signed = signed.replace(b"Hello,", b"Hello!")
		s = smtplib.SMTP("127.0.0.1", int(port), local_hostname="client.9fans.net", timeout=30)
		s.sendmail("alice@signer.test", ["bob@example.com"], signed)
		s.quit()
		""";

	[TestCase("rsa", "rsa-sha256", "relaxed", "none", "pass")]
	[TestCase("rsa", "rsa-sha256", "simple", "none", "pass")]
	[TestCase("ed25519", "ed25519-sha256", "relaxed", "none", "pass")]
	[TestCase("ed25519", "ed25519-sha256", "simple", "none", "pass")]
	[TestCase("rsa", "rsa-sha256", "relaxed", "body", "fail")]
	[TestCase("ed25519", "ed25519-sha256", "simple", "body", "fail")]
	public void DkimpySignedMessageThroughSmtplib(string keyType, string alg, string canon, string tamper, string want)
	{
		using var t = new Tree("defaultdomain example.com\ngreetdelay 0\n");
		var (key, record) = NewKey(t.Dir, keyType);
		using var dns = new Dnsmasq(
			AuthDns.Txt("sel1._domainkey.signer.test", record),
			AuthDns.Txt("_dmarc.signer.test", "v=DMARC1; p=reject"));
		t.Write("/mail/lib/smtpd.conf", $"defaultdomain example.com\ngreetdelay 0\ndnsserver {dns.Server}\n");
		using (var l = new Listening(t, "127.0.0.1"))
			Python(SignAndSend, l.Endpoint.Port.ToString(), key, "sel1", alg, canon, tamper);
		var m = Delivered(t);
		var dmarc = want == "pass" ? "dmarc=pass (p=reject dis=none)" : "dmarc=fail (p=reject dis=reject)";
		Assert.That(AuthDns.Added(m), Does.Match(
			"^Authentication-Results: example\\.com;\n" +
			"\tspf=none smtp\\.mailfrom=alice@signer\\.test;\n" +
			$"\tdkim={want}( \\([^)]*\\))? header\\.d=signer\\.test(\n\t  | )header\\.s=sel1;\n" +
			$"\t{Regex.Escape(dmarc)} header\\.from=signer\\.test\n$"));
		// the client's header and body as it sent them, after smtpd's own lines
		Assert.That(m, Does.Contain("\nDKIM-Signature: v=1; a=" + alg).And.EndWith("Hello" + (tamper == "body" ? "!" : ",") + "\n\n.a line with a leading dot\nand  spaces  \n"));
	}
}
