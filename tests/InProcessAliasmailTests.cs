using System.Diagnostics;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// The shipped rewrite's translate rule runs this tree's aliasmail: under smtpd -L its lookup is made in process,
/// with the program's answers, and an edited names.local is seen by the next message.
/// </summary>
[TestFixture]
public class InProcessAliasmailTests
{
	/// <summary>The default tree's routing (shipped rewrite, namefiles, names.local with a list "team"), the real send and aliasmail.</summary>
	static Tree DefaultTree()
	{
		var t = new Tree("defaultdomain 9fans.net\ngreetdelay 0\n");
		t.Write("/sys/log/mail", "");
		foreach (var u in new[] { "glenda", "alice", "carol" })
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/rewrite"), t.P("/mail/lib/rewrite"), true);
		foreach (var f in new[] { "namefiles", "names.local" })
			File.Copy(Path.Join(Repo.Dir, "mail/lib", f), t.P("/mail/lib/" + f), true);
		File.AppendAllText(t.P("/mail/lib/names.local"), "team\tglenda alice\n");
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		File.CreateSymbolicLink(t.P("/bin/upas/aliasmail"), Repo.Bin("aliasmail"));
		return t;
	}

	static Client Hello(Listening l)
	{
		var c = l.Connect();
		c.Reply();
		Assert.That(c.Ask("HELO mail.plan9.org"), Does.StartWith("250"));
		return c;
	}

	/// <summary>MAIL, RCPT for each, DATA: every reply in order.</summary>
	static List<string> Transaction(Client c, string[] rcpts, string body)
	{
		var replies = new List<string> { c.Ask("MAIL FROM:<alice@plan9.org>") };
		foreach (var r in rcpts)
			replies.Add(c.Ask($"RCPT TO:<{r}>"));
		var d = c.Ask("DATA");
		replies.Add(d);
		if (d.StartsWith("354")) {
			c.Send(body.Replace("\n", "\r\n") + ".\r\n");
			replies.Add(string.Join("\n", c.Reply()));
		}
		return replies;
	}

	[Test]
	public void TheShippedTranslateRuleRunsWithoutAProcess()
	{
		if (!Repo.Have("strace"))
			Assert.Ignore("no strace");
		using var t = DefaultTree();
		using var l = new Listening(t, "127.0.0.1", "-m", t.P("/bin/upas/send"));
		var log = t.P("/strace.out");
		using var st = Process.Start(new ProcessStartInfo("strace", ["-f", "-qq", "-e", "trace=execve,fork,vfork", "-o", log, "-p", l.P.Id.ToString()]) { RedirectStandardError = true, UseShellExecute = false })!;
		Wait.Until(() => File.Exists(log), () => "strace attached", TimeSpan.FromSeconds(10));
		Thread.Sleep(300);
		using (var c = Hello(l)) {
			Assert.That(c.Ask("MAIL FROM:<alice@plan9.org>"), Does.StartWith("250"));
			Assert.That(c.Ask("RCPT TO:<nobody@9fans.net>"), Does.StartWith("550 5.1.1 ").And.EndWith("nobody ... user unknown"));
			Assert.That(c.Ask("RSET"), Does.StartWith("250"));
			var r = Transaction(c, ["team@9fans.net", "postmaster"], "Subject: x\n\nhi\n");
			Assert.That(r.Take(3).ToList(), Has.All.StartWith("250 "), string.Join("\n", r));
			Assert.That(r[^1], Is.EqualTo("250 2.5.0 sent"));
			c.Ask("QUIT");
		}
		Assert.That(Mail.Split(Mail.Box(t, "glenda")), Has.Count.EqualTo(1), "glenda once, by team and by postmaster");
		Assert.That(Mail.Split(Mail.Box(t, "alice")), Has.Count.EqualTo(1));
		Process.Start("kill", ["-INT", st.Id.ToString()])!.WaitForExit();
		st.WaitForExit(10_000);
		var calls = File.ReadAllLines(log).Where(x => x.Contains("execve(") || x.Contains("fork(")).ToList();
		Assert.That(calls, Is.Empty, string.Join("\n", calls));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("delivered alice From plan9.org!alice ").And.Contain(" (9fans.net!team) "));
	}

	[Test]
	public void AnEditedNamesFileIsSeenByTheNextMessage()
	{
		using var t = DefaultTree();
		using var l = new Listening(t, "127.0.0.1", "-m", t.P("/bin/upas/send"));
		using var c = Hello(l);
		Assert.That(Transaction(c, ["team"], "Subject: 1\n\none\n")[^1], Is.EqualTo("250 2.5.0 sent"));
		// the same size, so that only the file's times and contents tell the change
		var names = File.ReadAllText(t.P("/mail/lib/names.local")).Replace("team\tglenda alice\n", "team\tcarol alice\n");
		File.WriteAllText(t.P("/mail/lib/names.local"), names);
		Assert.That(Transaction(c, ["team"], "Subject: 2\n\ntwo\n")[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(Mail.Split(Mail.Box(t, "glenda")), Has.Count.EqualTo(1));
		Assert.That(Mail.Split(Mail.Box(t, "alice")), Has.Count.EqualTo(2));
		Assert.That(Mail.Box(t, "carol"), Does.Contain("Subject: 2").And.Not.Contain("Subject: 1"));
	}

	[Test]
	public void ATranslateCommandOfItsOwnStillRunsInAShell()
	{
		using var t = DefaultTree();
		// another program (a shell word list that is not our aliasmail): run by sh, its output routed again
		t.Write("/mail/lib/rewrite", File.ReadAllText(t.P("/mail/lib/rewrite")).Replace("\"$PLAN9/bin/upas/aliasmail -- '&'\"", "\"echo local!carol\""));
		using var l = new Listening(t, "127.0.0.1", "-m", t.P("/bin/upas/send"));
		using var c = Hello(l);
		Assert.That(Transaction(c, ["whoever"], "Subject: 3\n\nthree\n")[^1], Is.EqualTo("250 2.5.0 sent"));
		Assert.That(Mail.Box(t, "carol"), Does.Contain("Subject: 3"));
	}
}
