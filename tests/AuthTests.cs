using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>
/// AUTH PLAIN, LOGIN and CRAM-MD5 (smtpd.md §9, decisions #8 and #17) against /mail/lib/smtpd.keys: every reply,
/// the key file and its syntax, -p and -a, relaying under -f, the failure pacing, and that no secret ever
/// reaches the log or a -d trace.
/// </summary>
[NonParallelizable] // KeysAreReReadInProcess pins Root.Dir
public class AuthTests
{
	const string Password = "s3cret-Pa55";
	const string Keys = "key proto=pass service=smtp user=glenda !password=" + Password + "\n";
	const string Ehlo = "EHLO client.9fans.net\r\n";
	const string Tx = "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: t\r\n\r\nbody\r\n.\r\n";

	const string Ok = "235 2.0.0 Authentication successful";
	const string Failed = "535 5.7.1 Authentication failed";
	const string NeedTls = "538 5.7.1 Encryption required for requested authentication mechanism";
	const string Cancelled = "501 5.7.0 Authentication cancelled";
	const string BadBase64 = "501 5.5.4 Cannot decode base64";
	const string Username = "334 VXNlcm5hbWU6";
	const string PasswordPrompt = "334 UGFzc3dvcmQ6";

	internal static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

	internal static string Plain(string user, string pass, string authzid = "") => B64($"{authzid}\0{user}\0{pass}");

