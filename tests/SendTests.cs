using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>upas/send, the mailer behind smtpd (mailer.md §1–§7), run as smtpd runs it.</summary>
public partial class SendTests
{
	const string Env = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \n";

	static Tree NewTree(params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		return t;
	}

	static (string Out, string Err, int Exit) Send(Tree t, string input, params string[] args)
	{
		var (o, e, x) = Tree.Exec(t.Prog(Repo.Bin("send"), args), Encoding.Latin1.GetBytes(input));
		return (Encoding.UTF8.GetString(o), e, x);
	}

	/// <summary>/sys/log/mail without the syslog prefixes; the "error+" continuation lines of an error entry have none.</summary>
	static string[] MailLog(Tree t)
	{
		var prefix = new Regex(@"^testhost [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ");
		return t.Read("/sys/log/mail").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => {
			if (!l.StartsWith("error+ ", StringComparison.Ordinal))
				Assert.That(prefix.IsMatch(l), Is.True, $"log line without the Plan 9 syslog prefix: {l}");
			return prefix.Replace(l, "");
		}).ToArray();
	}

	static string Mbox(Tree t, string user) => File.ReadAllText(t.P($"/mail/box/{user}/mbox"), Encoding.Latin1);

	static string QueueDir(Tree t)
	{
		var dirs = Directory.GetDirectories(t.P("/mail/queue"));
		Assert.That(dirs, Has.Length.EqualTo(1), "one queue subdirectory (the invoking user's)");
		return dirs[0];
	}

	static string[] Jobs(Tree t, string prefix) =>
		!Directory.Exists(t.P("/mail/queue")) ? [] :
		Directory.GetDirectories(t.P("/mail/queue")).SelectMany(d => Directory.GetFiles(d, prefix + ".*")).Order().ToArray();

	[Test]
	public void MboxIsByteExact()
	{
		using var t = NewTree("bob");
		var msg = "Received: from mx.example.org ([198.51.100.9]) by kremvax; Mon Nov 24 01:21:00 EST 2025\n" +
			"From: Alice <alice@example.org>\nTo: bob@example.com\nSubject: hello\n\n" +
			"From the desk of Alice: lunch?\n>From stays\nFromage\n From indented\n";
		var r = Send(t, Env + msg, "-r", "bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var entry = "From example.org!alice Mon Nov 24 01:21:00 EST 2025\n" +
			"Received: from mx.example.org ([198.51.100.9]) by kremvax; Mon Nov 24 01:21:00 EST 2025\n" +
			"From: Alice <alice@example.org>\nTo: bob@example.com\nSubject: hello\n\n" +
			" From the desk of Alice: lunch?\n>From stays\nFromage\n From indented\n\n";
		Assert.That(Mbox(t, "bob"), Is.EqualTo(entry));
		// a second message follows after the empty line; a body without a final LF gets one
		r = Send(t, "From glenda Tue Nov 25 10:00:00 EST 2025 remote from \nSubject: 2\n\nno newline", "-r", "bob");
		Assert.That(r.Exit, Is.EqualTo(0));
		Assert.That(Mbox(t, "bob"), Is.EqualTo(entry + "From glenda Tue Nov 25 10:00:00 EST 2025\nSubject: 2\n\nno newline\n\n"));
		var log = MailLog(t);
		Assert.That(log[0], Is.EqualTo($"delivered bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 {Encoding.Latin1.GetByteCount(msg)}"));
		Assert.That(File.Exists(t.P("/mail/box/bob/L.mbox")), Is.True);
	}

	[Test]
	public void LocalNamesAreStripped()
	{
		using var t = NewTree("bob");
		// testhost is the system name; example.com and *.example.com are ourdomains in the test tree
		var r = Send(t, Env + "Subject: x\n\nhi\n", "-r", "testhost!bob", "example.com!bob", "mx.example.com!bob", "local!bob");
		Assert.That(r.Exit, Is.EqualTo(0));
		Assert.That(Regex.Matches(Mbox(t, "bob"), "^From example", RegexOptions.Multiline), Has.Count.EqualTo(1), "one copy per mailbox");
		Assert.That(Jobs(t, "C"), Is.Empty);
	}

	[Test]
	public void ConcurrentSendersNeverInterleave()
	{
		using var t = NewTree("bob");
		const int n = 20;
		var bodies = Enumerable.Range(0, n).Select(i =>
			$"Subject: m{i}\n\n" + string.Concat(Enumerable.Range(0, 3000).Select(j => $"message {i} line {j} ...........................\n"))).ToArray();
		Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = n }, i => {
			var r = Send(t, Env + bodies[i], "-r", "bob");
			Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		});
		var box = Mbox(t, "bob");
		var entries = bodies.Select(b => "From example.org!alice Mon Nov 24 01:21:00 EST 2025\n" + b + "\n").ToList();
		var pos = 0;
		var seen = new HashSet<int>();
		while (pos < box.Length) {
			var i = entries.FindIndex(e => string.CompareOrdinal(box, pos, e, 0, e.Length) == 0);
			Assert.That(i, Is.GreaterThanOrEqualTo(0), $"no whole message at offset {pos}");
			Assert.That(seen.Add(i), Is.True, $"message {i} twice");
			pos += entries[i].Length;
		}
		Assert.That(seen, Has.Count.EqualTo(n));
	}

	[DllImport("libc", SetLastError = true)]
	static extern int flock(int fd, int op);

	[Test]
	public void LockIsHonoured()
	{
		using var t = NewTree("bob");
		File.WriteAllText(t.P("/mail/box/bob/mbox"), "");
		using var l = new FileStream(t.P("/mail/box/bob/L.mbox"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
		Assert.That(flock((int)l.SafeFileHandle.DangerousGetHandle(), 2 /* LOCK_EX */), Is.EqualTo(0));
		var task = Task.Run(() => Send(t, Env + "Subject: locked\n\nwait\n", "-r", "bob"));
		Thread.Sleep(2000);
		Assert.That(task.IsCompleted, Is.False, "send waits for the lock");
		Assert.That(Mbox(t, "bob"), Is.Empty);
		Assert.That(flock((int)l.SafeFileHandle.DangerousGetHandle(), 8 /* LOCK_UN */), Is.EqualTo(0));
		Assert.That(task.Wait(10_000), Is.True, "send delivers once the lock is free");
		Assert.That(task.Result.Exit, Is.EqualTo(0));
		Assert.That(Mbox(t, "bob"), Does.Contain("Subject: locked\n\nwait\n\n"));
	}

	static string[] Listing(string dir) =>
		Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(p => p[dir.Length..]).Order().ToArray();

	[TestCase("..")]
	[TestCase("../bob")]
	[TestCase("bob/../../x")]
	[TestCase("example.com!../../etc")]
	[TestCase(".hidden")]
	[TestCase("-r")]
	[TestCase("bo\u0001b")]
	[TestCase("b\u00e9b")]
	[TestCase("evil")]
	[TestCase("a/b")]
	public void HostileUserIsRefusedAndNothingWrittenOutside(string user)
	{
		using var t = NewTree("bob");
		var outside = Path.Join(t.Dir, "outside");
		Directory.CreateDirectory(outside);
		Directory.CreateSymbolicLink(t.P("/mail/box/evil"), outside);
		Directory.CreateDirectory(t.P("/mail/box/a"));
		var before = Listing(t.Dir);
		var r = Send(t, "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nhi\n", "-r", "--", user);
		Assert.That(r.Exit, Is.EqualTo(0), "bounced, as Plan 9's send -r");
		var after = Listing(t.Dir).Except(before).ToArray();
		Assert.That(after.Where(p => !p.StartsWith("/mail/box/", StringComparison.Ordinal)), Is.Empty);
		Assert.That(Directory.GetFileSystemEntries(outside), Is.Empty);
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/box/a")), Is.Empty);
		Assert.That(Send(t, "", "-x", "--", user).Out, Is.EqualTo($"unknown user: {user}\n"));
		Assert.That(MailLog(t)[0], Is.EqualTo($"error {user} From glenda Mon Nov 24 01:21:00 EST 2025"));
	}

	[Test]
	public void UnknownLocalUserBouncesToLocalSender()
	{
		using var t = NewTree("glenda");
		var msg = "Subject: hi\n\nFrom here\n";
		var r = Send(t, "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \n" + msg, "-r", "nobody");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var box = Mbox(t, "glenda");
		Assert.That(box, Does.StartWith("From /dev/null "));
		Assert.That(box, Does.Contain("\nTo: glenda\nSubject: bounced mail\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"upas-"));
		Assert.That(box, Does.Contain("The attached mail from 'glenda'\nto 'nobody'\nfailed with error 'unknown user'.\n"));
		Assert.That(box, Does.Contain("Content-Type: message/rfc822\nContent-Disposition: inline\n\nSubject: hi\n\n From here\n--upas-"));
		Assert.That(Regex.IsMatch(box, "boundary=\"upas-[a-z]{26}\"\n"), Is.True);
		Assert.That(box, Does.EndWith("--\n\n"));
		var log = MailLog(t);
		Assert.That(log[0], Is.EqualTo("error nobody From glenda Mon Nov 24 01:21:00 EST 2025"));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("\nerror+ unknown user\n"));
		Assert.That(log[^1], Does.StartWith("delivered glenda From /dev/null "));
	}

	[Test]
	public void UnknownLocalUserBouncesToRemoteSenderThroughTheQueue()
	{
		using var t = NewTree("glenda");
		var r = Send(t, Env + "Subject: hi\n\nbody\n", "-r", "nobody@example.com");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var c = Jobs(t, "C");
		Assert.That(c, Has.Length.EqualTo(1));
		Assert.That(File.ReadAllText(c[0]), Is.EqualTo("smtp /dev/null net!example.org alice \n"));
		var d = File.ReadAllText(c[0].Replace("/C.", "/D."));
		Assert.That(d, Does.StartWith("From /dev/null "));
		Assert.That(d, Does.Contain(" remote from testhost\nFrom: postmaster@example.com\n"));
		Assert.That(d, Does.Contain("to 'nobody@example.com'\nfailed with error 'unknown user'."));
	}

	[Test]
	public void BulkAndNullSenderAreNotBounced()
	{
		using var t = NewTree("glenda");
		Assert.That(Send(t, "From /dev/null Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nhi\n", "-r", "nobody").Exit, Is.EqualTo(0));
		Assert.That(Send(t, Env + "Precedence: bulk\nSubject: x\n\nhi\n", "-r", "nobody").Exit, Is.EqualTo(0));
		Assert.That(Jobs(t, "C"), Is.Empty);
		Assert.That(File.Exists(t.P("/mail/box/glenda/mbox")), Is.False);
	}

	[Test]
	public void WithoutDashRFailureIsExitOne()
	{
		using var t = NewTree("glenda");
		var r = Send(t, Env + "Subject: x\n\nhi\n", "nobody");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.Contain("nobody: unknown user"));
		Assert.That(Send(t, "", "-q", "x").Exit, Is.Not.EqualTo(0));
		Assert.That(Send(t, "", "-r").Exit, Is.Not.EqualTo(0));
	}

	[Test]
	public void TemporaryFailureIsExitOneNeverABounce()
	{
		using var t = NewTree("bob", "glenda");
		Directory.CreateDirectory(t.P("/mail/box/bob/mbox")); // cannot be appended to
		var r = Send(t, "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nhi\n", "-r", "bob");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.StartWith("Mail mail file cannot be opened"));
		Assert.That(File.Exists(t.P("/mail/box/glenda/mbox")), Is.False, "no bounce: smtpd says 450 and the client retries");
		File.WriteAllText(t.P("/mail/queue"), ""); // the queue cannot be made
		r = Send(t, Env + "Subject: x\n\nhi\n", "-r", "example.net!carol");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.StartWith("Mail "));
	}

	[Test]
	public void DashXAnswers()
	{
		using var t = NewTree("glenda");
		Assert.That(Send(t, "", "-x", "glenda"), Is.EqualTo(("local!glenda\n", "", 0)));
		Assert.That(Send(t, "", "-x", "example.com!glenda").Out, Is.EqualTo("local!glenda\n"));
		Assert.That(Send(t, "", "-x", "localhost!glenda").Out, Is.EqualTo("local!glenda\n"));
		Assert.That(Send(t, "", "-x", "bob").Out, Is.EqualTo("unknown user: bob\n"));
		Assert.That(Send(t, "", "-x", "example.com!bob").Out, Is.EqualTo("unknown user: example.com!bob\n"));
		Assert.That(Send(t, "", "-x", "example.net!bob").Out, Is.EqualTo("example.net!bob\n"));
		Assert.That(Send(t, "", "-x", "[192.0.2.7]!joe").Out, Is.EqualTo("[192.0.2.7]!joe\n"));
	}

	[Test]
	public void RemoteRecipientsAreQueuedDThenC()
	{
		using var t = NewTree("glenda");
		var body = "Subject: out\n\nFrom me\nbye\n";
		var r = Send(t, Env + body, "-r", "example.net!bob", "example.net!carol", "other.org!dan", "glenda");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var q = QueueDir(t);
		var c = Jobs(t, "C");
		var d = Jobs(t, "D");
		Assert.That(c, Has.Length.EqualTo(2));
		Assert.That(d, Has.Length.EqualTo(2));
		Assert.That(c.Select(p => Path.GetFileName(p)).All(n => Regex.IsMatch(n, @"^C\.[0-9a-z][0-9]{5}$")), Is.True);
		var ctl = c.Select(File.ReadAllText).Order().ToArray();
		Assert.That(ctl, Is.EqualTo(new[] {
			"smtp example.org!alice net!example.net bob carol \n",
			"smtp example.org!alice net!other.org dan \n",
		}));
		foreach (var f in d)
			Assert.That(File.ReadAllText(f), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from testhost\n" + body));
		foreach (var f in c) {
			Assert.That(File.Exists(f.Replace("/C.", "/D.")), Is.True);
			Assert.That((int)File.GetUnixFileMode(f), Is.EqualTo(0x1b4), "C. mode 0664");
		}
		Assert.That(Mbox(t, "glenda"), Does.Contain("\n From me\n"), "local copy escaped, queued copy verbatim");
		var log = MailLog(t);
		Assert.That(log, Does.Contain($"remote example.net!bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 {body.Length}"));
		Assert.That(log, Does.Contain($"remote other.org!dan From example.org!alice Mon Nov 24 01:21:00 EST 2025 {body.Length}"));
		Assert.That(Directory.Exists(q), Is.True);
	}

	[Test]
	public void RunqIsStartedDetached()
	{
		using var t = NewTree();
		t.Write("/bin/upas/runq", "#!/bin/sh\nsleep 3\nprintf '%s\\n' \"$@\" > \"$PLAN9/runq.args\"\n", 0x1ed);
		var sw = Stopwatch.StartNew();
		var r = Send(t, Env + "Subject: x\n\nhi\n", "-r", "example.net!bob");
		Assert.That(r.Exit, Is.EqualTo(0));
		Assert.That(sw.ElapsedMilliseconds, Is.LessThan(2500), "send does not wait for runq");
		for (var i = 0; i < 100 && !File.Exists(t.P("/runq.args")); i++)
			Thread.Sleep(100);
		Assert.That(File.ReadAllText(t.P("/runq.args")), Is.EqualTo($"-a\n{t.P("/mail/queue")}\n{t.P("/mail/lib/remotemail")}\n"));
	}

	[Test]
	public void MktreeMakesMailboxesAndInstallsValidateaddress()
	{
		using var t = new Tree();
		Directory.CreateDirectory(t.P("/mail/box/ken"));
		var psi = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		psi.ArgumentList.Add(Path.Join(Repo.Dir, "sys/lib/upas/mktree"));
		psi.ArgumentList.Add(t.Dir);
		var (_, err, exit) = Tree.Exec(psi, []);
		Assert.That((exit, err), Is.EqualTo((0, "")));
		foreach (var u in new[] { "glenda", "ken" }) {
			Assert.That(File.ReadAllBytes(t.P($"/mail/box/{u}/mbox")), Is.Empty);
			Assert.That((int)File.GetUnixFileMode(t.P($"/mail/box/{u}/mbox")), Is.EqualTo(0x192), "mbox mode 0622");
		}
		Assert.That((int)File.GetUnixFileMode(t.P("/mail/lib/validateaddress")) & 0x49, Is.EqualTo(0x49), "validateaddress executable");
		Assert.That(File.Exists(t.P("/sys/log/mail")), Is.True);
		Assert.That(Directory.Exists(t.P("/mail/queue")), Is.True);
	}

	[Test]
	public void ValidateaddressAsksSend()
	{
		using var t = NewTree("glenda");
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/validateaddress"), t.P("/mail/lib/validateaddress"));
		int Run(string rcpt, bool withEnv)
		{
			var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
			psi.ArgumentList.Add(t.P("/mail/lib/validateaddress"));
			psi.ArgumentList.Add(rcpt);
			if (withEnv)
				psi.Environment["PLAN9"] = t.Dir;
			else
				psi.Environment.Remove("PLAN9");
			return Tree.Exec(psi, []).Exit;
		}
		Assert.That(Run("example.com!glenda", true), Is.EqualTo(0));
		Assert.That(Run("example.com!nobody", true), Is.Not.EqualTo(0));
		Assert.That(Run("example.net!bob", true), Is.EqualTo(0));
		// without $PLAN9 the tree is the one the script is in
		Assert.That(Run("glenda", false), Is.EqualTo(0));
		Assert.That(Run("nobody", false), Is.Not.EqualTo(0));
	}

	[Test]
	public void SmtpdDeliversThroughSendAndValidateaddress()
	{
		using var t = NewTree("glenda");
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/validateaddress"), t.P("/mail/lib/validateaddress"));
		File.SetUnixFileMode(t.P("/mail/lib/validateaddress"), (UnixFileMode)0x1ed);
		var r = t.Run("HELO client.9fans.net\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<nobody@example.com>\r\n" +
			"RCPT TO:<glenda@example.com>\r\nDATA\r\nSubject: hi\r\n\r\nFrom the test\r\n.\r\nQUIT\r\n", "-m", t.P("/bin/upas/send"));
		var lines = r.Out.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
		Assert.That(lines, Has.Some.StartsWith("550 5.1.1"), r.Out);
		Assert.That(lines, Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		var box = Mbox(t, "glenda");
		Assert.That(box, Does.Match(@"^From example\.org!alice [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}\nReceived: from client\.9fans\.net "));
		Assert.That(box, Does.Contain("Subject: hi\n\n From the test\n\n"));
		Assert.That(box, Does.Not.Contain("\r"));
	}
}
