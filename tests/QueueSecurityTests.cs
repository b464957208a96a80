using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9, the queue side (decisions #22, #24): no address becomes an option of send, runq, remotemail or
/// smtp; control-file words survive exactly, end to end to an SMTP server; a queue directory another user
/// made is never used.
/// </summary>
[TestFixture]
public class QueueSecurityTests
{
	const string Date = "Mon Nov 24 01:21:00 EST 2025";

	static Tree NewTree(params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		t.Write("/sys/log/runq", "");
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		return t;
	}

	static (string Out, string Err, int Exit) Send(Tree t, string input, params string[] args)
	{
		var (o, e, x) = Tree.Exec(t.Prog(Repo.Bin("send"), args), Encoding.Latin1.GetBytes(input));
		return (Encoding.Latin1.GetString(o), e, x);
	}

	internal static void RequireRoot()
	{
		if (Mono.Unix.Native.Syscall.geteuid() != 0 || !File.Exists("/usr/bin/setpriv"))
			Assert.Ignore("needs root and setpriv(1): the attacks are another user's");
	}

	/// <summary>Runs a shell script as nobody (setpriv, no other groups), as a local attacker would.</summary>
	internal static void AsNobody(string script)
	{
		var psi = new ProcessStartInfo("/usr/bin/setpriv") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		foreach (var a in new[] { "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/bin/sh", "-c", "umask 022; set -e; " + script })
			psi.ArgumentList.Add(a);
		var (_, err, exit) = Tree.Exec(psi, []);
		Assert.That(exit, Is.EqualTo(0), "as nobody: " + err);
	}

	// ---- item 4: addresses as options ----

	[TestCase("-f")]
	[TestCase("-oQ/tmp@example.net")]
	[TestCase("")]
	[TestCase("a\u0001b@example.net")]
	[TestCase("a\u000bb@example.net")]
	[TestCase("<a@example.net>")]
	[TestCase("a\r\nRSET@example.net")]
	public void SendDashXRefusesWhatCanNeverBeAnAddress(string addr)
	{
		using var t = NewTree("glenda");
		var r = Send(t, "", "-x", "--", addr);
		Assert.That(r.Exit, Is.EqualTo(1), r.Out);
		Assert.That(r.Out, Does.StartWith("invalid address: "));
		Assert.That(r.Out.TrimEnd('\n'), Does.Not.Contain("\n").And.Not.Contain("\r").And.Not.Contain("\u0001"), "one printable line");
	}

	[Test]
	public void SendDashXRefusesWhatSendRWouldBounce()
	{
		using var t = NewTree("glenda", "ken");
		Assert.That(Send(t, "", "-x", "--", "glenda"), Is.EqualTo(("local!glenda\n", "", 0)));
		Assert.That(Send(t, "", "-x", "--", "nobody"), Is.EqualTo(("unknown user: nobody\n", "", 1)));
		Assert.That(Send(t, "", "-x", "--", "example.net!bob"), Is.EqualTo(("example.net!bob\n", "", 0)));
		// ken forwards to a user that does not exist: send -r would bounce, so send -x refuses
		t.Write("/mail/box/ken/forward", "nosuch\n");
		Assert.That(Send(t, "", "-x", "--", "ken"), Is.EqualTo(("unknown user: ken\n", "", 1)));
		t.Write("/mail/box/ken/forward", "glenda example.net!bob\n");
		Assert.That(Send(t, "", "-x", "--", "ken"), Is.EqualTo(("local!glenda\nexample.net!bob\n", "", 0)));
	}

	[Test]
	public void SendRBouncesAnAddressWithAControlByteInsteadOfQueueingIt()
	{
		using var t = NewTree("glenda");
		var r = Send(t, $"From glenda {Date} remote from \nSubject: x\n\nhi\n", "-r", "--", "a\u000b-f@example.net");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Directory.Exists(t.P("/mail/queue")) ? Directory.GetFiles(t.P("/mail/queue"), "C.*", SearchOption.AllDirectories) : [], Is.Empty, "nothing queued");
		Assert.That(Mail.Box(t, "glenda"), Does.Contain("to 'a\\x0b-f@example.net'\nfailed with error 'control character in address'."));
	}

	[Test]
	public void SendAndRunqEndOptionsAtDashDash()
	{
		using var t = NewTree("glenda");
		// -x after -- is a recipient (refused and bounced), not send's -x
		var r = Send(t, $"From glenda {Date} remote from \nSubject: x\n\nhi\n", "-r", "--", "-x");
		Assert.That((r.Out, r.Err, r.Exit), Is.EqualTo(("", "", 0)));
		Assert.That(Mail.Box(t, "glenda"), Does.Contain("to '-x'\nfailed with error 'address begins with -'."));
		Directory.CreateDirectory(t.P("/mail/queue"));
		var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), ["-a", "--", "/mail/queue", "/bin/true"]), []);
		Assert.That((exit, err), Is.EqualTo((0, "")));
	}

	// ---- item 5: control-file words, end to end ----

	/// <summary>
	/// The test's ROOT/bin/upas/smtp, as an administrator's smarthost: records its arguments, sends everything to
	/// the recording server with the recipients keeping their domain (net!host user → host!user), runs our smtp.
	/// </summary>
	internal static void SmarthostSmtp(Tree t, ScriptServer srv)
	{
		t.Write("/bin/upas/smtp", $$"""
			#!/bin/sh
			d=$(dirname "$0")/../..
			printf '%s\n' "$@" > "$d/smtp.args"
			[ "$3" = "--" ] || exit 3
			h=$1 dom=$2 host=${4#*!} sender=$5
			shift 5
			for r do set -- "$@" "$host!$r"; shift; done
			exec {{Repo.Bin("smtp")}} "$h" "$dom" -- '{{srv.Dial}}' "$sender" "$@"

			""", 0x1ed);
		File.Copy(Path.Join(Repo.Dir, "mail/lib/remotemail"), t.P("/mail/lib/remotemail"));
		File.SetUnixFileMode(t.P("/mail/lib/remotemail"), (UnixFileMode)0x1ed);
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
	}

	static (int Exit, string Err) Runq(Tree t)
	{
		var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), ["-a", "/mail/queue", "/mail/lib/remotemail"]), []);
		return (exit, err);
	}

	static string[] Ctl(Tree t) =>
		Directory.GetFiles(t.P("/mail/queue"), "C.*", SearchOption.AllDirectories).Select(File.ReadAllText).ToArray();

	[Test]
	public void QuotedLocalPartsSurviveTheQueueToTheNextHop()
	{
		using var t = NewTree("glenda");
		using var srv = new ScriptServer();
		SmarthostSmtp(t, srv);
		var r = Send(t, $"From \"john doe\"@corp.example {Date} remote from \nSubject: quoted\n\nhi\n",
			"-r", "--", "\"a\\\"b\"@x.example", "\"a\\\\b\"@x.example", "\"john doe\"@x.example");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		// every word in upas's %%XX form: one blank-separated word each
		Assert.That(Ctl(t), Is.EqualTo(new[] { "smtp %%22john%%20doe%%22@corp.example net!x.example %%22a%%5C%%22b%%22 %%22a%%5C%%5Cb%%22 %%22john%%20doe%%22 \n" }));
		var q = Runq(t);
		Assert.That(q.Exit, Is.EqualTo(0), q.Err);
		Assert.That(File.ReadAllLines(t.P("/smtp.args")), Is.EqualTo(new[] {
			"-h", "corp.example", "--", "net!x.example", "%%22john%%20doe%%22@corp.example", "%%22a%%5C%%22b%%22", "%%22a%%5C%%5Cb%%22", "%%22john%%20doe%%22" }));
		var cmds = srv.Log.Where(c => c.StartsWith("MAIL") || c.StartsWith("RCPT")).Select(c => c.Split(' ')[0] == "MAIL" ? c[..(c.IndexOf('>') + 1)] : c).ToArray();
		Assert.That(cmds, Is.EqualTo(new[] {
			"MAIL FROM:<\"john doe\"@corp.example>",
			"RCPT TO:<\"a\\\"b\"@x.example>",
			"RCPT TO:<\"a\\\\b\"@x.example>",
			"RCPT TO:<\"john doe\"@x.example>",
		}), string.Join("\n", srv.Log));
		Assert.That(srv.Messages, Has.Count.EqualTo(1));
		Assert.That(Ctl(t), Is.Empty, "delivered, the job removed");
		Assert.That(t.Log("runq"), Has.Some.EndsWith("execing '" + t.P("/mail/lib/remotemail") + "' 'smtp' '\"john doe\"@corp.example' 'net!x.example' '\"a\\\"b\"' '\"a\\\\b\"' '\"john doe\"'"), "the log shows the words decoded");
	}

	[Test]
	public void AVerticalTabInTheSenderIsNoOption()
	{
		using var t = NewTree("glenda");
		using var srv = new ScriptServer();
		SmarthostSmtp(t, srv);
		var r = Send(t, $"From a\u000b-f@corp.example {Date} remote from \nSubject: vt\n\nhi\n", "-r", "--", "bob@x.example");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Ctl(t), Is.EqualTo(new[] { "smtp a%%0B-f@corp.example net!x.example bob \n" }));
		Runq(t);
		// smtp got the sender as one word after --, never an -f option
		Assert.That(File.ReadAllLines(t.P("/smtp.args")), Is.EqualTo(new[] { "-h", "corp.example", "--", "net!x.example", "a%%0B-f@corp.example", "bob" }));
		var log = t.Log("runq");
		Assert.That(log, Has.Some.EndsWith("'smtp' 'a\\x0b-f@corp.example' 'net!x.example' 'bob'"), "control bytes escaped in the log");
		// the job was either delivered or, if smtp refuses the sender, bounced: never dropped unseen
		Assert.That(srv.Messages.Count == 1 || log.Any(l => l.EndsWith("returning", StringComparison.Ordinal) || l.Contains(": returning ")), Is.True, string.Join("\n", log));
	}

	[Test]
	public void RunqBouncesWithSendDashDashSender()
	{
		using var t = NewTree();
		t.Write("/bin/upas/send", "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$PLAN9/send.args\"\ncat > /dev/null\n", 0x1ed);
		t.Write("/fail", "#!/bin/sh\ncat >/dev/null\necho refused >&2\nexit 1\n", 0x1ed);
		var dir = t.P("/mail/queue/alice");
		Directory.CreateDirectory(dir);
		File.WriteAllText(Path.Join(dir, "D.000001"), $"From x {Date} remote from testhost\nSubject: x\n\nhi\n");
		File.WriteAllText(Path.Join(dir, "C.000001"), "smtp -oQ/tmp/x@example.org net!example.net bob \n");
		var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), ["-a", "/mail/queue", t.P("/fail")]), []);
		Assert.That(exit, Is.EqualTo(0), err);
		Assert.That(File.ReadAllText(t.P("/send.args")), Is.EqualTo("--\n-oQ/tmp/x@example.org\n"));
	}

	// ---- item 8: pre-claimed queue directories ----

	static string Message => $"From glenda {Date} remote from \nSubject: out\n\nhi\n";

	[Test]
	public void AQueueDirectoryAnotherUserMadeIsNotUsed()
	{
		RequireRoot();
		using var t = NewTree();
		Directory.CreateDirectory(t.P("/mail/queue"));
		File.SetUnixFileMode(t.P("/mail/queue"), (UnixFileMode)0x3ff);
		AsNobody($"mkdir -m 777 '{t.P("/mail/queue/root")}'");
		var r = Send(t, Message, "-r", "example.net!bob");
		Assert.That(r.Exit, Is.EqualTo(1), "a temporary failure: smtpd says 450");
		Assert.That(r.Err, Is.EqualTo($"Mail queue directory {t.P("/mail/queue/root")} not used: owned by uid 65534, not by uid 0\n"));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/queue/root")), Is.Empty);
	}

	[Test]
	public void AQueueDirectoryThatIsALinkIsNotUsed()
	{
		RequireRoot();
		using var t = NewTree();
		Directory.CreateDirectory(t.P("/mail/queue"));
		File.SetUnixFileMode(t.P("/mail/queue"), (UnixFileMode)0x3ff);
		Directory.CreateDirectory(t.P("/elsewhere"));
		AsNobody($"ln -s '{t.P("/elsewhere")}' '{t.P("/mail/queue/root")}'");
		var r = Send(t, Message, "-r", "example.net!bob");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.StartWith("Mail queue directory not used: ").And.Contains("not a directory"));
		Assert.That(Directory.GetFileSystemEntries(t.P("/elsewhere")), Is.Empty);
	}

	[Test]
	public void AQueueDirectoryOthersCanWriteIsNotUsed()
	{
		RequireRoot();
		using var t = NewTree();
		Directory.CreateDirectory(t.P("/mail/queue/root"));
		File.SetUnixFileMode(t.P("/mail/queue/root"), (UnixFileMode)0x1ff);
		var r = Send(t, Message, "-r", "example.net!bob");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Is.EqualTo($"Mail queue directory {t.P("/mail/queue/root")} not used: writable by others\n"));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/queue/root")), Is.Empty);
	}

	[Test]
	public void SendMakesTheQueueSticky()
	{
		using var t = NewTree();
		var r = Send(t, Message, "-r", "example.net!bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That((int)File.GetUnixFileMode(t.P("/mail/queue")), Is.EqualTo(0x3ff), "/mail/queue mode 1777");
		var sub = Directory.GetDirectories(t.P("/mail/queue")).Single();
		Assert.That((int)File.GetUnixFileMode(sub), Is.EqualTo(0x1fd), "the user's directory 0775");
		// an existing queue of ours without the sticky bit gets it
		File.SetUnixFileMode(t.P("/mail/queue"), (UnixFileMode)0x1ff);
		Send(t, Message, "-r", "example.net!bob");
		Assert.That((int)File.GetUnixFileMode(t.P("/mail/queue")), Is.EqualTo(0x3ff));
	}

	[Test]
	public void MktreeMakesTheQueueAndDumpSticky()
	{
		var dir = Path.Join(Path.GetTempPath(), "upas-mktree-" + Guid.NewGuid().ToString("N")[..8]);
		try {
			var psi = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
			psi.ArgumentList.Add(Path.Join(Repo.Dir, "sys/lib/upas/mktree"));
			psi.ArgumentList.Add(dir);
			var (_, err, exit) = Tree.Exec(psi, []);
			Assert.That((exit, err), Is.EqualTo((0, "")));
			Assert.That((int)File.GetUnixFileMode(Path.Join(dir, "mail/queue")), Is.EqualTo(0x3ff), "mail/queue 1777");
			Assert.That((int)File.GetUnixFileMode(Path.Join(dir, "mail/queue.dump")), Is.EqualTo(0x3ff), "mail/queue.dump 1777");
		} finally {
			Directory.Delete(dir, true);
		}
	}
}
