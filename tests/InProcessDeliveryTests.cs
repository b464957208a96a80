using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 11 items 1 and 2: smtpd -L with the default mailer delivers through send's code in its own process,
/// byte for byte as the send process does, without starting a process; recipients are checked in process
/// when there is no /mail/lib/validateaddress.
/// </summary>
[TestFixture]
public class InProcessDeliveryTests
{
	/// <summary>
	/// A tree with the real send as ROOT/bin/upas/send and as ROOT/bin/upas/sendp (the same program under another
	/// name: smtpd runs it as a process), users glenda, alice, bob (forwarding to carol), carol, dave (a pipeto).
	/// </summary>
	static Tree NewTree(bool acceptAll = true)
	{
		var t = new Tree("defaultdomain 9fans.net\ngreetdelay 0\n");
		t.Write("/sys/log/mail", "");
		foreach (var u in new[] { "glenda", "alice", "bob", "carol", "dave" })
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		t.Write("/mail/box/bob/forward", "carol\n");
		Directory.CreateDirectory(t.P("/pout"));
		File.SetUnixFileMode(t.P("/pout"), (UnixFileMode)0x1ff); // a pipeto of root's send runs as nobody
		t.Write("/mail/box/dave/pipeto", $"#!/bin/sh\n{{ printf '%s\\n' \"$@\"; cat; }} >> {t.P("/pout")}/out\n", 0x1ed);
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		File.CreateSymbolicLink(t.P("/bin/upas/sendp"), Repo.Bin("send"));
		if (acceptAll) // the site's own check, in both trees: unknown users reach send and are bounced
			t.Write("/mail/lib/validateaddress", "#!/bin/sh\nexit 0\n", 0x1ed);
		return t;
	}

	/// <summary>smtpd -L whose mailer is the default (in process) or sendp (a process).</summary>
	static Listening Listen(Tree t, bool inProcess) =>
		new(t, "127.0.0.1", "-m", t.P(inProcess ? "/bin/upas/send" : "/bin/upas/sendp"));

	/// <summary>One SMTP transaction; the reply to the end of DATA (or the first refusal).</summary>
	static string Transaction(Client c, string from, IEnumerable<string> rcpts, string body)
	{
		var r = c.Ask($"MAIL FROM:<{from}>");
		if (!r.StartsWith("250"))
			return r;
		foreach (var rc in rcpts) {
			r = c.Ask($"RCPT TO:<{rc}>");
			if (!r.StartsWith("250"))
				return r;
		}
		r = c.Ask("DATA");
		if (!r.StartsWith("354"))
			return r;
		c.Send(body.Replace("\n", "\r\n") + ".\r\n");
		return string.Join("\n", c.Reply());
	}

	static Client Hello(Listening l)
	{
		var c = l.Connect();
		c.Reply();
		Assert.That(c.Ask("HELO mail.plan9.org"), Does.StartWith("250"));
		return c;
	}

	/// <summary>The same messages through the library and through the send process.</summary>
	static readonly (string From, string[] Rcpts, string Body)[] Cases = [
		("alice@plan9.org", ["glenda"], "Subject: local\n\nFrom the start of a line\nbody\n"),
		("alice@testhost", ["nobody"], "Subject: unknown\n\nbounced\n"),
		("alice@plan9.org", ["bob"], "Subject: forward\n\nto carol\n"),
		("alice@plan9.org", ["dave"], "Subject: pipeto\n\nto a program\n"),
		("alice@plan9.org", ["zed@example.net", "yan@example.net"], "Subject: remote\n\nqueued\n"),
		("alice@plan9.org", ["glenda", "carol"], "Subject: big\n\n" + string.Concat(Enumerable.Repeat(new string('x', 99) + "\n", 1000))),
	];

	/// <summary>Everything a delivery leaves in a tree, dates and random boundaries taken out.</summary>
	static string Leavings(Tree t)
	{
		var sb = new StringBuilder();
		foreach (var u in new[] { "glenda", "alice", "bob", "carol", "dave" })
			sb.Append($"== mbox {u}\n").Append(Mail.Box(t, u));
		sb.Append("== pipeto\n").Append(File.Exists(t.P("/pout/out")) ? File.ReadAllText(t.P("/pout/out")) : "");
		var logs = File.ReadAllLines(t.P("/sys/log/mail")).Select(l => Regex.Replace(l, @"^testhost [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ", "LOG "));
		sb.Append("== log\n").AppendJoin('\n', logs).Append('\n');
		var q = t.P("/mail/queue");
		var files = Directory.Exists(q) ? Directory.GetFiles(q, "*", SearchOption.AllDirectories) : [];
		// one job: its files named by their kind only (ids are the pid's in send, a counter's in process)
		foreach (var f in files.OrderBy(f => Path.GetFileName(f)[0]))
			sb.Append($"== queue {Path.GetFileName(f)[0]} {Convert.ToString((int)File.GetUnixFileMode(f), 8)}\n").Append(File.ReadAllText(f));
		var s = Tree.NoDates(sb.ToString()).Replace(t.Dir, "ROOT");
		foreach (Match m in Regex.Matches(s, "boundary=\"([^\"]+)\""))
			s = s.Replace(m.Groups[1].Value, "BOUNDARY");
		return s;
	}

