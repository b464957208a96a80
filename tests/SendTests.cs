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

	static Tree NewTree(params string[] users) => Tree.WithMailboxes(users);

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
		// send -x refuses what send -r bounces (exit 1); an address that can never be one says why
		var shown = user.Replace("\u0001", "\\x01");
		var x = Send(t, "", "-x", "--", user);
		var expect = user == "-r" ? "invalid address: address begins with -: -r\n"
			: user.Contains('\u0001') ? $"invalid address: control character in address: {shown}\n"
			: $"unknown user: {user}\n";
		Assert.That((x.Out, x.Exit), Is.EqualTo((expect, 1)));
		Assert.That(MailLog(t)[0], Is.EqualTo($"error {shown} From glenda Mon Nov 24 01:21:00 EST 2025"), "control bytes escaped in the log");
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
	public void MktreeMakesMailboxesAndNoValidateaddress()
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
		// smtpd asks send's code in process at RCPT: the tree ships no validateaddress (a site may install its own)
		Assert.That(File.Exists(t.P("/mail/lib/validateaddress")), Is.False, "no validateaddress installed");
		Assert.That(File.Exists(t.P("/sys/log/mail")), Is.True);
		Assert.That(Directory.Exists(t.P("/mail/queue")), Is.True);
	}

	[Test]
	public void SmtpdDeliversThroughSendAndChecksRecipients()
	{
		using var t = NewTree("glenda");
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		var r = t.Run("HELO client.9fans.net\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<nobody@example.com>\r\n" +
			"RCPT TO:<glenda@example.com>\r\nDATA\r\nSubject: hi\r\n\r\nFrom the test\r\n.\r\nQUIT\r\n", "-m", t.P("/bin/upas/send"));
		var lines = r.Out.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
		Assert.That(lines, Has.Some.StartsWith("550 5.1.1"), r.Out);
		Assert.That(lines, Has.Some.EqualTo("250 2.5.0 sent"), r.Out);
		var box = Mbox(t, "glenda");
		Assert.That(box, Does.Match(@"^From example\.org!alice [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}\n" +
			// smtpd's Authentication-Results first (issue 12): example.org has no SPF or DMARC record
			@"Authentication-Results: example\.com;\n\tspf=none smtp\.mailfrom=alice@example\.org;\n\tdkim=none;\n\tdmarc=none \(no From: field\)\n" +
			@"Received: from client\.9fans\.net "));
		Assert.That(box, Does.Contain("Subject: hi\n\n From the test\n\n"));
		Assert.That(box, Does.Not.Contain("\r"));
	}

	static string Received(int n) => string.Concat(Enumerable.Range(0, n).Select(i =>
		(i % 2 == 0 ? "Received: " : "received: ") + $"from hop{i}.example.net\n\tby hop{i + 1}.example.net; Mon Nov 24 01:21:00 EST 2025\n"));

	[Test]
	public void MoreThan32ReceivedIsAPossibleForwardLoop()
	{
		using var t = NewTree("bob", "glenda");
		const string glenda = "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \n";
		var loop = Received(33) + "Subject: loop\n\nround\n";
		var r = Send(t, glenda + loop, "-r", "bob", "example.net!carol");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(File.Exists(t.P("/mail/box/bob/mbox")), Is.False, "refused for every recipient");
		Assert.That(Jobs(t, "C"), Is.Empty);
		var box = Mbox(t, "glenda");
		Assert.That(box, Does.Contain("The attached mail from 'glenda'\nto 'bob'\nfailed with error 'possible forward loop'.\n" +
			"The attached mail from 'glenda'\nto 'example.net!carol'\nfailed with error 'possible forward loop'.\n"));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain(" error bob From glenda Mon Nov 24 01:21:00 EST 2025\nerror+ possible forward loop\n"));
		Assert.That(MailLog(t).Take(4), Is.EqualTo(new[] {
			"error bob From glenda Mon Nov 24 01:21:00 EST 2025", "error+ possible forward loop",
			"error example.net!carol From glenda Mon Nov 24 01:21:00 EST 2025", "error+ possible forward loop",
		}));
		// without -r: a failure like the others
		r = Send(t, glenda + loop, "bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((1, "send: bob: possible forward loop\n")));
		Assert.That(File.Exists(t.P("/mail/box/bob/mbox")), Is.False);
		// 32 is still fine
		var ok = Received(32) + "Subject: ok\n\nthere\n";
		r = Send(t, glenda + ok, "-r", "bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Mbox(t, "bob"), Is.EqualTo("From glenda Mon Nov 24 01:21:00 EST 2025\n" + ok + "\n"));
	}

	[Test]
	public void ForwardToLocalUserAndRemoteAddress()
	{
		using var t = NewTree("alice", "bob");
		t.Write("/mail/box/alice/forward", "bob, example.net!dave\n");
		var body = "Subject: fwd\n\nFrom me\n";
		var r = Send(t, Env + body, "-r", "example.com!alice");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(File.Exists(t.P("/mail/box/alice/mbox")), Is.False, "forwarded instead of delivered");
		Assert.That(Mbox(t, "bob"), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: fwd\n\n From me\n\n"));
		var c = Jobs(t, "C");
		Assert.That(c, Has.Length.EqualTo(1));
		Assert.That(File.ReadAllText(c[0]), Is.EqualTo("smtp example.org!alice net!example.net dave \n"));
		Assert.That(File.ReadAllText(c[0].Replace("/C.", "/D.")), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from testhost\n" + body));
		Assert.That(MailLog(t), Is.EqualTo(new[] {
			$"delivered bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 (example.com!alice) {body.Length}",
			$"remote example.net!dave From example.org!alice Mon Nov 24 01:21:00 EST 2025 (example.com!alice) {body.Length}",
		}));
	}

	[Test]
	public void ForwardToUnknownUserBouncesNamingTheAlias()
	{
		using var t = NewTree("alice", "glenda");
		t.Write("/mail/box/alice/forward", "nosuch\n");
		var r = Send(t, "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nhi\n", "-r", "alice");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Mbox(t, "glenda"), Does.Contain("The attached mail from 'glenda'\nto 'alice' alias `nosuch'\nfailed with error 'unknown user'.\n"));
		Assert.That(MailLog(t).Take(2), Is.EqualTo(new[] { "error nosuch From glenda Mon Nov 24 01:21:00 EST 2025", "error+ unknown user" }));
		Assert.That(File.Exists(t.P("/mail/box/alice/mbox")), Is.False);
	}

	[Test]
	public void ForwardIsNotAppliedTwice()
	{
		using var t = NewTree("alice", "bob", "carol");
		t.Write("/mail/box/alice/forward", "bob\n");
		t.Write("/mail/box/bob/forward", "carol\n");
		var r = Send(t, Env + "Subject: once\n\nhi\n", "-r", "alice");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Mbox(t, "bob"), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: once\n\nhi\n\n"));
		Assert.That(File.Exists(t.P("/mail/box/carol/mbox")), Is.False, "bob's forward is not applied to mail forwarded to bob");
		Assert.That(File.Exists(t.P("/mail/box/alice/mbox")), Is.False);
		// mail to bob himself follows his forward
		r = Send(t, Env + "Subject: direct\n\nhi\n", "-r", "bob");
		Assert.That(r.Exit, Is.EqualTo(0));
		Assert.That(Mbox(t, "carol"), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: direct\n\nhi\n\n"));
		Assert.That(MailLog(t), Is.EqualTo(new[] {
			"delivered bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 (alice) 18",
			"delivered carol From example.org!alice Mon Nov 24 01:21:00 EST 2025 (bob) 20",
		}));
	}

	[Test]
	public void ForwardLinesAreJoinedAndSplitAtBlanksAndCommas()
	{
		using var t = NewTree("alice", "bob", "carol", "dan", "erin");
		// a trailing backslash continues; every line counts; a user forwarding to herself keeps a copy
		t.Write("/mail/box/alice/forward", "bob \\\n\tcarol,dan\n\n  alice ,,erin\\\n");
		var r = Send(t, Env + "Subject: many\n\nhi\n", "-r", "alice");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		foreach (var u in new[] { "alice", "bob", "carol", "dan", "erin" })
			Assert.That(Mbox(t, u), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: many\n\nhi\n\n"), u);
		Assert.That(MailLog(t), Is.EqualTo(new[] {
			"delivered bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 (alice) 18",
			"delivered carol From example.org!alice Mon Nov 24 01:21:00 EST 2025 (alice) 18",
			"delivered dan From example.org!alice Mon Nov 24 01:21:00 EST 2025 (alice) 18",
			"delivered alice From example.org!alice Mon Nov 24 01:21:00 EST 2025 18",
			"delivered erin From example.org!alice Mon Nov 24 01:21:00 EST 2025 (alice) 18",
		}));
	}

	[Test]
	public void EmptyForwardDeliversToTheMailbox()
	{
		using var t = NewTree("alice");
		t.Write("/mail/box/alice/forward", " \n\\\n");
		var r = Send(t, Env + "Subject: x\n\nhi\n", "-r", "alice");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Mbox(t, "alice"), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: x\n\nhi\n\n"));
	}

	/// <summary>A pipeto writing what it got to a directory anybody may write in (it runs as nobody when the test is root).</summary>
	static string PipetoRecorder(Tree t, string user, string tail = "exit 0\n")
	{
		var outDir = t.P("/out");
		Directory.CreateDirectory(outDir);
		File.SetUnixFileMode(outDir, (UnixFileMode)0x1ff);
		t.Write($"/mail/box/{user}/pipeto", "#!/bin/sh\n" +
			$"id -un > {outDir}/id\n" +
			$"printf '%s\\n' \"$#\" \"$@\" > {outDir}/args\n" +
			$"printf '%s\\n' \"$upasname\" > {outDir}/upasname\n" +
			$"cat > {outDir}/msg\n" + tail, 0x1ed);
		return outDir;
	}

	[Test]
	public void PipetoGetsTheMessageArgumentsAndUpasname()
	{
		using var t = NewTree("bob");
		var outDir = PipetoRecorder(t, "bob");
		var body = "Subject: piped\n\nFrom unescaped\nbye\n";
		var r = Send(t, Env + body, "-r", "example.com!bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(File.ReadAllText(Path.Join(outDir, "msg")), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from testhost\n" + body));
		Assert.That(File.ReadAllText(Path.Join(outDir, "args")), Is.EqualTo($"2\nlocal!bob\n{t.P("/mail/box/bob/mbox")}\n"));
		Assert.That(File.ReadAllText(Path.Join(outDir, "upasname")), Is.EqualTo("bob\n"));
		var expect = Environment.UserName == "root" ? "nobody" : Environment.UserName;
		Assert.That(File.ReadAllText(Path.Join(outDir, "id")), Is.EqualTo(expect + "\n"), "root runs pipeto as nobody");
		Assert.That(File.Exists(t.P("/mail/box/bob/mbox")), Is.False, "the pipeto instead of the mailbox");
		Assert.That(MailLog(t), Is.EqualTo(new[] { $"remote local!bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 {body.Length}" }));
	}

	[Test]
	public void PipetoFailingIsBounced()
	{
		using var t = NewTree("bob", "glenda");
		PipetoRecorder(t, "bob", "echo 'no room at the inn' >&2\nexit 3\n");
		const string glenda = "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \n";
		var r = Send(t, glenda + "Subject: x\n\nhi\n", "-r", "bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Mbox(t, "glenda"), Does.Contain("The attached mail from 'glenda'\nto 'bob'\nfailed with error 'no room at the inn'.\n"));
		Assert.That(MailLog(t).Take(2), Is.EqualTo(new[] { "error bob From glenda Mon Nov 24 01:21:00 EST 2025", "error+ no room at the inn" }));
		Assert.That(File.Exists(t.P("/mail/box/bob/mbox")), Is.False);
		// a silent failure is named by its status; without -r it is exit 1
		PipetoRecorder(t, "bob", "exit 3\n");
		r = Send(t, glenda + "Subject: x\n\nhi\n", "bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((1, "send: bob: pipeto exited with status 3\n")));
	}

	[Test]
	public void ForwardWinsOverPipetoAndForwardedMailStillReachesAPipeto()
	{
		using var t = NewTree("alice", "bob");
		var outDir = PipetoRecorder(t, "alice");
		t.Write("/mail/box/alice/forward", "bob\n");
		PipetoRecorder(t, "bob");
		var r = Send(t, Env + "Subject: x\n\nhi\n", "-r", "alice");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(File.ReadAllText(Path.Join(outDir, "args")), Is.EqualTo($"2\nlocal!bob\n{t.P("/mail/box/bob/mbox")}\n"), "as Plan 9: only the forward is skipped");
		Assert.That(MailLog(t), Is.EqualTo(new[] { "remote local!bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 (alice) 15" }));
	}

	[Test]
	public void SymlinkedOrNonExecutableFilesAreIgnored()
	{
		using var t = NewTree("bob", "carol");
		t.Write("/elsewhere/forward", "carol\n");
		File.CreateSymbolicLink(t.P("/mail/box/bob/forward"), t.P("/elsewhere/forward"));
		var outDir = PipetoRecorder(t, "carol");
		File.Move(t.P("/mail/box/carol/pipeto"), t.P("/elsewhere/pipeto"));
		File.CreateSymbolicLink(t.P("/mail/box/bob/pipeto"), t.P("/elsewhere/pipeto"));
		var r = Send(t, Env + "Subject: x\n\nhi\n", "-r", "bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(Mbox(t, "bob"), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: x\n\nhi\n\n"));
		Assert.That(File.Exists(t.P("/mail/box/carol/mbox")), Is.False);
		Assert.That(File.Exists(Path.Join(outDir, "msg")), Is.False, "a linked pipeto is not run");
		Assert.That(MailLog(t), Is.EqualTo(new[] {
			$"{t.P("/mail/box/bob/forward")}: not a regular file, ignored",
			$"{t.P("/mail/box/bob/pipeto")}: not a regular file, ignored",
			"delivered bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 15",
		}));
		// a pipeto without an execute bit is no pipeto either
		File.Copy(t.P("/elsewhere/pipeto"), t.P("/mail/box/carol/pipeto"));
		File.SetUnixFileMode(t.P("/mail/box/carol/pipeto"), (UnixFileMode)0x1a4);
		Assert.That(Send(t, Env + "Subject: y\n\nhi\n", "-r", "carol").Exit, Is.EqualTo(0));
		Assert.That(Mbox(t, "carol"), Does.Contain("Subject: y\n"));
		Assert.That(File.Exists(Path.Join(outDir, "msg")), Is.False);
	}
}
