using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 12, outgoing: bin/upas/smtp signs what it sends with the keys of /mail/lib/dkim (dkim(6)), made by its
/// own -K; what it prints (-f) and what a server receives verify with dkimpy and OpenDKIM, whatever the size and
/// whether stdin is a file or a pipe. Keys that cannot be used never stop a delivery.
/// </summary>
[Parallelizable(ParallelScope.All)]
public class DkimSignTests
{
	const string D = Smtp.Domain;
	static readonly string[] Filter = ["-f", "-h", "example.com", D, "tcp!mx.example.net", "glenda"];

	static string Msg(string from, string body = "body line\n.dotline\n\n") =>
		$"From: {from}\nTo: bob@example.net\nSubject: test\nMessage-ID: <1@example.com>\nDate: Mon, 23 Nov 2026 23:00:00 +0000\n\n{body}";

	static byte[] L(string s) => Encoding.Latin1.GetBytes(s);

	static byte[] Change(byte[] msg, string from, string to)
	{
		var s = Encoding.Latin1.GetString(msg);
		Assert.That(s, Does.Contain(from));
		return L(s.Replace(from, to));
	}

	const string Rsa = "pass d=example.com s=r1 a=rsa-sha256";
	const string Ed = "pass d=example.com s=e1 a=ed25519-sha256";

	static string[] Want(string keys) => keys switch { "rsa" => [Rsa], "ed25519" => [Ed], _ => [Rsa, Ed] };

	static string SignedLog(string keys) => keys switch {
		"rsa" => "dkim: signed d=example.com s=r1 a=rsa-sha256",
		"ed25519" => "dkim: signed d=example.com s=e1 a=ed25519-sha256",
		_ => "dkim: signed d=example.com s=r1 a=rsa-sha256, s=e1 a=ed25519-sha256",
	};

	// ---- -f: the signed message, checked by the two verifiers ----