	[Test]
	public void InProcessAndProcessDeliveryLeaveTheSameBytes()
	{
		var got = new List<string>();
		var replies = new List<string>();
		foreach (var inProcess in new[] { true, false }) {
			using var t = NewTree();
			using (var l = Listen(t, inProcess)) {
				using var c = Hello(l);
				foreach (var (from, rcpts, body) in Cases) {
					replies.Add(Transaction(c, from, rcpts, body));
				}
				c.Ask("QUIT");
			}
			got.Add(Leavings(t));
		}
		Assert.That(replies, Has.All.EqualTo("250 2.5.0 sent"));
		Assert.That(got[0], Does.Contain("== mbox carol\nFrom plan9.org!alice DATE\n").And.Contain("To: bob\n"));
		Assert.That(got[0], Does.Contain("failed with error 'unknown user'").And.Contain("== queue C ").And.Contain("== queue D ").And.Contain("\nlocal!dave\n"));
		Assert.That(got[0], Is.EqualTo(got[1]));
	}

	/// <summary>The listener's system calls while it takes a message for a local user: no execve, no fork.</summary>
	[Test]
	public void NoProcessIsStartedForALocalDelivery()
	{
		if (!Repo.Have("strace"))
			Assert.Ignore("no strace");
		using var t = NewTree(acceptAll: false);
		using var l = Listen(t, inProcess: true);
		var log = t.P("/strace.out");
		using var st = Process.Start(new ProcessStartInfo("strace", ["-f", "-qq", "-e", "trace=execve,fork,vfork", "-o", log, "-p", l.P.Id.ToString()]) { RedirectStandardError = true, UseShellExecute = false })!;
		Wait.Until(() => File.Exists(log), () => "strace attached", TimeSpan.FromSeconds(10));
		Thread.Sleep(300);
		using (var c = Hello(l)) {
			Assert.That(Transaction(c, "alice@plan9.org", ["glenda", "nobody"], "Subject: x\n\nhi\n"), Does.StartWith("550 5.1.1"));
			Assert.That(c.Ask("RSET"), Does.StartWith("250"));
			Assert.That(Transaction(c, "alice@plan9.org", ["glenda"], "Subject: x\n\nhi\n"), Is.EqualTo("250 2.5.0 sent"));
			c.Ask("QUIT");
		}
		Assert.That(Mail.Split(Mail.Box(t, "glenda")), Has.Count.EqualTo(1));
		Process.Start("kill", ["-INT", st.Id.ToString()])!.WaitForExit();
		st.WaitForExit(10_000);
		var calls = File.ReadAllLines(log).Where(x => x.Contains("execve(") || x.Contains("fork(")).ToList();
		Assert.That(calls, Is.Empty, string.Join("\n", calls));
	}

	/// <summary>A message of more than 64 KB is spooled to a file; delivered in process, its descriptor is closed again.</summary>
	[Test]
	public void BigMessagesLeaveNoDescriptorOpen()
	{
		using var t = NewTree(acceptAll: false);
		using var l = Listen(t, inProcess: true);
		var big = "Subject: big\n\n" + string.Concat(Enumerable.Repeat(new string('y', 199) + "\n", 1000));
		int Fds() => Directory.GetFiles($"/proc/{l.P.Id}/fd").Length;
		using var c = Hello(l);
		Assert.That(Transaction(c, "alice@plan9.org", ["glenda"], big), Is.EqualTo("250 2.5.0 sent"));
		var before = Fds();
		for (var i = 0; i < 5; i++)
			Assert.That(Transaction(c, "alice@plan9.org", ["glenda"], big), Is.EqualTo("250 2.5.0 sent"));
		// and one cut off by a hop loop: aborted, its spool dropped
		var loop = string.Concat(Enumerable.Range(0, 40).Select(i => $"Received: from h{i}.plan9.org\n")) + big;
		Assert.That(Transaction(c, "alice@plan9.org", ["glenda"], loop), Is.EqualTo("554 5.4.6 Too many hops"));
		Assert.That(Fds(), Is.EqualTo(before));
		Assert.That(Mail.Split(Mail.Box(t, "glenda")), Has.Count.EqualTo(6));
		Assert.That(Mail.Box(t, "glenda"), Does.Contain(big.Replace("Subject: big\n", "") + "\n"));
	}