	/// <summary>The CRAM-MD5 response line to a "334 base64(challenge)" reply.</summary>
	internal static string CramResponse(string reply, string user, string secret, bool upper = false)
	{
		Assert.That(reply, Does.StartWith("334 "));
		var challenge = Encoding.ASCII.GetString(Convert.FromBase64String(reply[4..]));
		Assert.That(challenge, Does.Match(@"^<[0-9a-f]+\.[0-9a-f]+@example\.com>$"), "the challenge's form (smtpd.md §9)");
		var digest = Convert.ToHexStringLower(HMACMD5.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(challenge)));
		return B64($"{user} {(upper ? digest.ToUpperInvariant() : digest)}");
	}

	/// <summary>A tree whose smtpd.keys holds keys, mode 600.</summary>
	static Tree KeyTree(string keys = Keys)
	{
		var t = new Tree();
		t.Write("/mail/lib/smtpd.keys", keys, 0x180);
		return t;
	}

	/// <summary>smtpd on pipes with a line client, past the greeting.</summary>
	static Client Open(Tree t, params string[] flags)
	{
		var p = Process.Start(t.Start(flags))!;
		_ = p.StandardError.ReadToEndAsync();
		var c = new Client(p);
		Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
		return c;
	}

	/// <summary>The replies after the EHLO reply of a pipe run.</summary>
	static List<string> After(RunResult r) => Wire.AfterEhlo(Wire.Lines(r.Out));

	static List<string> EhloReply(RunResult r)
	{
		var l = Wire.Lines(r.Out);
		var first = l.FindIndex(x => x.StartsWith("250-", StringComparison.Ordinal));
		var last = l.FindIndex(first, x => x.StartsWith("250 ", StringComparison.Ordinal));
		return l[first..(last + 1)];
	}

	// ---- what EHLO offers

	[Test]
	public void WithoutDashPOnlyCramMd5IsOffered()
	{
		using var t = KeyTree();
		var ehlo = EhloReply(t.Run(Ehlo));
		Assert.That(ehlo[^1], Is.EqualTo("250 AUTH CRAM-MD5"));
		Assert.That(ehlo.Where(l => l.Contains("AUTH", StringComparison.Ordinal)), Has.Exactly(1).Items);
		Assert.That(ehlo, Has.None.Contains("STARTTLS"), "no -c, no STARTTLS");
	}

	[Test]
	public void DashPOffersPlainAndLogin()
	{
		using var t = KeyTree();
		Assert.That(EhloReply(t.Run(Ehlo, "-p"))[^1], Is.EqualTo("250 AUTH CRAM-MD5 PLAIN LOGIN"));
	}

	[Test]
	public void AuthIsOfferedWithoutAnyKeyFile()
	{
		using var t = new Tree();
		Assert.That(EhloReply(t.Run(Ehlo))[^1], Is.EqualTo("250 AUTH CRAM-MD5"));
	}

	// ---- PLAIN and LOGIN need -p (or TLS)

	[TestCase("AUTH PLAIN")]
	[TestCase("AUTH LOGIN")]
	[TestCase("AUTH PLAIN {0}")]
	[TestCase("AUTH LOGIN Z2xlbmRh")]
	[TestCase("auth plain")]
	public void PlainAndLoginNeedEncryption(string line)
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + string.Format(System.Globalization.CultureInfo.InvariantCulture, line, Plain("glenda", Password)) + "\r\nQUIT\r\n");
		Assert.That(After(r), Is.EqualTo(new[] { NeedTls, "221 2.0.0 Successful termination" }));
		Assert.That(r.Exit, Is.EqualTo(0));
	}

	// ---- PLAIN

	[Test]
	public void PlainWithInitialResponse()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", Password)}\r\nQUIT\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Ok, "221 2.0.0 Successful termination" }));
		Assert.That(t.Log(), Is.EqualTo(new[] {
			"ehlo from 127.0.0.2 as client.9fans.net",
			"auth(PLAIN, (protected)) from client.9fans.net",
		}));
	}

	[Test]
	public void PlainWithoutInitialResponseGetsAnEmptyChallenge()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN\r\n{Plain("glenda", Password)}\r\nQUIT\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { "334 ", Ok, "221 2.0.0 Successful termination" }));
		Assert.That(r.Out, Does.Contain("\r\n334 \r\n"), "334, a space, CR LF");
	}

	[Test]
	public void TrailingBlanksAfterTheMechanism()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN \t\r\n{Plain("glenda", Password)}\r\nQUIT\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { "334 ", Ok, "221 2.0.0 Successful termination" }));
	}

	[Test]
	public void PlainIgnoresTheAuthorisationIdentity()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", Password, authzid: "ken")}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Ok }));
	}

	[TestCase("glenda", "wrong")]
	[TestCase("glenda", "")]
	[TestCase("ken", Password)]
	[TestCase("Glenda", Password)]
	[TestCase("glenda", Password + " ")]
	public void PlainWithWrongCredentialsFails(string user, string pass)
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain(user, pass)}\r\nMAIL FROM:<alice@9fans.net>\r\n", "-p", "-a");
		Assert.That(After(r), Is.EqualTo(new[] { Failed, "530 5.7.0 Authentication required" }));
		Assert.That(t.Log()[^1], Does.StartWith("authentication failed: "));
	}

	[Test]
	public void PlainWithoutTheTwoNulsFails()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {B64("glenda " + Password)}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Failed }));
		Assert.That(t.Log()[^1], Is.EqualTo("authentication failed: malformed PLAIN response"));
	}

	[Test]
	public void PlainEqualsSignIsAnEmptyResponse()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + "AUTH PLAIN =\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Failed }));
	}

	// ---- LOGIN

	[Test]
	public void LoginAsksForUserAndPassword()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH LOGIN\r\n{B64("glenda")}\r\n{B64(Password)}\r\nQUIT\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Username, PasswordPrompt, Ok, "221 2.0.0 Successful termination" }));
		Assert.That(t.Log(), Does.Contain("auth(LOGIN, (protected)) from client.9fans.net"));
	}

	[Test]
	public void LoginWithInitialResponseTakesItAsTheUser()
	{
		// Bell Labs smtpd crashed here (decisions #8)
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH LOGIN {B64("glenda")}\r\n{B64(Password)}\r\nQUIT\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { PasswordPrompt, Ok, "221 2.0.0 Successful termination" }));
		Assert.That(r.Exit, Is.EqualTo(0));
	}

	[Test]
	public void LoginWithWrongPasswordFails()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH LOGIN {B64("glenda")}\r\n{B64("nope")}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { PasswordPrompt, Failed }));
		Assert.That(t.Log()[^1], Is.EqualTo("authentication failed: wrong password for glenda"));
	}

	// ---- CRAM-MD5

	[TestCase(false)]
	[TestCase(true)]
	public void CramMd5WithoutDashP(bool upperCaseDigest)
	{
		using var t = KeyTree();
		using var c = Open(t);
		Assert.That(c.Ask("EHLO client.9fans.net"), Does.EndWith("250 AUTH CRAM-MD5"));
		var ch = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(CramResponse(ch, "glenda", Password, upperCaseDigest)), Is.EqualTo(Ok));
		Assert.That(c.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!alice"));
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(c.Exit(), Is.EqualTo(0));
		Assert.That(t.Log(), Does.Contain("auth(CRAM-MD5, (protected)) from client.9fans.net"));
	}

	[Test]
	public void CramMd5ChallengesDiffer()
	{
		using var t = KeyTree();
		var seen = new HashSet<string>();
		for (var i = 0; i < 3; i++) {
			using var c = Open(t);
			var ch = c.Ask("AUTH CRAM-MD5");
			CramResponse(ch, "glenda", Password); // checks the form
			Assert.That(seen.Add(ch), Is.True, "a challenge came twice: " + ch);
		}
	}

	[Test]
	public void CramMd5IgnoresAnInitialResponse()
	{
		using var t = KeyTree();
		using var c = Open(t);
		var ch = c.Ask("AUTH CRAM-MD5 Z2xlbmRh");
		Assert.That(c.Ask(CramResponse(ch, "glenda", Password)), Is.EqualTo(Ok));
	}

	[TestCase("glenda", "wrong", "authentication failed: wrong CRAM-MD5 digest for glenda")]
	[TestCase("ken", Password, "authentication failed: no key for ken")]
	public void CramMd5WithWrongSecretFails(string user, string secret, string log)
	{
		using var t = KeyTree();
		using var c = Open(t);
		var ch = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(CramResponse(ch, user, secret)), Is.EqualTo(Failed));
		Assert.That(t.Log()[^1], Is.EqualTo(log));
	}

	[Test]
	public void CramMd5DigestForAnotherChallengeFails()
	{
		using var t = KeyTree();
		using var c = Open(t);
		var first = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(B64("glenda 0123")), Is.EqualTo(Failed));
		c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(CramResponse(first, "glenda", Password)), Is.EqualTo(Failed), "a replayed response");
	}

	[TestCase("glenda")]
	[TestCase("")]
	public void PoorlyFormedCramMd5Response(string resp)
	{
		using var t = KeyTree();
		using var c = Open(t);
		c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(B64(resp)), Is.EqualTo("501 5.5.4 Poorly formed CRAM-MD5 response"));
		Assert.That(c.Ask("NOOP"), Does.StartWith("250"), "the session goes on");
	}

	[TestCase("")]
	[TestCase("# no keys at all\n")]
	public void NoKeysNoCramMd5Challenge(string keys)
	{
		using var t = new Tree();
		if (keys.Length > 0)
			t.Write("/mail/lib/smtpd.keys", keys, 0x180);
		var r = t.Run(Ehlo + "AUTH CRAM-MD5\r\nAUTH PLAIN " + Plain("glenda", Password) + "\r\nQUIT\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] {
			"501 5.7.5 Couldn't get CRAM-MD5 challenge",
			Failed,
			"221 2.0.0 Successful termination",
		}));
	}

	// ---- errors common to all mechanisms

	[TestCase("DIGEST-MD5")]
	[TestCase("XOAUTH2")]
	[TestCase("plainx")]
	public void UnrecognisedMechanism(string mech)
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH {mech} {B64("x")}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { $"501 5.5.1 Unrecognised authentication type {mech}" }));
	}

	[TestCase("auth plain {0}")]
	[TestCase("Auth Plain {0}")]
	[TestCase("AUTH pLaIn {0}")]
	public void MechanismNamesAreCaseInsensitive(string line)
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + string.Format(System.Globalization.CultureInfo.InvariantCulture, line, Plain("glenda", Password)) + "\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Ok }));
	}

	[Test]
	public void AuthBeforeHeloIsAllowed()
	{
		using var t = KeyTree();
		var r = t.Run($"AUTH PLAIN {Plain("glenda", Password)}\r\nMAIL FROM:<alice@9fans.net>\r\n{Ehlo}MAIL FROM:<alice@9fans.net>\r\n", "-p");
		var l = Wire.Lines(r.Out);
		Assert.That(l[2], Is.EqualTo(Ok));
		Assert.That(l[3], Is.EqualTo("503 Start by saying HELO, please."));
		Assert.That(l[^1], Is.EqualTo("250 2.0.0 sender is 9fans.net!alice"));
	}

	[Test]
	public void SecondAuthIsABadSequence()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", Password)}\r\nAUTH PLAIN {Plain("glenda", Password)}\r\nAUTH CRAM-MD5\r\nAUTH BOGUS\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] {
			Ok,
			"503 5.5.2 Bad sequence of commands",
			"503 5.5.2 Bad sequence of commands",
			"503 5.5.2 Bad sequence of commands",
		}));
	}

	[TestCase("AUTH PLAIN\r\n*\r\n", new[] { "334 " })]
	[TestCase("AUTH LOGIN\r\n*\r\n", new[] { Username })]
	[TestCase("AUTH LOGIN\r\nZ2xlbmRh\r\n*\r\n", new[] { Username, PasswordPrompt })]
	[TestCase("AUTH LOGIN Z2xlbmRh\r\n*\r\n", new[] { PasswordPrompt })]
	[TestCase("AUTH CRAM-MD5\r\n*\r\n", new[] { "334 CHALLENGE" })]
	public void StarCancels(string input, string[] prompts)
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + input + "NOOP\r\n", "-p");
		var got = After(r);
		if (Regex.IsMatch(got[0], "^334 P[DG]")) // base64 of "<" and a hex digit
			got[0] = "334 CHALLENGE";
		Assert.That(got, Is.EqualTo(prompts.Append(Cancelled).Append("250 2.0.0 Nothing to see here. Move along ...")));
	}

	[TestCase("AUTH PLAIN %%%%\r\n", new string[0])]
	[TestCase("AUTH PLAIN\r\nnot-base64!\r\n", new[] { "334 " })]
	[TestCase("AUTH PLAIN\r\nAGdsZW5kYQBz=M2\r\n", new[] { "334 " })]
	[TestCase("AUTH LOGIN %%%%\r\n", new string[0])]
	[TestCase("AUTH LOGIN\r\n@@@@\r\n", new[] { Username })]
	[TestCase("AUTH LOGIN Z2xlbmRh\r\nc3:j\r\n", new[] { PasswordPrompt })]
	[TestCase("AUTH CRAM-MD5\r\n~~~~\r\n", new[] { "334 CHALLENGE" })]
	public void UndecodableBase64(string input, string[] prompts)
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + input + "NOOP\r\n", "-p");
		var got = After(r);
		if (Regex.IsMatch(got[0], "^334 P[DG]"))
			got[0] = "334 CHALLENGE";
		Assert.That(got, Is.EqualTo(prompts.Append(BadBase64).Append("250 2.0.0 Nothing to see here. Move along ...")));
	}

	[Test]
	public void EndOfInputDuringAuthEndsTheSession()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + "AUTH LOGIN\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Username }));
		Assert.That(r.Exit, Is.EqualTo(0));
	}

	// ---- what authentication allows

	[Test]
	public void DashARequiresAuthenticationBeforeMail()
	{
		using var t = KeyTree();
		using var c = Open(t, "-a");
		Assert.That(c.Ask("EHLO client.9fans.net"), Does.Contain("250 AUTH CRAM-MD5"));
		Assert.That(c.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("530 5.7.0 Authentication required"));
		Assert.That(c.Ask("RCPT TO:<bob@example.com>"), Is.EqualTo("503 5.5.1 Need MAIL before RCPT"));
		var ch = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(CramResponse(ch, "glenda", Password)), Is.EqualTo(Ok));
		Assert.That(c.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!alice"));
		Assert.That(c.Ask("RCPT TO:<bob@example.com>"), Is.EqualTo("250 2.0.0 receiver is example.com!bob"));
		Assert.That(c.Ask("DATA"), Does.StartWith("354"));
		Assert.That(c.Ask("Subject: authenticated\r\n\r\nhello\r\n."), Is.EqualTo("250 2.5.0 sent"));
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(c.Exit(), Is.EqualTo(0));
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.That(caps[0].Args, Is.EqualTo(new[] { "-r", "--", "example.com!bob" }));
		Assert.That(caps[0].Text, Does.Contain("Subject: authenticated\n\nhello\n"));
	}

	[Test]
	public void DashAWithFailedAuthStillRefusesMail()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", "nope")}\r\n" + Tx, "-a", "-p");
		Assert.That(After(r).Take(2), Is.EqualTo(new[] { Failed, "530 5.7.0 Authentication required" }));
		Assert.That(t.Captures(), Is.Empty);
	}

	[Test]
	public void AuthenticatedClientsMayRelayUnderDashF()
	{
		const string Relay = "MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@elsewhere.net>\r\n";
		using var t = KeyTree();
		var r = t.Run(Ehlo + Relay + "RSET\r\n" + $"AUTH PLAIN {Plain("glenda", Password)}\r\n" + Relay +
			"DATA\r\nSubject: relayed\r\n\r\nbody\r\n.\r\nQUIT\r\n", "-f", "-p");
		Assert.That(After(r), Is.EqualTo(new[] {
			"250 2.0.0 sender is 9fans.net!alice",
			"550 5.7.1 we don't relay.  send to your-path@[] for loopback.",
			"250 2.0.0 ok",
			Ok,
			"250 2.0.0 sender is 9fans.net!alice",
			"250 2.0.0 receiver is elsewhere.net!bob",
			"354 Input message; end with <CRLF>.<CRLF>",
			"250 2.5.0 sent",
			"221 2.0.0 Successful termination",
		}));
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.That(caps[0].Args, Is.EqualTo(new[] { "-r", "--", "elsewhere.net!bob" }));
		Assert.That(t.Log(), Does.Contain("Bad Forward 9fans.net!alice (client.9fans.net/127.0.0.2) (elsewhere.net!bob)"));
	}

	// ---- failures: 2 free, 2 slow, the 5th ends the session

	[Test]
	public void RepeatedFailuresAreSlowedAndThenCut()
	{
		Assert.That((Session.AuthFreeFailures, Session.AuthSlowSeconds, Session.AuthMaxFailures), Is.EqualTo((2, 5, 5)));
		using var t = KeyTree();
		using var c = Open(t, "-p");
		c.Ask("EHLO client.9fans.net");
		var times = new List<double>();
		var replies = new List<string>();
		// the failures count per session, whatever the mechanism
		string[] tries = [
			$"AUTH PLAIN {Plain("glenda", "one")}",
			$"AUTH LOGIN {B64("glenda")}\r\n{B64("two")}",
			$"AUTH PLAIN {Plain("glenda", "three")}",
			"CRAM",
			$"AUTH PLAIN {Plain("glenda", "five")}",
		];
		foreach (var tr in tries) {
			var sw = Stopwatch.StartNew();
			string reply;
			if (tr == "CRAM") {
				var ch = c.Ask("AUTH CRAM-MD5");
				reply = c.Ask(CramResponse(ch, "glenda", "four"));
			} else if (tr.Contains("\r\n", StringComparison.Ordinal)) {
				var parts = tr.Split("\r\n");
				Assert.That(c.Ask(parts[0]), Is.EqualTo(PasswordPrompt));
				reply = c.Ask(parts[1]);
			} else {
				reply = c.Ask(tr);
			}
			times.Add(sw.Elapsed.TotalSeconds);
			replies.Add(reply);
		}
		Assert.That(replies, Is.EqualTo(new[] { Failed, Failed, Failed, Failed, "421 4.7.0 Too many authentication failures" }));
		Assert.Multiple(() => {
			Assert.That(times[0], Is.LessThan(2.5), "1st failure at once");
			Assert.That(times[1], Is.LessThan(2.5), "2nd failure at once");
			Assert.That(times[2], Is.GreaterThanOrEqualTo(Session.AuthSlowSeconds - 0.5), "3rd failure paused");
			Assert.That(times[3], Is.GreaterThanOrEqualTo(Session.AuthSlowSeconds - 0.5), "4th failure paused");
			Assert.That(times[4], Is.LessThan(2.5), "5th: cut at once");
		});
		Assert.That(c.Line(5000), Is.Null, "the session ends after 421");
		Assert.That(c.Exit(), Is.EqualTo(1));
		Assert.That(t.Log()[^1], Is.EqualTo("too many authentication failures from client.9fans.net (127.0.0.2)"));
	}

	[Test]
	public void CancelledAndMalformedAttemptsAreNotCountedAsFailures()
	{
		using var t = KeyTree();
		var junk = string.Concat(Enumerable.Repeat("AUTH PLAIN\r\n*\r\nAUTH PLAIN %%%%\r\n", 3));
		var sw = Stopwatch.StartNew();
		var r = t.Run(Ehlo + junk + $"AUTH PLAIN {Plain("glenda", Password)}\r\n", "-p");
		Assert.That(sw.Elapsed.TotalSeconds, Is.LessThan(Session.AuthSlowSeconds));
		Assert.That(After(r)[^1], Is.EqualTo(Ok));
	}

	// ---- the key file

	[Test]
	public void KeyFileSyntax()
	{
		const string keys = """
			# /mail/lib/smtpd.keys: factotum key syntax, one key a line

			key proto=pass service=smtp user=glenda !password=s3cret
			key proto=pass service=imap user=ken !password=imap-only
			key proto=pass service=smtp user='rob pike' !password='two words'	# trailing comment
			key proto=pass service=smtp user=dmr !password='it''s'
			key proto=p9sk1 dom=9fans.net user=ken !password=p9sk1-only
			this line is not a key
			key proto=pass service=smtp user=unclosed !password='oops
			key proto=pass service=smtp user=ken !password=a#b=c
			  key   proto=pass   service=smtp   user=howard   !password=spaced
			""";
		using var t = KeyTree(keys);
		(string user, string pass, bool ok)[] cases = [
			("glenda", "s3cret", true),
			("ken", "imap-only", false),
			("ken", "p9sk1-only", false),
			("ken", "a#b=c", true),
			("rob pike", "two words", true),
			("dmr", "it's", true),
			("unclosed", "'oops", false),
			("unclosed", "oops", false),
			("howard", "spaced", true),
			("this", "line", false),
		];
		foreach (var (user, pass, ok) in cases) {
			var r = t.Run(Ehlo + $"AUTH PLAIN {Plain(user, pass)}\r\n", "-p");
			Assert.That(After(r), Is.EqualTo(new[] { ok ? Ok : Failed }), $"{user} / {pass}");
		}
		// CRAM-MD5 with a user name holding a space
		using var c = Open(t);
		var ch = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(CramResponse(ch, "rob pike", "two words")), Is.EqualTo(Ok));
	}

	[Test]
	public void FactotumKeyParsing()
	{
		var keys = Factotum.ParseKeys("key proto=pass service=smtp user='a b' !password='x''y z' # c\r\n#key proto=pass user=no\nkey proto=pass flag\n");
		Assert.That(keys, Has.Count.EqualTo(2));
		Assert.That(keys[0].Attrs, Is.EqualTo(new Dictionary<string, string> { ["proto"] = "pass", ["service"] = "smtp", ["user"] = "a b" }));
		Assert.That(keys[0].Secrets, Is.EqualTo(new Dictionary<string, string> { ["password"] = "x'y z" }));
		Assert.That(keys[0]["password"], Is.EqualTo("x'y z"));
		Assert.That(keys[1].Attrs["flag"], Is.Empty);
		Assert.That(SmtpdKeys.Secret(keys, "a b"), Is.EqualTo("x'y z"));
		Assert.That(SmtpdKeys.Secret(keys, "a"), Is.Null);
		Assert.That(Factotum.Tokenize("a 'b"), Is.Null);
		Assert.That(Factotum.Quote("two words"), Is.EqualTo("'two words'"));
		Assert.That(Factotum.Quote("it's"), Is.EqualTo("'it''s'"));
		Assert.That(Factotum.Quote("plain"), Is.EqualTo("plain"));
		Assert.That(Factotum.Tokenize(Factotum.Quote("it's a #test")), Is.EqualTo(new[] { "it's a #test" }));
	}

	[Test]
	public void KeysAreReReadBetweenSessions()
	{
		using var t = KeyTree();
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", Password)}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Ok }));
		t.Write("/mail/lib/smtpd.keys", Keys.Replace(Password, "n3w-Pa55w0rd", StringComparison.Ordinal), 0x180);
		r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", Password)}\r\nAUTH PLAIN {Plain("glenda", "n3w-Pa55w0rd")}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Failed, Ok }));
		File.Delete(t.P("/mail/lib/smtpd.keys"));
		r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", "n3w-Pa55w0rd")}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Failed }));
	}

	[Test]
	public void KeysAreReReadInProcess()
	{
		var old = Root.Dir;
		using var t = KeyTree();
		Root.Dir = t.Dir;
		try {
			var warnings = new List<string>();
			Assert.That(SmtpdKeys.Secret(SmtpdKeys.Load(warnings.Add), "glenda"), Is.EqualTo(Password));
			// the same size and the same mtime (an edit within one clock tick, or cp -p): a cache keyed on mtime
			// and size alone would not see it
			var path = t.P("/mail/lib/smtpd.keys");
			var mtime = File.GetLastWriteTimeUtc(path);
			var next = Password[..^1] + "6";
			t.Write("/mail/lib/smtpd.keys", Keys.Replace(Password, next, StringComparison.Ordinal), 0x180);
			File.SetLastWriteTimeUtc(path, mtime);
			Assert.That(SmtpdKeys.Secret(SmtpdKeys.Load(warnings.Add), "glenda"), Is.EqualTo(next));
			t.Write("/mail/lib/smtpd.keys", Keys.Replace("glenda", "ken", StringComparison.Ordinal) + Keys, 0x180);
			var keys = SmtpdKeys.Load(warnings.Add);
			Assert.That(SmtpdKeys.Secret(keys, "ken"), Is.EqualTo(Password));
			Assert.That(SmtpdKeys.Secret(keys, "glenda"), Is.EqualTo(Password));
			File.Delete(t.P("/mail/lib/smtpd.keys"));
			Assert.That(SmtpdKeys.Load(warnings.Add), Is.Empty);
			Assert.That(warnings, Is.Empty);
			// a mode change alone is noticed too
			t.Write("/mail/lib/smtpd.keys", Keys, 0x180);
			SmtpdKeys.Load(warnings.Add);
			File.SetUnixFileMode(t.P("/mail/lib/smtpd.keys"), (UnixFileMode)0x1a4);
			SmtpdKeys.Load(warnings.Add);
			Assert.That(warnings, Is.EqualTo(new[] { "warning: /mail/lib/smtpd.keys is readable by group or others (mode 644); chmod 600 it" }));
		} finally {
			Root.Dir = old;
		}
	}

	[TestCase(0x1a4, "644")]
	[TestCase(0x1a0, "640")]
	[TestCase(0x184, "604")]
	[TestCase(0x180, null)]
	[TestCase(0x100, null)]
	public void KeyFileReadableByOthersIsWarnedAbout(int mode, string? octal)
	{
		using var t = new Tree();
		t.Write("/mail/lib/smtpd.keys", Keys, mode);
		var r = t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", Password)}\r\n", "-p");
		Assert.That(After(r), Is.EqualTo(new[] { Ok }), "a warning, not a refusal");
		var warn = $"warning: /mail/lib/smtpd.keys is readable by group or others (mode {octal}); chmod 600 it";
		if (octal is null)
			Assert.That(t.Log(), Has.None.Contains("warning"));
		else
			Assert.That(t.Log(), Has.Exactly(1).EqualTo(warn));
	}

	// ---- secrets never reach the log or a trace

	[Test]
	public void NoSecretInLogOrTrace()
	{
		using var t = KeyTree();
		var blobs = new List<string> { Password, "wr0ng-Pa55", B64(Password), B64("wr0ng-Pa55"), Plain("glenda", Password), Plain("glenda", "wr0ng-Pa55") };
		// PLAIN: initial response and continuation, wrong and right; blanks other than spaces between the words
		t.Run(Ehlo + $"AUTH PLAIN {Plain("glenda", "wr0ng-Pa55")}\r\nAUTH PLAIN\r\n{Plain("glenda", Password)}\r\nQUIT\r\n", "-p", "-d");
		t.Run(Ehlo + $"AUTH\tPLAIN\t{Plain("glenda", Password)}\r\nQUIT\r\n", "-p", "-d");
		// trailing blanks after the response are accepted, and the line is protected too
		t.Run(Ehlo + $"auth  plain  {Plain("glenda", "wr0ng-Pa55")}\r\nAUTH PLAIN {Plain("glenda", Password)}  \r\nQUIT\r\n", "-p", "-d");
		// LOGIN: with and without an initial response
		t.Run(Ehlo + $"AUTH LOGIN\r\n{B64("glenda")}\r\n{B64("wr0ng-Pa55")}\r\nAUTH LOGIN {B64("glenda")}\r\n{B64(Password)}\r\nQUIT\r\n", "-p", "-d");
		// CRAM-MD5, wrong and right
		using (var c = Open(t, "-d")) {
			c.Ask("EHLO client.9fans.net");
			var bad = CramResponse(c.Ask("AUTH CRAM-MD5"), "glenda", "wr0ng-Pa55");
			Assert.That(c.Ask(bad), Is.EqualTo(Failed));
			var good = CramResponse(c.Ask("AUTH CRAM-MD5"), "glenda", Password);
			Assert.That(c.Ask(good), Is.EqualTo(Ok));
			c.Ask("QUIT");
			c.Exit();
			blobs.Add(bad);
			blobs.Add(good);
			// and the hex digests in them
			blobs.Add(Encoding.ASCII.GetString(Convert.FromBase64String(bad)).Split(' ')[1]);
			blobs.Add(Encoding.ASCII.GetString(Convert.FromBase64String(good)).Split(' ')[1]);
		}
		var traces = Directory.GetFiles(t.P("/sys/log/smtpdb"));
		Assert.That(traces, Has.Length.EqualTo(5));
		var files = traces.Append(t.P("/sys/log/smtpd")).ToList();
		foreach (var f in files) {
			var text = File.ReadAllText(f);
			foreach (var b in blobs)
				Assert.That(text, Does.Not.Contain(b).IgnoreCase, $"{b} in {f}:\n{text}");
		}
		var log = t.Log();
		Assert.That(log.Count(l => Regex.IsMatch(l, @"^auth\((PLAIN|plain|LOGIN|CRAM-MD5), \(protected\)\) from client\.9fans\.net$")), Is.EqualTo(9));
		var all = string.Join("\n", traces.Select(File.ReadAllText));
		Assert.That(all, Does.Contain("AUTH PLAIN (protected)"));
		Assert.That(all, Does.Contain("\n(protected)\n"), "continuation lines");
		Assert.That(all, Does.Contain("235 2.0.0 Authentication successful"));
	}
}
