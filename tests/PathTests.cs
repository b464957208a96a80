using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 10 item 4: the programs runq, send and smtpd start have ROOT/bin first on PATH (as plan9port's 9 gives),
/// so plan9port's rc scripts find upas/smtp from cron; a queue command whose program is missing leaves the job.
/// </summary>
[TestFixture]
public class PathTests
{
	const string Rc = "/usr/lib/plan9/bin/rc";
	const string CronPath = "/usr/bin:/bin";

	Tree t = null!;

	[SetUp]
	public void SetUp()
	{
		t = new Tree();
		t.Write("/sys/log/runq", "");
		t.Write("/sys/log/smtp", "");
		t.Write("/sys/log/smtp.fail", "");
		Directory.CreateDirectory(t.P("/bin/upas"));
	}

	[TearDown]
	public void TearDown() => t.Dispose();

	/// <summary>Our programs installed in the test tree, as mk install puts them (libMonoPosixHelper.so beside them).</summary>
	void Install(params string[] progs)
	{
		foreach (var f in progs.Append("libMonoPosixHelper.so")) {
			var src = Path.Join(Repo.Dir, "bin/upas", f);
			if (f.EndsWith(".so") && !File.Exists(src))
				continue;
			File.Copy(f.EndsWith(".so") ? src : Repo.Bin(f), t.P("/bin/upas/" + f));
			File.SetUnixFileMode(t.P("/bin/upas/" + f), (UnixFileMode)0x1ed);
		}
	}

	void InstallSmtp() => Install("smtp");

	/// <summary>plan9port's mail/lib/remotemail, a few lines of rc: programs by their relative names upas/….</summary>
	void Remotemail(string smtp = "upas/smtp") => t.Write("/mail/lib/remotemail", $$"""
		#!{{Rc}}
		shift
		sender=$1
		shift
		addr=$1
		shift
		fd=`{upas/aliasmail -f $sender}
		switch($fd){
		case *.*
			;
		case *
			fd=YOURDOMAIN.DOM
		}
		exec {{smtp}} -h $fd $addr $sender $*

		""", 0x1ed);

	/// <summary>A job as send/qer queue it: D. then C. ("smtp sender dest rcpt…").</summary>
	string Enqueue(string dest, string rcpt)
	{
		var id = "000042";
		var dir = t.P("/mail/queue/alice");
		Directory.CreateDirectory(dir);
		File.WriteAllText(Path.Join(dir, "D." + id), "From alice Tue Dec  1 10:00:00 GMT 2026 remote from testhost\nSubject: from cron\n\nhello\n");
		File.WriteAllText(Path.Join(dir, "C." + id), $"smtp alice {dest} {rcpt} \n");
		return id;
	}

	/// <summary>runq as cron runs it: PLAN9 set, PATH only /usr/bin:/bin.</summary>
	(int Exit, string Err) CronRunq(string cmd = "/mail/lib/remotemail")
	{
		var psi = t.Prog(Repo.Bin("runq"), ["-a", "/mail/queue", cmd]);
		psi.Environment["PATH"] = CronPath;
		var (_, err, exit) = Tree.Exec(psi, [], 90_000);
		return (exit, err);
	}

	string[] Queue() =>
		Directory.GetFiles(t.P("/mail/queue/alice")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

	[Test]
	public void SearchPathPutsTheTreesBinFirstOnce()
	{
		var bin = Path.Join(Upas.Root.Dir, "bin");
		Assert.That(ChildEnv.SearchPath("/usr/bin:/bin"), Is.EqualTo($"{bin}:/usr/bin:/bin"));
		Assert.That(ChildEnv.SearchPath($"/bin:{bin}:/usr/bin"), Is.EqualTo($"{bin}:/bin:/usr/bin"));
		Assert.That(ChildEnv.SearchPath(null), Is.EqualTo($"{bin}:/usr/local/bin:/usr/bin:/bin"));
	}

	[Test]
	public void Plan9portRemotemailFromCronReachesTheServer()
	{
		Assume.That(File.Exists(Rc), "9base's rc is not installed (sys/lib/upas/prereq)");
		InstallSmtp();
		// plan9port's aliasmail -f prints the sending domain; here a stand-in that says example.org
		t.Write("/bin/upas/aliasmail", "#!/bin/sh\necho example.org\n", 0x1ed);
		Remotemail();
		using var srv = new ScriptServer();
		var id = Enqueue(srv.Dial, "bob@example.net");

		var r = CronRunq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(srv.Log, Does.Contain("MAIL FROM:<alice@example.org>"), "the domain aliasmail -f gave");
		Assert.That(srv.Log, Does.Contain("RCPT TO:<bob@example.net>"));
		Assert.That(srv.Messages.Select(m => Encoding.Latin1.GetString(m)), Has.Some.Contains("Subject: from cron"));
		Assert.That(Directory.GetFiles(t.P("/mail/queue/alice")), Is.Empty, "delivered: the job is gone");
		Assert.That(t.Log("runq"), Does.Contain($"removing alice/C.{id}"));
	}

	[Test]
	public void AnRcScriptWhoseExecFailsLeavesTheJob()
	{
		Assume.That(File.Exists(Rc), "9base's rc is not installed (sys/lib/upas/prereq)");
		t.Write("/bin/upas/aliasmail", "#!/bin/sh\necho example.org\n", 0x1ed);
		Remotemail("upas/nosuchsmtp"); // 9base rc: the failed exec is said on stderr, and rc spins or exits 0
		var id = Enqueue("net!example.net", "bob@example.net");

		var r = CronRunq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Queue(), Is.EqualTo(new[] { "C." + id, "D." + id, "E." + id }), "the job stays for a retry");
		Assert.That(t.Read($"/mail/queue/alice/E.{id}"), Does.Contain("upas/nosuchsmtp: No such file or directory"));
		Assert.That(t.Log("runq").Where(l => l.StartsWith("message: ")).Single(), Does.EndWith("- Retry"));
		Assert.That(t.Log("runq"), Has.None.Contains("returning"));
	}

	[TestCase("#!/bin/sh\nexec upas/nosuchsmtp \"$@\"\n", TestName = "ShExecOfAMissingProgramIs127AndARetry")]
	[TestCase("#!/bin/sh\necho 'upas/nosuchsmtp: not found' >&2\nexit 0\n", TestName = "AnExit0ThatSaysNotFoundIsARetry")]
	[TestCase("#!/bin/sh\nupas/nosuchsmtp \"$@\"\nexit 1\n", TestName = "AnExit1AfterNotFoundIsARetryNotABounce")]
	public void AMissingProgramLeavesTheJob(string script)
	{
		t.Write("/mail/lib/remotemail", script, 0x1ed);
		t.Write("/bin/upas/send", "#!/bin/sh\ncat > \"$PLAN9/bounced\"\n", 0x1ed);
		var id = Enqueue("net!example.net", "bob@example.net");

		var r = CronRunq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Queue(), Is.EqualTo(new[] { "C." + id, "D." + id, "E." + id }), "the job stays for a retry");
		Assert.That(t.Log("runq").Where(l => l.StartsWith("message: ")).Single(), Does.EndWith("- Retry"));
		Assert.That(File.Exists(t.P("/bounced")), Is.False, "nothing bounced");
	}

	[Test]
	public void AnExit0WithoutComplaintStillRemovesTheJob()
	{
		t.Write("/mail/lib/remotemail", "#!/bin/sh\ncat >/dev/null\necho 'a warning that is no missing program' >&2\nexit 0\n", 0x1ed);
		Enqueue("net!example.net", "bob@example.net");
		CronRunq();
		Assert.That(Queue(), Is.Empty);
	}

	[Test]
	public void RunqsCommandHasTheTreesBinFirst()
	{
		t.Write("/mail/lib/remotemail", "#!/bin/sh\necho \"$PATH\" > \"$PLAN9/path\"\ncat >/dev/null\n", 0x1ed);
		Enqueue("net!example.net", "bob@example.net");
		CronRunq();
		Assert.That(t.Read("/path").TrimEnd('\n'), Is.EqualTo($"{t.P("/bin")}:{CronPath}"));
	}

	[Test]
	public void SmtpdsMailerHasTheTreesBinFirst()
	{
		t.Write("/mailer", "#!/bin/sh\necho \"$PATH\" > \"$PLAN9/path\"\ncat >/dev/null\n", 0x1ed);
		var env = new Dictionary<string, string> { ["PATH"] = CronPath };
		var r = t.Run(Encoding.Latin1.GetBytes("HELO client.9fans.net\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"), [], env);
		Assert.That(r.Out, Does.Contain("250"), r.Err);
		Assert.That(t.Read("/path").TrimEnd('\n'), Is.EqualTo($"{t.P("/bin")}:{CronPath}"));
	}

	[Test]
	public void Plan9portQmailFromASystemdSmtpdReachesTheServer()
	{
		Assume.That(File.Exists(Rc), "9base's rc is not installed (sys/lib/upas/prereq)");
		Install("smtp", "qer", "runq", "aliasmail");
		Remotemail();
		Directory.CreateDirectory(t.P("/mail/queue"));
		File.SetUnixFileMode(t.P("/mail/queue"), (UnixFileMode)0x3ff);
		// plan9port's qmail (without vf): queue with upas/qer, start upas/runq, by their relative names
		t.Write("/mail/lib/qmail", $$"""
			#!{{Rc}}
			upas/qer $PLAN9/mail/queue smtp $* || exit 'qer failed'
			upas/runq $PLAN9/mail/queue $PLAN9/mail/lib/remotemail </dev/null >/dev/null >[2=1] &
			exit ''

			""", 0x1ed);
		using var srv = new ScriptServer();
		// the mailer smtpd runs: what send's | rule does for a remote address, qmail sender net!host rcpt
		t.Write("/mailer", $"#!{Rc}\nexec $PLAN9/mail/lib/qmail alice '{srv.Dial}' $3\n", 0x1ed);
		var env = new Dictionary<string, string> { ["PATH"] = CronPath };
		var r = t.Run(Encoding.Latin1.GetBytes("HELO client.9fans.net\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\nSubject: through qmail\r\n\r\nhi\r\n.\r\nQUIT\r\n"), [], env);
		Assert.That(r.Out, Does.Contain("250 2.5.0 sent"), r.Err);
		Wait.Until(() => srv.Messages.Any(m => Encoding.Latin1.GetString(m).Contains("Subject: through qmail")),
			() => string.Join(" | ", srv.Log) + " " + (File.Exists(t.P("/sys/log/runq")) ? t.Read("/sys/log/runq") : ""), TimeSpan.FromSeconds(60));
		Assert.That(srv.Log, Does.Contain("RCPT TO:<bob@example.net>"));
		Wait.Until(() => Directory.GetFiles(t.P("/mail/queue"), "*", SearchOption.AllDirectories).Length == 0,
			() => "the delivered job is removed", TimeSpan.FromSeconds(30));
	}
}