	/// <summary>An administrator edits /mail/lib/rewrite while smtpd -L runs: the next message follows the new rules.</summary>
	[Test]
	public void EditedRewriteRulesTakeEffectAtOnce()
	{
		using var t = NewTree(acceptAll: false);
		t.Write("/mail/lib/rewrite", "team\talias\tglenda\n([^!]+)\t>>\t/mail/box/\\1/mbox\n");
		using var l = Listen(t, inProcess: true);
		using var c = Hello(l);
		Assert.That(Transaction(c, "alice@plan9.org", ["team"], "Subject: one\n\n1\n"), Is.EqualTo("250 2.5.0 sent"));
		t.Write("/mail/lib/rewrite", "team\talias\tcarol\n([^!]+)\t>>\t/mail/box/\\1/mbox\n");
		Assert.That(Transaction(c, "alice@plan9.org", ["team"], "Subject: two\n\n2\n"), Is.EqualTo("250 2.5.0 sent"));
		t.Write("/mail/lib/rewrite", "(glenda|carol)\t>>\t/mail/box/\\1/mbox\n");
		Assert.That(c.Ask("MAIL FROM:<alice@plan9.org>"), Does.StartWith("250"));
		Assert.That(c.Ask("RCPT TO:<team>"), Does.StartWith("550 5.1.1"), "no rule for team any more: refused at RCPT");
		Assert.That(Mail.Box(t, "glenda"), Does.Contain("Subject: one").And.Not.Contain("Subject: two"));
		Assert.That(Mail.Box(t, "carol"), Does.Contain("Subject: two").And.Not.Contain("Subject: one"));
	}

	/// <summary>Bad rules are logged for every message, as each run of send logs them, even though they are read once.</summary>
	[Test]
	public void RuleErrorsAreLoggedPerMessageAsSendDoes()
	{
		using var t = NewTree(acceptAll: false);
		t.Write("/mail/lib/rewrite", "bogus\n([^!]+)\t>>\t/mail/box/\\1/mbox\n");
		using var l = Listen(t, inProcess: true);
		using var c = Hello(l);
		Assert.That(Transaction(c, "alice@plan9.org", ["glenda"], "Subject: one\n\n1\n"), Is.EqualTo("250 2.5.0 sent"));
		Assert.That(Transaction(c, "alice@plan9.org", ["glenda"], "Subject: two\n\n2\n"), Is.EqualTo("250 2.5.0 sent"));
		// each message: once at RCPT (send -x), once at delivery (send -r)
		Assert.That(t.Log("mail").Count(x => x == "illegal rewrite rule: bogus"), Is.EqualTo(4));
	}

	// ---- item 2: the recipient check without a process ----

	static List<string> RcptReplies(Tree t, string mailer, params string[] rcpts)
	{
		var r = t.Run("HELO mail.plan9.org\r\nMAIL FROM:<alice@plan9.org>\r\n" + string.Concat(rcpts.Select(x => $"RCPT TO:<{x}>\r\n")) + "QUIT\r\n", "-m", mailer);
		return r.Out.Split("\r\n").Where(x => x.StartsWith("250 2.0.0 receiver") || x.StartsWith("550") || x.StartsWith("553") || x.StartsWith("450")).ToList();
	}

	/// <summary>No validateaddress, the default mailer: what send -x says decides, in stdin mode too (as the shipped script did).</summary>
	[Test]
	public void RecipientsAreCheckedInProcessWithoutTheScript()
	{
		using var t = NewTree(acceptAll: false);
		Assert.That(RcptReplies(t, t.P("/bin/upas/send"), "glenda", "testhost!bob", "nobody", "example.net!zed", "9fans.net!nobody", "a/b"), Is.EqualTo(new[] {
			"250 2.0.0 receiver is glenda",
			"250 2.0.0 receiver is testhost!bob",
			"550 5.1.1 nobody ... user unknown",
			"250 2.0.0 receiver is example.net!zed",
			"550 5.1.1 9fans.net!nobody ... user unknown",
			"550 5.1.1 a/b ... user unknown",
		}));
		// forward to nobody: send -r would bounce it, so it is refused
		t.Write("/mail/box/carol/forward", "nobody\n");
		Assert.That(RcptReplies(t, t.P("/bin/upas/send"), "carol"), Is.EqualTo(new[] { "550 5.1.1 carol ... user unknown" }));
		Assert.That(t.Log().Count(x => x.Contains("to blocked, unknown or invalid name nobody")), Is.EqualTo(1));
	}

	/// <summary>A site's own validateaddress is run, whatever the mailer; another mailer without it: every recipient accepted, as in Plan 9.</summary>
	[Test]
	public void ASitesOwnValidateaddressIsRun()
	{
		using var t = NewTree(acceptAll: false);
		Assert.That(RcptReplies(t, t.P("/bin/upas/sendp"), "nobody"), Is.EqualTo(new[] { "250 2.0.0 receiver is nobody" }));
		t.Write("/mail/lib/validateaddress", "#!/bin/sh\n[ \"$1\" = nobody ]\n", 0x1ed);
		Assert.That(RcptReplies(t, t.P("/bin/upas/send"), "nobody", "glenda"), Is.EqualTo(new[] { "250 2.0.0 receiver is nobody", "550 5.1.1 glenda ... user unknown" }));
	}
}