	[TestCase("rsa")]
	[TestCase("ed25519")]
	[TestCase("both")]
	public void FilterOutputVerifiesWithDkimpy(string keys)
	{
		using var s = new SignTree();
		s.Keys(keys);
		var r = Smtp.Run(s.T, L(Msg("Alice <alice@example.com>")), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var msg = SignWire.Unstuff(r.Stdout);
		Assert.That(SignDkimPy.Verify(s.T, msg, s.Records), Is.EqualTo(Want(keys)));
		foreach (var sig in SignWire.Signatures(msg)) {
			Assert.That(SignWire.Tag(sig, "c"), Is.EqualTo("relaxed/relaxed"));
			Assert.That(SignWire.Tag(sig, "h"), Is.EqualTo("from:from:to:subject:date:message-id"), "From over-signed");
			Assert.That(long.Parse(SignWire.Tag(sig, "t")), Is.EqualTo(DateTimeOffset.UtcNow.ToUnixTimeSeconds()).Within(60));
		}
		Assert.That(Encoding.Latin1.GetString(msg), Does.StartWith("DKIM-Signature: v=1; a=").And.Contain("\r\n\r\nbody line\r\n.dotline\r\n"));
		Assert.That(s.DkimLog(), Is.EqualTo(new[] { SignedLog(keys) }));
		// a byte of the body or of a signed field changed: no signature holds
		Assert.That(SignDkimPy.Verify(s.T, Change(msg, "body line", "body lime"), s.Records), Has.All.StartWith("fail "));
		Assert.That(SignDkimPy.Verify(s.T, Change(msg, "Subject: test", "Subject: tesT"), s.Records), Has.All.StartWith("fail "));
	}

	[TestCase("rsa")]
	[TestCase("ed25519")]
	[TestCase("both")]
	public void FilterOutputVerifiesWithOpendkim(string keys)
	{
		using var s = new SignTree();
		s.Keys(keys);
		var r = Smtp.Run(s.T, L(Msg("Alice <alice@example.com>")), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var msg = SignWire.Unstuff(r.Stdout);
		Assert.That(SignOpenDkim.Verify(s.T, msg, s.Records), Is.EqualTo((0, "")));
		var (x, err) = SignOpenDkim.Verify(s.T, Change(msg, "body line", "body lime"), s.Records);
		Assert.That((x, err.Trim()), Is.EqualTo((70, "opendkim-testmsg: dkim_eom(): Bad signature")));
	}

	// ---- deliveries: what the server received ----

	[Test]
	public void TheBytesAServerReceivedVerify()
	{
		using var s = new SignTree();
		s.Keys("both");
		using var srv = new ScriptServer();
		var r = Smtp.Run(s.T, L(Msg("Alice <alice@example.com>")), [D, srv.Dial, "glenda", "bob@example.net"], null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var got = SignWire.Unstuff(srv.Messages.Single());
		Assert.That(SignDkimPy.Verify(s.T, got, s.Records), Is.EqualTo(new[] { Rsa, Ed }));
		Assert.That(SignOpenDkim.Verify(s.T, got, s.Records).Exit, Is.EqualTo(0));
		var log = s.T.Log("smtp");
		Assert.That(log, Has.Length.EqualTo(2));
		Assert.That(log[0], Is.EqualTo(SignedLog("both")));
		Assert.That(log[1], Does.Match(@"^glenda sent \d+ bytes to bob@example.net$"));
	}

	/// <summary>A message of 5 MiB through our own smtpd (its mailer saves what it got), stdin a file (runq's D. file) or a pipe.</summary>
	[TestCase(true)]
	[TestCase(false)]
	public void ALargeMessageVerifiesThroughSmtpd(bool fromFile)
	{
		using var s = new SignTree();
		s.Keys("both");
		var body = new StringBuilder();
		for (var i = 0; body.Length < 5 << 20; i++)
			body.Append(i % 100 == 0 ? ".a line that starts with a dot\n" : $"line {i} of a large message, with some trailing blanks   \n");
		var msg = L(Msg("Alice <alice@mail.example.com>", body.ToString()));
		using var srv = new SocketServer(s.T, []);
		var dial = $"tcp!127.0.0.1!{srv.Endpoint.Port}";
		SmtpRun r;
		if (fromFile) {
			File.WriteAllBytes(s.T.P("/D.msg"), msg);
			r = s.RunFromFile(s.T.P("/D.msg"), D, dial, "glenda", "bob@example.com");
		} else
			r = Smtp.Run(s.T, msg, [D, dial, "glenda", "bob@example.com"], null, 120_000);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var cap = s.T.Captures().Single().Msg;
		var got = cap[(Array.IndexOf(cap, (byte)'\n') + 1)..];	// without smtpd's envelope line
		Assert.That(Encoding.Latin1.GetString(got), Does.EndWith("\n\n" + body));
		Assert.That(SignDkimPy.Verify(s.T, got, s.Records), Is.EqualTo(new[] { Rsa, Ed }));
	}

	// ---- which messages are signed, and as what ----

	[TestCase("a@example.com", "example.com")]
	[TestCase("a@mail.example.com", "example.com")]
	[TestCase("a@MAIL.Example.COM", "example.com")]
	[TestCase("a@deep.sub.example.com", "sub.example.com")]
	[TestCase("a@sub.example.com", "sub.example.com")]
	public void TheMostSpecificListedDomainSigns(string from, string d)
	{
		using var s = new SignTree();
		var t1 = s.Key("ed25519", "example.com", "e1", "a.pem")[0];
		var t2 = s.Key("ed25519", "sub.example.com", "e2", "b.pem")[0];
		s.Table($"{t2}\n{t1}\n");
		var r = Smtp.Run(s.T, L(Msg(from)), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var sel = d == "example.com" ? "e1" : "e2";
		Assert.That(SignDkimPy.Verify(s.T, SignWire.Unstuff(r.Stdout), s.Records), Is.EqualTo(new[] { $"pass d={d} s={sel} a=ed25519-sha256" }));
	}

	[TestCase("a@example.net")]
	[TestCase("a@notexample.com")]
	[TestCase("a@example.com.evil.org")]
	[TestCase("<>")]
	public void OtherDomainsAreSentAsBefore(string from)
	{
		using var s = new SignTree();
		var msg = L(Msg(from));
		var before = Smtp.Run(s.T, msg, Filter, null);
		Assert.That(before.Exit, Is.EqualTo(0), before.Err);
		s.Keys("both");
		var after = Smtp.Run(s.T, msg, Filter, null);
		Assert.That(after.Exit, Is.EqualTo(0), after.Err);
		Assert.That(after.Stdout, Is.EqualTo(before.Stdout), "byte for byte");
		Assert.That(s.DkimLog(), Is.Empty);
	}

	/// <summary>smtp's own header conversion (From:, Message-ID:, Date: from the envelope line) comes first: the added fields are signed.</summary>
	[Test]
	public void TheFieldsSmtpAddsAreSigned()
	{
		using var s = new SignTree();
		s.Keys("rsa");
		var r = Smtp.Run(s.T, L("From glenda Mon Nov 23 23:00:00 GMT 2026 remote from sys\nSubject: no from\n\nhi\n"), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var msg = SignWire.Unstuff(r.Stdout);
		var text = Encoding.Latin1.GetString(msg);
		Assert.That(text, Does.Match("\r\nMessage-ID: <[0-9a-f]{32}@example.com>\r\nFrom: glenda@example.com\r\nDate: Mon, 23 Nov 2026 23:00:00 \\+0000\r\nSubject: no from\r\n\r\nhi\r\n$"));
		Assert.That(SignWire.Tag(SignWire.Signatures(msg).Single(), "h"), Is.EqualTo("from:from:subject:date:message-id"));
		Assert.That(SignDkimPy.Verify(s.T, msg, s.Records), Is.EqualTo(new[] { Rsa }));
		Assert.That(SignDkimPy.Verify(s.T, Change(msg, "From: glenda@", "From: glendb@"), s.Records), Is.EqualTo(new[] { "fail d=example.com s=r1 a=rsa-sha256" }));
	}

	// ---- keys that cannot be used: delivered unsigned, said in the log ----

	[TestCase("missing", "no such file")]
	[TestCase("bad PEM", "not a PEM file")]
	[TestCase("RSA 512", "RSA key of 512 bits, fewer than 1024 (RFC 8301)")]
	[TestCase("public key", "a public key, not a private one")]
	public void AKeyThatCannotBeUsedLeavesTheMessageUnsigned(string what, string why)
	{
		using var s = new SignTree();
		s.Table("example.com k1 /mail/lib/dkim.d/k1.pem\n");
		switch (what) {
		case "bad PEM":
			s.T.Write("/mail/lib/dkim.d/k1.pem", "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n", 0x180);
			break;
		case "RSA 512": {
				using var rsa = System.Security.Cryptography.RSA.Create(512);
				s.T.Write("/mail/lib/dkim.d/k1.pem", rsa.ExportPkcs8PrivateKeyPem(), 0x180);
				break;
			}
		case "public key": {
				using var rsa = System.Security.Cryptography.RSA.Create(2048);
				s.T.Write("/mail/lib/dkim.d/k1.pem", rsa.ExportSubjectPublicKeyInfoPem(), 0x180);
				break;
			}
		}
		using var srv = new ScriptServer();
		var msg = L(Msg("alice@example.com"));
		var r = Smtp.Run(s.T, msg, [D, srv.Dial, "glenda", "bob@example.net"], null);
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var got = Encoding.Latin1.GetString(srv.Messages.Single());
		Assert.That(got, Does.StartWith("From: alice@example.com\r\n").And.Not.Contain("DKIM-Signature"));
		Assert.That(s.DkimLog(), Is.EqualTo(new[] { $"dkim: not signed for example.com: s=k1 key /mail/lib/dkim.d/k1.pem (/mail/lib/dkim:1): {why}" }));
		Assert.That(s.T.Log("smtp.fail"), Is.Empty);
	}

	[Test]
	public void OneBadKeyOfTwoStillSignsWithTheOther()
	{
		using var s = new SignTree();
		var ed = s.Key("ed25519", "example.com", "e1", "e1.pem")[0];
		s.Table($"example.com r1 /mail/lib/nosuch.pem\n{ed}\n");
		var r = Smtp.Run(s.T, L(Msg("alice@example.com")), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(SignDkimPy.Verify(s.T, SignWire.Unstuff(r.Stdout), s.Records), Is.EqualTo(new[] { Ed }));
		Assert.That(s.DkimLog(), Is.EqualTo(new[] {
			"dkim: signing for example.com without s=r1 key /mail/lib/nosuch.pem (/mail/lib/dkim:1): no such file",
			"dkim: signed d=example.com s=e1 a=ed25519-sha256",
		}));
	}

	[Test]
	public void AKeyOthersCanReadIsUsedWithAWarning()
	{
		using var s = new SignTree();
		s.Keys("ed25519");
		File.SetUnixFileMode(s.T.P("/mail/lib/example.com-e1.pem"), (UnixFileMode)0x1a4);	// 0644
		var r = Smtp.Run(s.T, L(Msg("alice@example.com")), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(SignDkimPy.Verify(s.T, SignWire.Unstuff(r.Stdout), s.Records), Is.EqualTo(new[] { Ed }));
		Assert.That(s.DkimLog(), Is.EqualTo(new[] {
			"dkim: warning: key example.com-e1.pem of example.com s=e1 is readable by group or others (mode 0644): chmod 600 it",
			"dkim: signed d=example.com s=e1 a=ed25519-sha256",
		}));
	}

	[Test]
	public void BadTableLinesAreLoggedAndTheRestUsed()
	{
		using var s = new SignTree();
		var ed = s.Key("ed25519", "example.com", "e1", "e1.pem")[0];
		s.Table($"# keys\nexample.com\n\n{ed}   # the Ed25519 key\nexa_mple.com s k.pem\nexample.com e1 other.pem\nexample.org -bad k.pem\n");
		var r = Smtp.Run(s.T, L(Msg("alice@example.com")), Filter, null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(SignDkimPy.Verify(s.T, SignWire.Unstuff(r.Stdout), s.Records), Is.EqualTo(new[] { Ed }));
		Assert.That(s.DkimLog(), Is.EqualTo(new[] {
			"dkim: /mail/lib/dkim:2: 1 field, not 3 (domain selector keyfile): line ignored",
			"dkim: /mail/lib/dkim:5: bad domain exa_mple.com: line ignored",
			"dkim: /mail/lib/dkim:6: selector e1 of example.com again (first on line 4): line ignored",
			"dkim: /mail/lib/dkim:7: bad selector -bad: line ignored",
			"dkim: signed d=example.com s=e1 a=ed25519-sha256",
		}));
	}

	[Test]
	public void AnEditedTableIsReadAgain()
	{
		using var s = new SignTree();
		s.Keys("rsa");
		var first = Smtp.Run(s.T, L(Msg("alice@example.com")), Filter, null);
		Assert.That(SignWire.Signatures(SignWire.Unstuff(first.Stdout)), Has.Length.EqualTo(1));
		s.Table("# nothing signed now\n");
		var second = Smtp.Run(s.T, L(Msg("alice@example.com")), Filter, null);
		Assert.That(SignWire.Signatures(SignWire.Unstuff(second.Stdout)), Is.Empty);
	}

	/// <summary>A pipe on stdin and no spool file to be had: nothing is read yet, so the message goes, unsigned.</summary>
	[Test]
	public void NoSpoolFileSendsUnsigned()
	{
		using var s = new SignTree();
		s.Keys("ed25519");
		var msg = L(Msg("alice@example.com"));
		var r = Smtp.Run(s.T, msg, Filter, new Dictionary<string, string> { ["TMPDIR"] = s.T.P("/nosuchdir") });
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(r.Out, Does.StartWith("From: alice@example.com\r\n").And.EndWith("\r\n\r\nbody line\r\n..dotline\r\n\r\n"));
		Assert.That(s.DkimLog(), Is.EqualTo(new[] { $"dkim: not signed for example.com: cannot create a spool file in {s.T.P("/nosuchdir")}/: No such file or directory" }));
		// from a file nothing needs spooling
		File.WriteAllBytes(s.T.P("/msg"), msg);
		var f = s.RunFromFile(s.T.P("/msg"), Filter);
		Assert.That(SignDkimPy.Verify(s.T, SignWire.Unstuff(f.Stdout), s.Records), Is.EqualTo(new[] { Ed }));
	}

	/// <summary>The tree's own table, which mk install puts in place when there is none: comments only, so nothing is signed.</summary>
	[Test]
	public void TheShippedTableIsCommentsOnly()
	{
		var shipped = File.ReadAllText(Path.Join(Repo.Dir, "mail/lib/dkim"));
		var t = Upas.Smtp.DkimTable.Parse(shipped);
		Assert.That((t.Entries.Count, t.Errors.Count), Is.EqualTo((0, 0)));
		// and the commented example lines are good lines once uncommented
		var examples = DkimTableOf(string.Join('\n', shipped.Split('\n').Where(l => l.StartsWith("#example.org", StringComparison.Ordinal)).Select(l => l[1..])));
		Assert.That((examples.Entries.Count, examples.Errors.Count), Is.EqualTo((2, 0)));
		using var root = new Tree();
		var psi = root.Prog("/bin/bash", [Path.Join(Repo.Dir, "sys/lib/upas/mktree"), root.Dir]);
		var (_, err, x) = Tree.Exec(psi, []);
		Assert.That((x, err), Is.EqualTo((0, "")));
		Assert.That(root.Read("/mail/lib/dkim"), Is.EqualTo(shipped));
		Assert.That((int)File.GetUnixFileMode(root.P("/mail/lib/dkim")), Is.EqualTo(0x1a4));
	}

	static Upas.Smtp.DkimTable DkimTableOf(string text) => Upas.Smtp.DkimTable.Parse(text);

	// ---- smtp -K ----

	[TestCase("rsa", "k=rsa", 392)]
	[TestCase("ed25519", "k=ed25519", 44)]
	public void KeyGenerationWritesA0600KeyAndPrintsTheLineAndTheRecord(string alg, string k, int p)
	{
		using var s = new SignTree();
		Directory.CreateDirectory(s.T.P("/mail/lib/dkim.d"));
		var lines = s.Key(alg, "Example.COM.", "Sel2026", "/mail/lib/dkim.d/example.com.pem");
		Assert.That(lines[0], Is.EqualTo("example.com sel2026 /mail/lib/dkim.d/example.com.pem"));
		Assert.That(lines[1], Does.Match($"^sel2026\\._domainkey\\.example\\.com\\. IN TXT \\( \"v=DKIM1; {k}; \" \"p=[A-Za-z0-9+/=]+\"( \"[A-Za-z0-9+/=]+\")* \\)$"));
		Assert.That(Regex.Matches(lines[1], "\"([^\"]*)\"").Select(m => m.Groups[1].Value.Length), Has.All.LessThanOrEqualTo(255));
		Assert.That(s.Records["sel2026._domainkey.example.com"], Does.Match($"^v=DKIM1; {k}; p=[A-Za-z0-9+/]{{{p - 2},{p}}}=*$"));
		Assert.That((int)File.GetUnixFileMode(s.T.P("/mail/lib/dkim.d/example.com.pem")), Is.EqualTo(0x180));
		Assert.That(File.ReadAllText(s.T.P("/mail/lib/dkim.d/example.com.pem")), Does.StartWith("-----BEGIN PRIVATE KEY-----\n"));
	}

	[Test]
	public void KeyGenerationNeverOverwrites()
	{
		using var s = new SignTree();
		s.T.Write("/mail/lib/old.pem", "the old key\n", 0x180);
		var r = Smtp.Run(s.T, [], ["-K", "rsa", "example.com", "s", "old.pem"], null);
		Assert.That((r.Exit, r.Out, r.Err), Is.EqualTo((1, "", $"smtp: {s.T.P("/mail/lib/old.pem")} exists: not overwritten (remove it first to make a new key)\n")));
		Assert.That(s.T.Read("/mail/lib/old.pem"), Is.EqualTo("the old key\n"));
	}

	/// <summary>A link planted by another user (nobody) where root makes a key: not followed, its target untouched.</summary>
	[TestCase(true)]
	[TestCase(false)]
	public void KeyGenerationRefusesAPlantedLink(bool dangling)
	{
		if (Environment.UserName != "root")
			Assert.Ignore("needs root, to plant the link as nobody");
		using var s = new SignTree();
		var dir = s.T.P("/keys");
		Directory.CreateDirectory(dir);
		File.SetUnixFileMode(dir, (UnixFileMode)0x3ff);	// 1777, as a shared directory might be
		var victim = s.T.P("/victim");
		if (!dangling)
			s.T.Write("/victim", "root's file\n", 0x1a4);
		QueueSecurityTests.AsNobody($"ln -s '{victim}' '{dir}/k.pem'");
		var r = Smtp.Run(s.T, [], ["-K", "ed25519", "example.com", "s", "/keys/k.pem"], null);
		Assert.That((r.Exit, r.Out, r.Err), Is.EqualTo((1, "", $"smtp: {dir}/k.pem exists: not overwritten (remove it first to make a new key)\n")));
		Assert.That(File.Exists(victim), Is.EqualTo(!dangling), "nothing created through the link");
		if (!dangling)
			Assert.That(s.T.Read("/victim"), Is.EqualTo("root's file\n"));
	}

	[TestCase(new[] { "dsa", "example.com", "s", "k.pem" }, "usage: smtp -K rsa|ed25519 domain selector keyfile\n")]
	[TestCase(new[] { "rsa", "example.com", "s" }, "usage: smtp -K rsa|ed25519 domain selector keyfile\n")]
	[TestCase(new[] { "rsa", "exa mple.com", "s", "k.pem" }, "smtp: bad domain exa mple.com\n")]
	[TestCase(new[] { "rsa", "example.com", "s_1", "k.pem" }, "smtp: bad selector s_1\n")]
	[TestCase(new[] { "rsa", "example.com", "s", "my key.pem" }, "smtp: key file name my key.pem: a blank, # or control character cannot be written in /mail/lib/dkim\n")]
	[TestCase(new[] { "rsa", "example.com", "s", "/nosuchdir/k.pem" }, "smtp: cannot create TREE/nosuchdir/k.pem: No such file or directory\n")]
	public void KeyGenerationRefusesBadArguments(string[] args, string err)
	{
		using var s = new SignTree();
		var r = Smtp.Run(s.T, [], ["-K", .. args], null);
		Assert.That((r.Exit, r.Out, r.Err), Is.EqualTo((1, "", err.Replace("TREE", s.T.Dir))));
	}
}
