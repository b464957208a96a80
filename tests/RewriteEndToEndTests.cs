using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// rewrite(6) end to end: a client talks to smtpd, which asks send's code (what send -x says) at RCPT and hands the
/// message to the real send -r, which routes by /mail/lib/rewrite: >>, |, alias, translate.
/// </summary>
[TestFixture]
public class RewriteEndToEndTests
{
	/// <summary>A tree with the real send as ROOT/bin/upas/send, a recorder program and the given rules.</summary>
	static Tree NewTree(string rewrite, params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		// records each run: its arguments one a line in runN, its input in msgN
		t.Write("/rec", "#!/bin/sh\nd=$(dirname \"$0\")\nn=$(ls \"$d\" | grep -c '^run')\nprintf '%s\\n' \"$@\" > \"$d/run$n\"\ncat > \"$d/msg$n\"\n", 0x1ed);
		t.Write("/mail/lib/rewrite", rewrite.Replace("REC", t.P("/rec")).Replace("ROOT", t.Dir));
		return t;
	}

	static RunResult Session(Tree t, string from, IEnumerable<string> rcpts, string body = "Subject: hi\r\n\r\nFrom the test\r\n") =>
		t.Run($"HELO client.9fans.net\r\nMAIL FROM:<{from}>\r\n" + string.Concat(rcpts.Select(r => $"RCPT TO:<{r}>\r\n")) +
			$"DATA\r\n{body}.\r\nQUIT\r\n", "-m", t.P("/bin/upas/send"));

	static string[] Replies(RunResult r) => r.Out.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

	const string Rules = """
		# one rule of each type
		local!([^!]+)		>>		/mail/box/\1/mbox
		team			alias		"bob carol"
		(.+)-request		translate	"ROOT/tr '\1'"
		fail\.example!(.+)	|		"echo mailbox full >\&2; exit 1"
		([^!]+)!(.+)		|		"REC '\s' 'net!\1'"	"'\2'"
		[^!@]+			alias		local!&

		""";

