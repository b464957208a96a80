using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>bin/upas/smtp as a process: the -f filter, the dialogue against scripted servers, reports, logs, exit status.</summary>
[Parallelizable(ParallelScope.All)]
public class SmtpClientTests
{
	const string D = Smtp.Domain;			// .cs.bell-labs.com
	const string Me = "gnot.cs.bell-labs.com";	// site=gnot + D
	static readonly Regex MsgId = new("Message-ID: <[0-9a-f]{32}@");

	static string Id(string s) => MsgId.Replace(s, "Message-ID: <ID@");
	static string Crlf(string s) => Tree.Crlf(s);

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		return t;
	}

	// ---- -f, against the reference transcripts (smtpd-transcripts.md, "upas/smtp -f") ----

	static readonly Dictionary<string, string> Plain = new() { ["site"] = "" };	// system name testhost, as recorded

	[TestCase("From example.org!alice Mon Nov 23 23:00:00 GMT 2026 remote from sys\nSubject: test\nTo: bob, example.com!carol, dave@example.net\nCc: Eve <eve>\n\nbody line\n.dotline\nlast\n",
		new[] { ".example.com", "tcp!mx.example.com", "sender@example.com", "rcpt@example.org" },
		"Message-ID: <ID@testhost.example.com>\nFrom: sender@example.com\nDate: Mon, 23 Nov 2026 23:00:00 +0000\nSubject: test\nTo: bob@testhost.example.com, carol@example.com, dave@example.net\nCc: Eve <eve@testhost.example.com>\n\nbody line\n..dotline\nlast\n")]
	[TestCase("From alice Mon Nov 23 23:00:00 GMT 2026\nSubject: test\n\nbody\n",
		new[] { ".example.com", "tcp!mx.example.com", "sender@example.com", "rcpt@example.org" },
		"Message-ID: <ID@testhost.example.com>\nFrom: sender@example.com\nSubject: test\n\nbody\n")]
	[TestCase("From: Alice <alice>\nDate: Mon, 23 Nov 2026 10:00:00 -0500\nMessage-ID: <abc@x>\nSubject: keep\n\nbody\n",
		new[] { ".example.com", "tcp!mx", "example.org!alice", "bob" },
		"From: Alice <alice@testhost.example.com>\nDate: Mon, 23 Nov 2026 10:00:00 -0500\nMessage-ID: <abc@x>\nSubject: keep\n\nbody\n")]
	[TestCase("just a body line\nsecond\n",
		new[] { ".example.com", "tcp!mx.example.com", "sender@example.com", "rcpt@example.org" },
		"Message-ID: <ID@testhost.example.com>\nFrom: sender@example.com\n\njust a body line\nsecond\n")]
	[TestCase("Subject: h\n\nb\n",
		new[] { "-h", "mail.example.com", ".example.com", "tcp!mx", "alice", "bob" },
		"Message-ID: <ID@mail.example.com>\nFrom: alice@mail.example.com\nSubject: h\n\nb\n")]
	// smtp.md §8.4 and the product's choices (CR LF input is LF; a last line without LF is kept)
	[TestCase("To: @a.com:u@b.com, a.com!b.com!c\n\nx\n", new[] { ".example.com", "tcp!mx", "/dev/null" },
		"Message-ID: <ID@testhost.example.com>\nFrom: Postmaster@testhost.example.com\nTo: <@a.com:u@b.com>, <@a.com:c@b.com>\n\nx\n")]
	[TestCase("X-Foo bar\nSubject: s\n\n.\n..\n", new[] { ".example.com", "tcp!mx", "u@example.org" },
		"Message-ID: <ID@testhost.example.com>\nFrom: u@example.org\nBadHeader: X-Foo bar\nSubject: s\n\n..\n...\n")]
	[TestCase("Subject: crlf\r\nBcc: x\r\n\r\nline\r\nbare\rcr\r\n", new[] { ".example.com", "tcp!mx", "u@example.org" },
		"Message-ID: <ID@testhost.example.com>\nFrom: u@example.org\nSubject: crlf\nBcc: x@testhost.example.com\n\nline\nbare\rcr\n")]
	[TestCase("Subject: nolf", new[] { ".example.com", "tcp!mx", "u@example.org" },
		"Message-ID: <ID@testhost.example.com>\nFrom: u@example.org\n\nSubject: nolf")]
	public void Filter(string input, string[] args, string want)
	{
		using var t = NewTree();
		var r = Smtp.Run(t, Encoding.Latin1.GetBytes(input), ["-f", .. args], Plain);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(MsgId.IsMatch(r.Out) || !want.Contains("Message-ID: <ID@"), Is.True, r.Out);
		Assert.That(Id(r.Out), Is.EqualTo(Crlf(want)));
	}

	[Test]
	public void FromCarriesTheFullNameOfALocalSender()
	{
		// root's GECOS name, whatever this machine calls it; a user unknown here gets none
		var gecos = File.ReadAllLines("/etc/passwd").First(l => l.StartsWith("root:")).Split(':')[4].Split(',')[0];
		using var t = NewTree();
		var r = Smtp.Run(t, "x\n", "-f", "-h", "mail.example.com", ".example.com", "tcp!mx", "root");
		var want = gecos.Length > 0 ? $"From: \"{gecos}\" <root@mail.example.com>" : "From: root@mail.example.com";
		Assert.That(r.Out.Split("\r\n")[1], Is.EqualTo(want));
		var u = Smtp.Run(t, "x\n", "-f", "-h", "mail.example.com", ".example.com", "tcp!mx", "nosuchuser9");
		Assert.That(u.Out.Split("\r\n")[1], Is.EqualTo("From: nosuchuser9@mail.example.com"));
	}

	[Test]
	public void FilterMessageIdsDiffer()
	{
		using var t = NewTree();
		var a = Smtp.Run(t, "x\n", "-f", ".example.com", "tcp!mx", "u");
		var b = Smtp.Run(t, "x\n", "-f", ".example.com", "tcp!mx", "u");
		Assert.That(a.Out, Is.Not.EqualTo(b.Out));
	}

	// ---- the dialogue ----

	const string Full = "Message-ID: <a@b>\nFrom: alice@cs.bell-labs.com\nTo: bob@example.org\nSubject: hi\n\nbody\n.dot\n";

	[Test]
	public void Delivers()
	{
		using var t = NewTree();
		using var s = new ScriptServer();
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(r.Err, Is.Empty);
		Assert.That(s.Log, Is.EqualTo(new[] { "EHLO " + Me, $"MAIL FROM:<alice@{Me}>", "RCPT TO:<bob@example.org>", "DATA", "QUIT" }));
		Assert.That(Encoding.Latin1.GetString(s.Messages.Single()), Is.EqualTo(Crlf(Full.Replace("\n.dot", "\n..dot"))));
		Assert.That(t.Log("smtp"), Is.EqualTo(new[] { $"alice sent {Full.Length} bytes to bob@example.org" }));
		Assert.That(t.Read("/sys/log/smtp.fail"), Is.Empty);
	}

	[Test]
	public void AddsHeadersAndTo()
	{
		using var t = NewTree();
		using var s = new ScriptServer();
		var r = Smtp.Run(t, "Subject: s\n\nb", D, s.Dial, "example.org!kremvax!alice", "bob", "example.org!carol", "a.com!b.com!c");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[1..4], Is.EqualTo(new[] { "MAIL FROM:<kremvax!alice@example.org>", "RCPT TO:<bob@127.0.0.1>", "RCPT TO:<carol@example.org>" }));
		Assert.That(s.Log[4], Is.EqualTo("RCPT TO:<@a.com:c@b.com>"));
		var m = Id(Encoding.Latin1.GetString(s.Messages.Single()));
		Assert.That(m, Is.EqualTo(Crlf($"Message-ID: <ID@{Me}>\nFrom: kremvax!alice@example.org\nTo: bob@127.0.0.1, carol@example.org, @a.com:c@b.com\nSubject: s\n\nb\n")));
	}

	[Test]
	public void NullSender()
	{
		using var t = NewTree();
		using var s = new ScriptServer();
		var r = Smtp.Run(t, "x\n", D, s.Dial, "/dev/null", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[1], Is.EqualTo("MAIL FROM:<>"));
		Assert.That(Encoding.Latin1.GetString(s.Messages.Single()), Does.Contain($"\r\nFrom: Postmaster@{Me}\r\n"));
	}

	[Test]
	public void EhloRefusedFallsBackToHelo()
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "502 5.5.1 what is EHLO" : null };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[..2], Is.EqualTo(new[] { "EHLO " + Me, "HELO " + Me }));
	}

	[Test]
	public void EhloTemporaryIsRetryWithoutHelo()
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "421-4.3.0 busy\r\n421 4.3.0 come back later" : null };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(2));
		Assert.That(r.StatusLine, Is.EqualTo("Retry, Temporary Failure"));
		Assert.That(s.Log, Is.EqualTo(new[] { "EHLO " + Me, "QUIT" }));
		Assert.That(Tree.NoDates(r.Err), Is.EqualTo($"DATE connect to {s.Dial}:\n421-4.3.0 busy\n421 4.3.0 come back later\nRetry, Temporary Failure\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {s.Dial} failed: 421-4.3.0 busy 421 4.3.0 come back later" }));
	}

	[TestCase("554 5.7.1 go away", 1)]
	[TestCase("421 4.3.2 not now", 2)]
	[TestCase("hello there", 2)]
	public void Greeting(string greeting, int exit)
	{
		using var t = NewTree();
		using var s = new ScriptServer { Greeting = greeting };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(exit));
		Assert.That(s.Log, Is.EqualTo(new[] { "QUIT" }));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {s.Dial} failed: {greeting}" }));
	}

	[Test]
	public void AvoidantSendsNoopFirst()
	{
		using var t = NewTree();
		using var s = new ScriptServer();
		var r = Smtp.Run(t, Full, "-A", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[..2], Is.EqualTo(new[] { "NOOP", "EHLO " + Me }));
	}

	static Func<string, string?> Rcpts(Dictionary<string, string> replies) =>
		c => c.StartsWith("RCPT TO:<") && replies.TryGetValue(c[9..^1], out var a) ? a : null;

	[Test]
	public void OnePermanentRecipientDeliversToTheOthersAndFails()
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = Rcpts(new() { ["b@x.org"] = "550 5.1.1 no such user", ["c@x.org"] = "450 4.2.1 mailbox busy" }) };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "a@x.org", "b@x.org", "c@x.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(s.Messages, Has.Count.EqualTo(1));
		Assert.That(Tree.NoDates(r.Err), Is.EqualTo($"DATE connect to {s.Dial}:\n  mail to b@x.org failed: 550 5.1.1 no such user\n  mail to c@x.org failed: 450 4.2.1 mailbox busy\nPermanent Failure\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] {
			$"delivery to b@x.org at {s.Dial} failed: 550 5.1.1 no such user",
			$"delivery to c@x.org at {s.Dial} failed: 450 4.2.1 mailbox busy" }));
		Assert.That(t.Log("smtp"), Is.EqualTo(new[] { $"alice sent {Full.Length} bytes to a@x.org, b@x.org, c@x.org" }));
	}

	[Test]
	public void OneTemporaryRecipientSendsNothing()
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = Rcpts(new() { ["b@x.org"] = "450 4.2.1 mailbox busy" }) };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "a@x.org", "b@x.org");
		Assert.That(r.Exit, Is.EqualTo(2));
		Assert.That(s.Log, Does.Not.Contain("DATA"));
		Assert.That(s.Log[^1], Is.EqualTo("QUIT"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {s.Dial} failed: 450 4.2.1 mailbox busy" }));
		Assert.That(t.Read("/sys/log/smtp"), Is.Empty);
	}

	[Test]
	public void EveryRecipientRefused()
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = c => c.StartsWith("RCPT") ? "550 5.1.1 unknown" : null };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "a@x.org", "b@x.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(s.Log, Does.Not.Contain("DATA"));
	}

	[TestCase("550 5.1.1 unknown", 0)]	// one valid, the worst is not Retry
	[TestCase("450 4.1.1 try later", 2)]
	public void Ping(string second, int exit)
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = Rcpts(new() { ["b@x.org"] = second }) };
		var r = Smtp.Run(t, "", "-p", D, s.Dial, "/dev/null", "a@x.org", "b@x.org");
		Assert.That(r.Exit, Is.EqualTo(exit), r.Err);
		Assert.That(s.Log, Is.EqualTo(new[] { "EHLO " + Me, "MAIL FROM:<>", "RCPT TO:<a@x.org>", "RCPT TO:<b@x.org>", "QUIT" }));
		Assert.That(t.Read("/sys/log/smtp.fail"), exit == 0 ? Is.Empty : Does.Contain($"ping to {s.Dial} failed: {second}"));
	}

	[TestCase("MAIL", "553 5.1.8 bad sender", 1)]
	[TestCase("MAIL", "451 4.1.8 sender domain check failed", 2)]
	[TestCase("DATA", "554 5.5.1 no valid recipients", 1)]
	[TestCase("DATA", "451 4.3.0 later", 2)]
	[TestCase("RCPT", "<close>", 2)]
	public void Failures(string verb, string answer, int exit)
	{
		using var t = NewTree();
		using var s = new ScriptServer { Answer = c => c.StartsWith(verb) ? answer : null };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(exit));
		Assert.That(s.Messages, Is.Empty);
		var want = answer == "<close>" ? "connection closed unexpectedly by remote system" : answer;
		Assert.That(t.Log("smtp.fail")[0], Is.EqualTo($"delivery to {s.Dial} failed: {want}"));
	}

	[TestCase("554 5.6.0 content refused", 1)]
	[TestCase("452 4.3.1 disk full", 2)]
	public void FinalReply(string answer, int exit)
	{
		using var t = NewTree();
		using var s = new ScriptServer { DataReply = answer };
		var r = Smtp.Run(t, Full, D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(exit));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {s.Dial} failed: {answer}" }));
		Assert.That(t.Read("/sys/log/smtp"), Is.Empty);
	}

	[Test]
	public void SilentServerTimesOutAsRetry()
	{
		// the alarm's unit is 10 s under -p: a server that never greets is given 10 units (smtp.md §10)
		using var t = NewTree();
		using var s = new ScriptServer { Greeting = null };
		var sw = System.Diagnostics.Stopwatch.StartNew();
		var r = Smtp.Run(t, Encoding.Latin1.GetBytes(""), ["-p", D, s.Dial, "alice", "bob@example.org"], null, limitMs: 150_000);
		Assert.That(sw.Elapsed.TotalSeconds, Is.InRange(95, 140));
		Assert.That(r.Exit, Is.EqualTo(2));
		Assert.That(r.Err, Is.EqualTo($"smtp timeout: connection to {s.Dial} timed out\nRetry, Temporary Failure\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"interrupt: {s.Dial}: alarm" }));
	}

	[Test]
	public void ConnectionRefusedIsRetry()
	{
		using var t = NewTree();
		var dial = $"tcp!127.0.0.1!{Smtp.FreePort()}";
		var r = Smtp.Run(t, Full, D, dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(2));
		Assert.That(r.Err, Is.EqualTo($"smtp: connection refused ({dial})\nRetry, Temporary Failure\n"));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"connection refused ({dial})" }));
	}

	[TestCase("tcp![10.1.2.3]")]
	[TestCase("tcp![::1]!25")]
	public void AddressLiteralRefused(string dial)
	{
		using var t = NewTree();
		var r = Smtp.Run(t, Full, D, dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {dial} failed: illegal address" }));
	}

	[Test]
	public void UnknownServiceIsPermanent()
	{
		using var t = NewTree();
		var r = Smtp.Run(t, Full, D, "tcp!127.0.0.1!nosuchservice", "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { "can't translate service nosuchservice (tcp!127.0.0.1!nosuchservice)" }));
	}

	[Test]
	public void Usage()
	{
		using var t = NewTree();
		const string usage = "usage: smtp [-aAdfiops] [-b busted-mx] [-g gw] [-h host] [-u user] [.domain] net!host[!service] sender rcpt-list\n"
			+ "       smtp -K rsa|ed25519 domain selector keyfile\nPermanent Failure\n";
		foreach (var args in new[] { new string[0], ["tcp!x"], ["tcp!x", "alice"], ["-Z", "tcp!x", "a", "b"], ["-h"] }) {
			var r = Smtp.Run(t, "", args);
			Assert.That((r.Exit, r.Err), Is.EqualTo((1, usage)), string.Join(" ", args));
		}
		var many = Enumerable.Range(0, 101).SelectMany(i => new[] { "-b", $"mx{i}" }).Concat(["tcp!x", "a", "b"]);
		var m = Smtp.Run(t, Encoding.Latin1.GetBytes(""), many, null);
		Assert.That((m.Exit, m.Err), Is.EqualTo((1, "smtp: more than 100 busted mxs given\nmore than 100 busted mxs given\n")));
	}

	// ---- AUTH ----

	const string Key = "key proto=pass service=smtp server=127.0.0.1 user=glenda !password=x\n";
	static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

	[Test]
	public void AuthPlain()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key);
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "250-mx\r\n250 AUTH PLAIN" : c.StartsWith("AUTH") ? "235 2.7.0 ok" : null };
		var r = Smtp.Run(t, Full, "-d", "-a", "-i", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[1], Is.EqualTo("AUTH PLAIN " + B64("\0glenda\0x")));
		Assert.That(r.Err, Does.Not.Contain(B64("\0glenda\0x")));
		Assert.That(r.Err, Does.Contain("AUTH PLAIN <credentials>"));
	}

	[Test]
	public void AuthLoginPreferredAndEncodedRight()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key.Replace("user=glenda", "user=ab"));
		var step = 0;
		using var s = new ScriptServer {
			Answer = c => {
				if (c.StartsWith("EHLO"))
					return "250-mx\r\n250-AUTH=PLAIN LOGIN\r\n250 AUTH PLAIN LOGIN";
				if (c == "AUTH LOGIN") {
					step = 1;
					return "334 VXNlcm5hbWU6";
				}
				if (step == 1) {
					step = 2;
					return "334 UGFzc3dvcmQ6";
				}
				if (step == 2) {
					step = 3;
					return "235 ok";
				}
				return null;
			},
		};
		var r = Smtp.Run(t, Full, "-d", "-a", "-i", "-u", "ab", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[1..4], Is.EqualTo(new[] { "AUTH LOGIN", "YWI=", "eA==" }));
		Assert.That(r.Err, Does.Not.Contain("eA=="));
	}

	[TestCase("535 5.7.8 bad credentials", 1)]
	[TestCase("454 4.7.0 try later", 2)]
	public void AuthFailure(string answer, int exit)
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key);
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "250 AUTH PLAIN" : c.StartsWith("AUTH") ? answer : null };
		var r = Smtp.Run(t, Full, "-a", "-i", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(exit));
		Assert.That(s.Log.Any(l => l.StartsWith("MAIL")), Is.False);
	}

	[Test]
	public void AuthWithoutKeyIsPermanent()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key);
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "250 AUTH PLAIN" : null };
		var r = Smtp.Run(t, Full, "-a", "-i", "-u", "bob", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.Contain("no factotum key proto=pass service=smtp server=127.0.0.1 user=bob"));
	}

	[Test]
	public void AuthNotInClearWithoutI()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key);
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "250 AUTH PLAIN" : null };
		var r = Smtp.Run(t, Full, "-a", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log.Any(l => l.StartsWith("AUTH")), Is.False);
	}

	[Test]
	public void NoSupportedAuthMethod()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key);
		using var s = new ScriptServer { Answer = c => c.StartsWith("EHLO") ? "250 AUTH CRAM-MD5" : null };
		var r = Smtp.Run(t, Full, "-a", "-i", D, s.Dial, "alice", "bob@example.org");
		Assert.That((r.Exit, r.StatusLine), Is.EqualTo((1, "No supported AUTH method")));
	}

	// ---- STARTTLS ----

	static ScriptServer TlsServer(out string sha1, out string sha256)
	{
		var s = new ScriptServer { Cert = Smtp.Cert() };
		sha1 = s.Cert.GetCertHashString();
		sha256 = Convert.ToHexString(SHA256.HashData(s.Cert.RawData));
		return s;
	}

	[Test]
	public void StartTlsWithoutThumbprintFile()
	{
		using var t = NewTree();
		using var s = TlsServer(out var sha1, out _);
		var r = Smtp.Run(t, Full, "-s", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.Contain(t.P("/sys/lib/tls/smtp")).And.Contain("-o").And.Contain("x509 sha1=" + sha1));
		Assert.That(s.Log.Any(l => l.StartsWith("MAIL")), Is.False);
	}

	[Test]
	public void StartTlsUnknownCertAcceptedWithO()
	{
		using var t = NewTree();
		using var s = TlsServer(out _, out _);
		var r = Smtp.Run(t, Full, "-s", "-o", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[..4], Is.EqualTo(new[] { "EHLO " + Me, "STARTTLS", "<tls>", "EHLO " + Me }));
		Assert.That(t.Log("smtp"), Is.EqualTo(new[] { "started TLS to 127.0.0.1", $"alice sent {Full.Length} bytes to bob@example.org" }));
		Assert.That(s.Messages, Has.Count.EqualTo(1));
	}

	[TestCase("x509 sha1={sha1lower} cn=mx.example.org\n", null, null, true)]
	[TestCase("x509 sha256={sha256}\n", null, null, true)]
	[TestCase("# trusted\n#include /sys/lib/tls/mail\n", "x509 sha1={sha1}\n", null, true)]
	[TestCase("x509 sha1={sha1}\n", null, "x509 sha1={sha1}\n", false)]
	[TestCase("x509 sha1=0000000000000000000000000000000000000000\n", null, null, false)]
	public void StartTlsThumbprints(string smtp, string? mail, string? exclude, bool ok)
	{
		using var t = NewTree();
		using var s = TlsServer(out var sha1, out var sha256);
		string X(string v) => v.Replace("{sha1lower}", sha1.ToLowerInvariant()).Replace("{sha1}", sha1).Replace("{sha256}", sha256);
		t.Write("/sys/lib/tls/smtp", X(smtp));
		if (mail is not null)
			t.Write("/sys/lib/tls/mail", X(mail));
		if (exclude is not null)
			t.Write("/sys/lib/tls/smtp.exclude", X(exclude));
		var r = Smtp.Run(t, Full, "-s", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(ok ? 0 : 1), r.Err);
		if (ok)
			Assert.That(t.Log("smtp")[0], Is.EqualTo("started TLS to 127.0.0.1"));
		else {
			Assert.That(t.Log("smtp"), Is.EqualTo(new[] { $"remote cert. has bad thumbprint: x509 sha1={sha1} server=127.0.0.1" }));
			Assert.That(s.Log.Any(l => l.StartsWith("MAIL")), Is.False);
		}
	}

	[Test]
	public void StartTlsRefusedIsPermanent()
	{
		using var t = NewTree();
		using var s = TlsServer(out _, out _);
		s.Answer = c => c == "STARTTLS" ? "454 4.7.0 TLS not available" : null;
		var r = Smtp.Run(t, Full, "-s", "-o", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(1));
	}

	[Test]
	public void AuthAfterStartTls()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", Key);
		using var s = TlsServer(out _, out _);
		var tls = false;
		s.Answer = c => {
			if (c == "STARTTLS")
				tls = true;
			else if (c.StartsWith("EHLO") && tls)
				return "250-mx\r\n250 AUTH PLAIN";
			else if (c.StartsWith("AUTH"))
				return "235 ok";
			return null;
		};
		var r = Smtp.Run(t, Full, "-a", "-o", D, s.Dial, "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(s.Log[..6], Is.EqualTo(new[] { "EHLO " + Me, "STARTTLS", "<tls>", "EHLO " + Me, "AUTH PLAIN " + B64("\0glenda\0x"), $"MAIL FROM:<alice@{Me}>" }));
	}

	// ---- size ----

	[Test]
	public void FiftyMegabytesInBoundedMemory()
	{
		if (!File.Exists("/usr/bin/time"))
			Assert.Ignore("/usr/bin/time is not installed");
		using var t = NewTree();
		using var s = new ScriptServer { KeepMessages = false };
		var file = t.P("/big");
		const int size = 50 << 20;
		using (var f = new BufferedStream(File.Create(file), 1 << 16)) {
			f.Write("Subject: big\n\n"u8);
			var line = Encoding.Latin1.GetBytes(new string('x', 99) + "\n");
			for (var n = 0; n < size; n += line.Length)
				f.Write(line);
		}
		var psi = Smtp.Start(t, ["-c", $"exec /usr/bin/time -f 'maxrss %M' {Repo.Bin("smtp")} {D} {s.Dial} alice bob@example.org < {file}"]);
		psi.FileName = "/bin/sh";
		using var p = Process.Start(psi)!;
		var err = p.StandardError.ReadToEndAsync();
		Assert.That(p.WaitForExit(120_000), Is.True);
		Assert.That(p.ExitCode, Is.EqualTo(0), err.Result);
		var rss = long.Parse(Regex.Match(err.Result, @"maxrss (\d+)").Groups[1].Value);
		Assert.That(rss, Is.LessThan(100_000), "peak RSS in KiB");
		Assert.That(Interlocked.Read(ref s.Received), Is.GreaterThan((long)size));
	}
}