	[Test]
	public void EachActionThroughSmtpdAndSend()
	{
		using var t = NewTree(Rules, "bob", "carol", "dave");
		t.Write("/tr", "#!/bin/sh\necho \"local!$1\"\n", 0x1ed);
		var marker = t.P("/touched");
		var hostile = $"\"'; touch {marker} #\"";
		var r = Session(t, "alice@example.org", ["bob@example.com", "team@example.com", "dave-request@example.com",
			"eve@far.example", $"{hostile}@far.example", "nobody@example.com", "frank@testhost"]);
		Assert.That(Replies(r).Where(l => l.StartsWith('5')), Is.EqualTo(new[] {
			"550 5.1.1 example.com!nobody ... user unknown", "550 5.1.1 testhost!frank ... user unknown",
		}), r.Out);
		Assert.That(Replies(r), Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		// >> (and alias to it: bob once, though named twice), alias, translate
		foreach (var u in new[] { "bob", "carol", "dave" }) {
			var box = File.ReadAllText(t.P($"/mail/box/{u}/mbox"));
			Assert.That(Mail.Split(box), Has.Count.EqualTo(1), u);
			Assert.That(box, Does.StartWith("From example.org!alice ").And.Contain("\n\n From the test\n\n"), u);
		}
		// |: both far.example recipients in one run, each address one exact argument, nothing of it run
		Assert.That(File.ReadAllText(t.P("/run0")), Is.EqualTo($"example.org!alice\nnet!far.example\neve\n{hostile}\n"));
		Assert.That(File.ReadAllText(t.P("/msg0")), Does.StartWith("From example.org!alice ").And.Contain(" remote from testhost\nAuthentication-Results: ").And.Contain("\nReceived: from client.9fans.net "));
		Assert.That(File.Exists(t.P("/run1")), Is.False);
		Assert.That(File.Exists(marker), Is.False);
		var log = File.ReadAllText(t.P("/sys/log/mail"));
		Assert.That(log, Does.Contain("delivered carol From example.org!alice ").And.Contain(" (example.com!team) "));
		Assert.That(log, Does.Contain("remote far.example!eve From example.org!alice "));
	}

	/// <summary>A | rule that fails: mailer.md §2.5, the sender gets a bounce naming the command's error, smtpd says 250 (send -r exit 0).</summary>
	[Test]
	public void FailingPipeIsBounced()
	{
		using var t = NewTree(Rules, "bob");
		var r = Session(t, "alice@example.org", ["bob@fail.example"]);
		Assert.That(Replies(r), Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		// the bounce went to alice, through the rules: to the recorder, from /dev/null
		Assert.That(File.ReadAllText(t.P("/run0")), Is.EqualTo("/dev/null\nnet!example.org\nalice\n"));
		Assert.That(File.ReadAllText(t.P("/msg0")), Does.Contain("The attached mail from 'example.org!alice'\nto 'fail.example!bob'\nfailed with error 'mailbox full'.\n"));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("error fail.example!bob From example.org!alice ").And.Contain("error+ mailbox full\n"));
	}

	/// <summary>A | rule whose command cannot say no to bulk mail: bulk mail that fails is dropped, never bounced.</summary>
	[Test]
	public void FailingPipeDropsBulkMail()
	{
		using var t = NewTree(Rules, "bob");
		var r = Session(t, "alice@example.org", ["bob@fail.example"], "Precedence: bulk\r\nSubject: news\r\n\r\nx\r\n");
		Assert.That(Replies(r), Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		Assert.That(File.Exists(t.P("/run0")), Is.False);
	}

	/// <summary>A tree with the default tree's routing: the shipped rewrite, namefiles, and names.local, the real send and aliasmail.</summary>
	static Tree DefaultTree(string namesLocalExtra = "", params string[] users)
	{
		var t = NewTree("", users);
		File.Copy(Path.Join(Repo.Dir, "mail/lib/rewrite"), t.P("/mail/lib/rewrite"), true);
		foreach (var f in new[] { "namefiles", "names.local" })
			File.Copy(Path.Join(Repo.Dir, "mail/lib", f), t.P("/mail/lib/" + f));
		File.AppendAllText(t.P("/mail/lib/names.local"), namesLocalExtra);
		File.CreateSymbolicLink(t.P("/bin/upas/aliasmail"), Repo.Bin("aliasmail"));
		return t;
	}

	/// <summary>RFC 5321 §4.5.1: postmaster, with or without our domain, is accepted at RCPT and delivered to glenda by the default tree's files; unknown users are still refused.</summary>
	[Test]
	public void PostmasterInTheDefaultTree()
	{
		using var t = DefaultTree("", "glenda");
		var r = Session(t, "alice@example.org", ["postmaster", "Postmaster@testhost", "postmaster@example.com", "nobody@testhost", "glenda@testhost"]);
		Assert.That(Replies(r).Where(l => l.StartsWith('5')), Is.EqualTo(new[] { "550 5.1.1 testhost!nobody ... user unknown" }), r.Out);
		Assert.That(Replies(r), Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		var box = File.ReadAllText(t.P("/mail/box/glenda/mbox"));
		Assert.That(Mail.Split(box), Has.Count.EqualTo(1), "glenda once, however often named");
		Assert.That(box, Does.StartWith("From example.org!alice ").And.Contain("\n\n From the test\n\n"));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("delivered glenda From example.org!alice ").And.Contain(" (postmaster) "));
	}

	/// <summary>Aliases of names.local through aliasmail: a list, a list inside a list, a loop (its own local user: unknown here), a remote member.</summary>
	[Test]
	public void AliasesThroughNamesLocal()
	{
		using var t = DefaultTree("staff\tbob carol\nall\tstaff glenda\nloopa\tloopb\nloopb\tloopa\nout\tbob@far.example\n", "glenda", "bob", "carol");
		t.Write("/mail/lib/rewrite", File.ReadAllText(t.P("/mail/lib/rewrite")).Replace("$PLAN9/mail/lib/qmail", t.P("/rec")));
		var r = Session(t, "alice@example.org", ["all@testhost", "loopa@testhost", "out"]);
		Assert.That(Replies(r).Where(l => l.StartsWith('5')), Is.EqualTo(new[] { "550 5.1.1 testhost!loopa ... user unknown" }), r.Out);
		Assert.That(Replies(r), Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		foreach (var u in new[] { "bob", "carol", "glenda" })
			Assert.That(Mail.Split(File.ReadAllText(t.P($"/mail/box/{u}/mbox"))), Has.Count.EqualTo(1), u);
		Assert.That(File.ReadAllText(t.P("/run0")), Is.EqualTo("example.org!alice\nnet!far.example\nbob\n"));
		// the loop, given to send directly: bounced, the other recipients delivered
		var (o, e, x) = Tree.Exec(t.Prog(Repo.Bin("send"), ["-r", "loopa", "staff"]), Encoding.Latin1.GetBytes("From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: l\n\nx\n"));
		Assert.That((x, e), Is.EqualTo((0, "")));
		Assert.That(Mail.Split(File.ReadAllText(t.P("/mail/box/bob/mbox"))), Has.Count.EqualTo(2));
		Assert.That(File.ReadAllText(t.P("/msg1")), Does.Contain("to 'loopa' alias `local!loopa'\nfailed with error 'unknown user'."));
	}

	/// <summary>The default tree's last rule: remote mail is queued by qmail and qer, each word of the control file exact (a quoted local part too).</summary>
	[Test]
	public void RemoteMailIsQueuedByQmailInTheDefaultTree()
	{
		using var t = DefaultTree("", "glenda");
		File.CreateSymbolicLink(t.P("/bin/upas/qer"), Repo.Bin("qer"));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/qmail"), t.P("/mail/lib/qmail"));
		File.SetUnixFileMode(t.P("/mail/lib/qmail"), (UnixFileMode)0x1ed);
		var r = Session(t, "\"john doe\"@corp.example", ["bob@far.example", "\"a b\"@far.example", "carol@other.example"]);
		Assert.That(Replies(r), Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		var ctl = Directory.GetFiles(t.P("/mail/queue"), "C.*", SearchOption.AllDirectories).Select(File.ReadAllText).Order().ToArray();
		Assert.That(ctl, Is.EqualTo(new[] {
			"smtp corp.example!%%22john%%20doe%%22 net!far.example bob %%22a%%20b%%22 \n",
			"smtp corp.example!%%22john%%20doe%%22 net!other.example carol \n",
		}));
	}

	/// <summary>When qmail cannot queue (qer fails, exit 75), send fails for now: smtpd answers 450, nothing is bounced or lost behind a 250.</summary>
	[Test]
	public void QueueFailureIsATemporaryFailure()
	{
		using var t = DefaultTree("", "glenda");
		File.CreateSymbolicLink(t.P("/bin/upas/qer"), Repo.Bin("qer"));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/qmail"), t.P("/mail/lib/qmail"));
		File.SetUnixFileMode(t.P("/mail/lib/qmail"), (UnixFileMode)0x1ed);
		t.Write("/mail/queue", "not a directory");
		var r = Session(t, "alice@example.org", ["bob@far.example"]);
		Assert.That(Replies(r), Has.Some.StartsWith("450 ").And.None.StartsWith("250 2.5.0"), r.Out);
		Assert.That(r.Out, Does.Contain("qmail: qer failed"));
		Assert.That(File.Exists(t.P("/mail/box/glenda/mbox")) ? File.ReadAllText(t.P("/mail/box/glenda/mbox")) : "", Does.Not.Contain("bounced"));
	}

	/// <summary>Today's forward and pipeto files, honoured in the directory of a >> rule's mailbox; forwarded mail is not forwarded again.</summary>
	[Test]
	public void ForwardAndPipetoUnderTheRules()
	{
		using var t = DefaultTree("", "alice", "bob", "carol");
		t.Write("/mail/lib/rewrite", File.ReadAllText(t.P("/mail/lib/rewrite")).Replace("$PLAN9/mail/lib/qmail", t.P("/rec")));
		t.Write("/mail/box/alice/forward", "bob, example.net!dave\n");
		t.Write("/mail/box/bob/forward", "carol\n"); // not used for mail forwarded to bob
		File.SetUnixFileMode(t.P("/mail/box/carol"), (UnixFileMode)0x1ff); // the pipeto may run as nobody
		t.Write("/mail/box/carol/pipeto", "#!/bin/sh\nprintf '%s\\n' \"$@\" \"$upasname\" > \"$(dirname \"$0\")/piped\"\ncat >> \"$(dirname \"$0\")/piped\"\n", 0x1ed);
		var (o, e, x) = Tree.Exec(t.Prog(Repo.Bin("send"), ["-r", "alice", "carol"]), Encoding.Latin1.GetBytes("From example.org!eve Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: f\n\nx\n"));
		Assert.That((x, e), Is.EqualTo((0, "")));
		Assert.That(File.Exists(t.P("/mail/box/alice/mbox")), Is.False);
		Assert.That(Mail.Split(File.ReadAllText(t.P("/mail/box/bob/mbox"))), Has.Count.EqualTo(1));
		Assert.That(File.ReadAllText(t.P("/run0")), Is.EqualTo("example.org!eve\nnet!example.net\ndave\n"));
		Assert.That(File.ReadAllText(t.P("/mail/box/carol/piped")), Is.EqualTo($"local!carol\n{t.P("/mail/box/carol/mbox")}\ncarol\nFrom example.org!eve Mon Nov 24 01:21:00 EST 2025 remote from testhost\nSubject: f\n\nx\n"));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("delivered bob From example.org!eve Mon Nov 24 01:21:00 EST 2025 (alice) "));
	}
}
