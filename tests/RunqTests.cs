using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>runq over a throw-away queue (mailer.md §4.2): jobs enqueued as qer does (§4.1), a recording command, a stub send.</summary>
[TestFixture]
public class RunqTests
{
	Tree t = null!;

	string Cmd => t.P("/rec");
	string CountFile => t.P("/count");
	string Sent => t.P("/sent");

	[SetUp]
	public void SetUp()
	{
		t = new Tree();
		t.Write("/sys/log/runq", "");
		// the queue command: records each call, then exits with the status named in the file exit.<dest>
		t.Write("/rec", """
			#!/bin/sh
			d=$(dirname "$0")
			echo "$*" >> "$d/count"
			echo "tried $3" >&2
			cat > /dev/null
			st=0
			[ -f "$d/exit.$3" ] && st=$(cat "$d/exit.$3")
			[ -f "$d/sleep" ] && sleep $(cat "$d/sleep")
			exit $st
			""", 0x1ed);
		t.Write("/bin/upas/send", """
			#!/bin/sh
			d=$(dirname "$0")/../..
			{ echo "send $* upasname=$upasname"; cat; } >> "$d/sent"
			""", 0x1ed);
	}

	[TearDown]
	public void TearDown() => t.Dispose();

	static int seq;

	/// <summary>Enqueues a job as qer does: D.id first, C.id ("tag sender dest rcpt… " LF) last.</summary>
	string Enqueue(string sub, string sender, string dest, params string[] rcpts)
	{
		var id = (Interlocked.Increment(ref seq) % 1000000).ToString("D6");
		var dir = t.P("/mail/queue/" + sub);
		Directory.CreateDirectory(dir);
		File.WriteAllText(Path.Join(dir, "D." + id), $"From {sender} Thu Nov 26 03:35:01 UTC 2026 remote from testhost\nSubject: test {id}\n\nbody\n");
		var c = new StringBuilder($"smtp {sender} {dest} ");
		foreach (var r in rcpts)
			c.Append(r).Append(' ');
		File.WriteAllText(Path.Join(dir, "C." + id), c.Append('\n').ToString());
		return id;
	}

	(int Exit, string Err) Runq(params string[] args)
	{
		var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), args), []);
		return (exit, err);
	}

	string[] Calls() => File.Exists(CountFile) ? File.ReadAllLines(CountFile) : [];

	string[] Files(string sub) =>
		Directory.GetFiles(t.P("/mail/queue/" + sub)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

	[Test]
	public void SuccessRemovesTheJob()
	{
		var id = Enqueue("alice", "alice", "net!example.net", "bob", "carol");
		var r = Runq("-a", "/mail/queue", Cmd);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Calls(), Is.EqualTo(new[] { "smtp alice net!example.net bob carol" }));
		Assert.That(Files("alice"), Is.Empty);
		var log = t.Log("runq");
		Assert.That(log, Does.Contain($"alice/C.{id}: execing '{Cmd}' 'smtp' 'alice' 'net!example.net' 'bob' 'carol'"));
		Assert.That(log, Does.Contain($"removing alice/C.{id}"));
		Assert.That(File.Exists(Sent), Is.False);
	}

	[TestCase("missing")]
	[TestCase("not executable")]
	public void ACommandThatCannotRunIsARetry(string how)
	{
		var cmd = t.P("/nocmd");
		if (how == "not executable")
			t.Write("/nocmd", "#!/bin/sh\nexit 0\n", 0x1a4);
		var id = Enqueue("alice", "alice", "net!example.net", "bob");
		Runq("-a", "/mail/queue", cmd);
		Assert.That(Files("alice"), Is.EqualTo(new[] { "C." + id, "D." + id, "E." + id }));
		Assert.That(t.Read($"/mail/queue/alice/E.{id}"), Is.EqualTo($"runq: can't exec {cmd}: not an executable file\n"));
		Assert.That(t.Log("runq"), Does.Contain($"message: can't exec {cmd} - Retry"));
		Assert.That(File.Exists(Sent), Is.False, "nothing bounced");
	}

	[Test]
	public void RetryKeepsTheJobAndPacesTheNextTry()
	{
		t.Write("/exit.net!example.net", "2");
		var id = Enqueue("alice", "alice", "net!example.net", "bob");
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Files("alice"), Is.EqualTo(new[] { "C." + id, "D." + id, "E." + id }));
		Assert.That(t.Read($"/mail/queue/alice/E.{id}"), Is.EqualTo("tried net!example.net\n"));
		Assert.That(t.Log("runq"), Does.Contain("message: Retry, Temporary Failure"));

		Runq("-a", "/mail/queue", Cmd);	// within 30 s of the error: not tried
		Assert.That(Calls(), Has.Length.EqualTo(1));

		Runq("-a", "-E", "/mail/queue", Cmd);	// -E ignores the E. file's date
		Assert.That(Calls(), Has.Length.EqualTo(2));
		Assert.That(t.Read($"/mail/queue/alice/E.{id}"), Is.EqualTo("tried net!example.net\ntried net!example.net\n"));

		// an hour of errors, the last one 20 minutes ago: hourly now, so still not due
		var d = DateTime.UtcNow - TimeSpan.FromHours(2);
		File.SetLastWriteTimeUtc(t.P($"/mail/queue/alice/D.{id}"), d);
		File.SetLastWriteTimeUtc(t.P($"/mail/queue/alice/E.{id}"), DateTime.UtcNow - TimeSpan.FromMinutes(20));
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Calls(), Has.Length.EqualTo(2));
		File.SetLastWriteTimeUtc(t.P($"/mail/queue/alice/E.{id}"), DateTime.UtcNow - TimeSpan.FromMinutes(61));
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Calls(), Has.Length.EqualTo(3));
		Assert.That(Files("alice"), Has.Length.EqualTo(3));
	}

	[Test]
	public void PermanentFailureBounces()
	{
		t.Write("/exit.net!example.net", "1");
		var id = Enqueue("alice", "alice", "net!example.net", "bob");
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Files("alice"), Is.Empty);
		var sent = t.Read("/sent");
		Assert.That(sent, Does.StartWith("send -- alice upasname=/dev/null\n"));
		Assert.That(sent, Does.Contain("Subject: permanent failure\n"));
		Assert.That(sent, Does.Contain("Your request ``smtp net!example.net bob '' failed (code Permanent Failure).\nThe symptom was:\n\ntried net!example.net\n"));
		Assert.That(sent, Does.Contain($"Content-Type: message/rfc822\nContent-Disposition: inline\n\nSubject: test {id}\n\nbody\n--upas-"));
		Assert.That(t.Log("runq"), Does.Contain($"alice/C.{id}: returning '{Cmd}' 'smtp' 'alice' 'net!example.net' 'bob'"));
	}

	[Test]
	public void NoBounceToDevNullOrPostmaster()
	{
		t.Write("/exit.net!example.net", "1");
		Enqueue("alice", "/dev/null", "net!example.net", "bob");
		Enqueue("alice", "postmaster", "net!example.net", "bob");
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Files("alice"), Is.Empty);
		Assert.That(File.Exists(Sent), Is.False);
		Assert.That(t.Log("runq").Count(l => l.Contains(": runq - dumping p to p mail ")), Is.EqualTo(2));
	}

	[Test]
	public void GiveUpAfterTheTimeLimit()
	{
		t.Write("/exit.net!example.net", "2");
		var id = Enqueue("alice", "alice", "net!example.net", "bob");
		Runq("-a", "-t", "1", "/mail/queue", Cmd);	// young: tried, kept
		Assert.That(Files("alice"), Has.Length.EqualTo(3));
		File.SetLastWriteTimeUtc(t.P($"/mail/queue/alice/D.{id}"), DateTime.UtcNow - TimeSpan.FromHours(2));
		File.SetLastWriteTimeUtc(t.P($"/mail/queue/alice/E.{id}"), DateTime.UtcNow - TimeSpan.FromHours(2));
		Runq("-a", "-t", "1", "/mail/queue", Cmd);
		Assert.That(Calls(), Has.Length.EqualTo(1));
		Assert.That(Files("alice"), Is.Empty);
		Assert.That(t.Read("/sent"), Does.Contain("Your request ``smtp net!example.net bob '' failed (code Giveup).\nThe symptom was:\n\ntried net!example.net\n"));
	}

	[Test]
	public void AFailedDestinationIsSkippedForTheRestOfThePass()
	{
		t.Write("/exit.net!bad.example", "2");
		Enqueue("alice", "alice", "net!bad.example", "bob");
		Enqueue("alice", "alice", "net!bad.example", "carol");
		Enqueue("alice", "alice", "net!good.example", "dave");
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Calls(), Is.EqualTo(new[] { "smtp alice net!bad.example bob", "smtp alice net!good.example dave" }));
		Assert.That(Files("alice"), Has.Length.EqualTo(5)); // C. D. E. of the tried one, C. D. of the skipped one
	}

	[Test]
	public void AJobWithoutItsControlFileIsIgnored()
	{
		var dir = t.P("/mail/queue/alice");
		Directory.CreateDirectory(dir);
		File.WriteAllText(Path.Join(dir, "D.000777"), "From alice x remote from y\n\nhalf\n");
		File.WriteAllText(Path.Join(dir, "C.000778"), ""); // an empty control file, being written
		File.WriteAllText(Path.Join(dir, "D.000778"), "From alice x remote from y\n\nhalf\n");
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Calls(), Is.Empty);
		Assert.That(Files("alice"), Is.EqualTo(new[] { "C.000778", "D.000777", "D.000778" }));
		// a control file without data is removed
		File.WriteAllText(Path.Join(dir, "C.000779"), "smtp alice net!x y \n");
		Runq("-a", "/mail/queue", Cmd);
		Assert.That(Files("alice"), Is.EqualTo(new[] { "C.000778", "D.000777", "D.000778" }));
		Assert.That(t.Log("runq"), Does.Contain("no data file for C.000779"));
	}

	[Test]
	public void WithoutAOnlyTheUsersOwnDirectory()
	{
		Enqueue("alice", "alice", "net!a.example", "x");
		Enqueue(Environment.UserName, "me", "net!b.example", "y");
		Runq("/mail/queue", Cmd);
		Assert.That(Calls(), Is.EqualTo(new[] { "smtp me net!b.example y" }));
		Runq("-q", "alice", "/mail/queue", Cmd);
		Assert.That(Calls(), Has.Length.EqualTo(2));
		Assert.That(Files("alice"), Is.Empty);
	}

	[Test]
	public void TwoRunqsNeverRunAJobTwice()
	{
		t.Write("/sleep", "0.05");
		var ids = Enumerable.Range(0, 10).Select(i => Enqueue(i % 2 == 0 ? "alice" : "bob", "alice", $"net!h{i}.example", "r" + i)).ToList();
		var a = Task.Run(() => Runq("-a", "/mail/queue", Cmd));
		var b = Task.Run(() => Runq("-a", "/mail/queue", Cmd));
		Task.WaitAll(a, b);
		var calls = Calls();
		Assert.That(calls.Order(), Is.EqualTo(Enumerable.Range(0, 10).Select(i => $"smtp alice net!h{i}.example r{i}").Order()));
		Assert.That(Files("alice").Concat(Files("bob")), Is.Empty);
	}

	[Test]
	public void AJobStaysLockedWhileItsCommandRuns()
	{
		Enqueue("alice", "alice", "net!a.example", "x");
		// the command starts a second runq on the same job (-E: its E. file is brand new): it must find the job locked
		t.Write("/nest", $"""
			#!/bin/sh
			cat > /dev/null
			echo "$*" >> {CountFile}
			[ -f {t.P("/nested")} ] && exit 0
			touch {t.P("/nested")}
			{Repo.Bin("runq")} -E -q alice {t.P("/mail/queue")} {t.P("/nest")}
			""", 0x1ed);
		Runq("-a", "/mail/queue", t.P("/nest"));
		Assert.That(Calls(), Has.Length.EqualTo(1));
		Assert.That(Files("alice"), Is.Empty);
	}

	/// <summary>The default tree's remotemail → our smtp → our smtpd behind socat → the recording mailer.</summary>
	[Test]
	public void RemotemailThroughSmtpAndSmtpd()
	{
		using var srv = new SocketServer(t, []);
		File.Copy(Path.Join(Repo.Dir, "mail/lib/remotemail"), t.P("/mail/lib/remotemail"));
		File.SetUnixFileMode(t.P("/mail/lib/remotemail"), (UnixFileMode)0x1ed);
		// our smtp, told a dotted name for EHLO: the tree's sysname is smtpd's own (a client claiming it is hung up on)
		t.Write("/bin/upas/smtp", $"#!/bin/sh\nh=$1 d=$2 e=$3\nshift 3\nexec {Repo.Bin("smtp")} \"$h\" \"$d\" \"$e\" .cs.bell-labs.com \"$@\"\n", 0x1ed);
		// the sending domain comes from the sender (an RFC 2606 name in EHLO would be a Liar to smtpd)
		var id = Enqueue("alice", "alice@gnot.cs.bell-labs.com", $"tcp!127.0.0.1!{srv.Endpoint.Port}", "bob@example.com");
		var r = Runq("-a", "/mail/queue", "/mail/lib/remotemail");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Files("alice"), Is.Empty, t.Read("/sys/log/smtpd"));
		Assert.That(t.Log("smtpd"), Has.Some.Contains("ehlo from 127.0.0.1 as testhost.cs.bell-labs.com"));
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.That(caps[0].Args[^1], Is.EqualTo("example.com!bob"));
		Assert.That(caps[0].Text, Does.Contain($"Subject: test {id}\n"));
		Assert.That(t.Log("runq"), Does.Contain($"alice/C.{id}: execing '{t.P("/mail/lib/remotemail")}' 'smtp' 'alice@gnot.cs.bell-labs.com' 'tcp!127.0.0.1!{srv.Endpoint.Port}' 'bob@example.com'"));
	}

	[Test]
	public void UsageErrors()
	{
		Assert.That(Runq("/mail/queue").Exit, Is.Not.EqualTo(0));
		Assert.That(Runq("-x", "/mail/queue", Cmd).Err, Does.StartWith("usage: runq"));
	}

	// ---- -n, -s, -l, -r ----

	/// <summary>A queue command that records each call's destination and start and end times (ns) in /spans, sleeping as the sleep file says.</summary>
	string SpanCmd()
	{
		t.Write("/span", """
			#!/bin/sh
			d=$(dirname "$0")
			s=$(date +%s%N)
			cat > /dev/null
			sleep $(cat "$d/sleep")
			echo "$3 $s $(date +%s%N)" >> "$d/spans"
			""", 0x1ed);
		return t.P("/span");
	}

	(string Dest, long Start, long End)[] Spans() =>
		File.ReadAllLines(t.P("/spans")).Select(l => l.Split(' ')).Select(f => (f[0], long.Parse(f[1]), long.Parse(f[2]))).ToArray();

	/// <summary>The most calls running at one moment.</summary>
	static int MaxOverlap((string Dest, long Start, long End)[] spans)
	{
		var events = spans.SelectMany(s => new[] { (At: s.Start, Step: 1), (At: s.End, Step: -1) })
			.OrderBy(e => e.At).ThenBy(e => e.Step); // an end before a start at the same instant
		int now = 0, max = 0;
		foreach (var e in events)
			max = Math.Max(max, now += e.Step);
		return max;
	}

	void FiveDirectories()
	{
		foreach (var u in new[] { "u1", "u2", "u3", "u4", "u5" })
			Enqueue(u, u, $"net!{u}.example", "r");
	}

	[Test]
	public void WithNFiveFiveDirectoriesRunAtOnce()
	{
		FiveDirectories();
		t.Write("/sleep", "2");
		var r = Runq("-a", "-n", "5", "/mail/queue", SpanCmd());
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var spans = Spans();
		Assert.That(spans, Has.Length.EqualTo(5));
		Assert.That(MaxOverlap(spans), Is.EqualTo(5));
	}

	[Test]
	public void WithNOneDirectoriesRunInTurnInNameOrder()
	{
		FiveDirectories();
		t.Write("/sleep", "0.3");
		Runq("-a", "-n", "1", "/mail/queue", SpanCmd());
		var spans = Spans();
		Assert.That(MaxOverlap(spans), Is.EqualTo(1));
		Assert.That(spans.OrderBy(s => s.Start).Select(s => s.Dest), Is.EqualTo(new[] { "net!u1.example", "net!u2.example", "net!u3.example", "net!u4.example", "net!u5.example" }));
	}

	[Test]
	public void NCapsTheWorkers()
	{
		FiveDirectories();
		t.Write("/sleep", "1");
		Runq("-a", "-n", "2", "/mail/queue", SpanCmd());
		var spans = Spans();
		Assert.That(spans, Has.Length.EqualTo(5));
		Assert.That(MaxOverlap(spans), Is.EqualTo(2));
	}

	[Test]
	public void EachDirectoryKeepsItsOwnFailedDestinations()
	{
		t.Write("/exit.net!bad.example", "2");
		foreach (var u in new[] { "alice", "bob" }) {
			Enqueue(u, u, "net!bad.example", "x");
			Enqueue(u, u, "net!bad.example", "y");
		}
		Runq("-a", "/mail/queue", Cmd);
		// one try in each directory's pass: bob's is not skipped for alice's failure
		Assert.That(Calls().Order(), Is.EqualTo(new[] { "smtp alice net!bad.example x", "smtp bob net!bad.example x" }));
		Assert.That(Files("alice"), Has.Length.EqualTo(5));
		Assert.That(Files("bob"), Has.Length.EqualTo(5));
	}

	[DllImport("libc", EntryPoint = "open", SetLastError = true)]
	static extern int Open(string path, int flags);

	[DllImport("libc", EntryPoint = "flock", SetLastError = true)]
	static extern int Flock(int fd, int op);

	[DllImport("libc", EntryPoint = "close")]
	static extern int Close(int fd);

	const int O_DIRECTORY = 0x10000, LOCK_EX = 2, LOCK_NB = 4;

	/// <summary>Another runq's -s lock on a queue directory, from this process (flock belongs to the open file, so it conflicts).</summary>
	sealed class HeldDir : IDisposable
	{
		readonly int fd;

		public HeldDir(string dir)
		{
			fd = Open(dir, O_DIRECTORY);
			Assert.That(fd, Is.GreaterThanOrEqualTo(0), "open " + dir);
			Assert.That(Flock(fd, LOCK_EX | LOCK_NB), Is.EqualTo(0), "flock " + dir);
		}

		public void Dispose() => Close(fd);
	}

	[Test]
	public void SSkipsADirectoryLockedByAnotherRunq()
	{
		var held = Enqueue("alice", "alice", "net!a.example", "x");
		Enqueue("bob", "bob", "net!b.example", "y");
		using (new HeldDir(t.P("/mail/queue/alice"))) {
			var r = Runq("-a", "-s", "-d", "/mail/queue", Cmd);
			Assert.That(r.Exit, Is.EqualTo(0), r.Err);
			Assert.That(Calls(), Is.EqualTo(new[] { "smtp bob net!b.example y" }));
			Assert.That(Files("alice"), Is.EqualTo(new[] { "C." + held, "D." + held }));
			Assert.That(r.Err, Does.Contain("runq: alice: locked by another runq, skipped"));

			// as in Plan 9, -s only matters with -a: one directory is run whoever holds it
			Runq("-s", "-q", "alice", "/mail/queue", Cmd);
			Assert.That(Calls(), Has.Length.EqualTo(2));
			Assert.That(Files("alice"), Is.Empty);

			// and without -s the lock is not looked at
			Enqueue("alice", "alice", "net!c.example", "z");
			Runq("-a", "/mail/queue", Cmd);
			Assert.That(Calls(), Has.Length.EqualTo(3));
		}
	}

	[Test]
	public void SHoldsTheDirectoryForItsPass()
	{
		var dir = t.P("/mail/queue/alice");
		Enqueue("alice", "alice", "net!a.example", "x");
		Enqueue("alice", "alice", "net!b.example", "y");
		// the command tries the lock as a second runq would: 75 when it is taken
		t.Write("/held", $"""
			#!/bin/sh
			cat > /dev/null
			flock -n -E 75 {dir} true
			echo $? >> {t.P("/heldlog")}
			""", 0x1ed);
		Runq("-a", "-s", "/mail/queue", t.P("/held"));
		Assert.That(t.Read("/heldlog"), Is.EqualTo("75\n75\n"));
		using (new HeldDir(dir)) { } // released at the end of the run
		Runq("-a", "/mail/queue", t.P("/held"));
		Assert.That(Files("alice"), Is.Empty);
	}

	string LoadFile => t.P("/mail/queue/.runqload");

	/// <summary>The queue command that records the load count it sees while it runs.</summary>
	string LoadCmd()
	{
		t.Write("/loadcmd", $"""
			#!/bin/sh
			cat > /dev/null
			cat {LoadFile} >> {t.P("/seen")}
			""", 0x1ed);
		return t.P("/loadcmd");
	}

	[Test]
	public void LAtTheLimitRunsNothing()
	{
		var id = Enqueue("alice", "alice", "net!a.example", "x");
		File.WriteAllText(LoadFile, "2\n");
		var r = Runq("-a", "-l", "2", "/mail/queue", LoadCmd());
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(File.Exists(t.P("/seen")), Is.False);
		Assert.That(Files("alice"), Is.EqualTo(new[] { "C." + id, "D." + id }));
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("2\n"));

		// under the limit: counted in while it runs, out again at the end
		r = Runq("-a", "-l", "3", "/mail/queue", LoadCmd());
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(t.Read("/seen"), Is.EqualTo("3\n"));
		Assert.That(Files("alice"), Is.Empty);
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("2\n"));
	}

	[Test]
	public void LIgnoresAStaleCount()
	{
		Enqueue("alice", "alice", "net!a.example", "x");
		File.WriteAllText(LoadFile, "5\n");
		File.SetLastWriteTimeUtc(LoadFile, DateTime.UtcNow - TimeSpan.FromMinutes(31));
		var r = Runq("-a", "-l", "2", "/mail/queue", LoadCmd());
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(t.Read("/seen"), Is.EqualTo("1\n"));
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("0\n"));
	}

	[Test]
	public void LCreatesTheCountFileMode0666()
	{
		Enqueue(Environment.UserName, "me", "net!a.example", "x");
		var r = Runq("-l", "1", "/mail/queue", LoadCmd());	// without -a too, as Plan 9
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(t.Read("/seen"), Is.EqualTo("1\n"));
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("0\n"));
		Assert.That(File.GetUnixFileMode(LoadFile), Is.EqualTo((UnixFileMode)0x1b6));
	}

	[Test]
	public void WithoutLTheCountFileIsNotTouched()
	{
		Enqueue("alice", "alice", "net!a.example", "x");
		File.WriteAllText(LoadFile, "7\n");
		Runq("-a", "/mail/queue", LoadCmd());
		Assert.That(t.Read("/seen"), Is.EqualTo("7\n"));
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("7\n"));
	}

	[Test]
	public void AKilledRunqCountsItselfOut()
	{
		Enqueue("alice", "alice", "net!a.example", "x");
		t.Write("/sleep", "3");
		var psi = new ProcessStartInfo(Repo.Bin("runq")) { UseShellExecute = false };
		foreach (var a in new[] { "-a", "-l", "5", t.P("/mail/queue"), Cmd })
			psi.ArgumentList.Add(a);
		psi.Environment["PLAN9"] = t.Dir;
		using var p = Process.Start(psi)!;
		var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
		while (Calls().Length == 0 && DateTime.UtcNow < deadline)
			Thread.Sleep(50);
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("1\n"));
		Assert.That(Kill(p.Id, 15), Is.EqualTo(0));
		Assert.That(p.WaitForExit(10_000), Is.True);
		Assert.That(File.ReadAllText(LoadFile), Is.EqualTo("0\n"));
	}

	[DllImport("libc", EntryPoint = "kill")]
	static extern int Kill(int pid, int sig);

	[Test]
	public void RLimitsTheCommandsRunPerDirectoryPerPass()
	{
		var a = Enumerable.Range(0, 5).Select(i => Enqueue("alice", "alice", $"net!a{i}.example", "x")).ToList();
		var b = Enumerable.Range(0, 3).Select(i => Enqueue("bob", "bob", $"net!b{i}.example", "y")).ToList();
		// a job that is not due is not run, so it does not count
		File.WriteAllText(t.P($"/mail/queue/alice/E.{a[0]}"), "earlier\n");
		var r = Runq("-a", "-r", "2", "/mail/queue", Cmd);
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Calls().Order(), Is.EqualTo(new[] { "smtp alice net!a1.example x", "smtp alice net!a2.example x", "smtp bob net!b0.example y", "smtp bob net!b1.example y" }));
		Assert.That(Files("alice").Where(f => f.StartsWith("C.")), Is.EqualTo(new[] { "C." + a[0], "C." + a[3], "C." + a[4] }));
		Assert.That(Files("bob"), Is.EqualTo(new[] { "C." + b[2], "D." + b[2] }));

		// 0 is no limit
		Runq("-a", "-E", "-r", "0", "/mail/queue", Cmd);
		Assert.That(Calls(), Has.Length.EqualTo(8));
		Assert.That(Files("alice").Concat(Files("bob")), Is.Empty);
	}

	[TestCase("-n", "0")]
	[TestCase("-n", "x")]
	[TestCase("-n", "-1")]
	[TestCase("-l", "x")]
	[TestCase("-l", "-1")]
	[TestCase("-r", "x")]
	[TestCase("-r", "-2")]
	[TestCase("-t", "x")]
	[TestCase("-a", "-n")]	// -n takes the root as its value: the command line is short
	[TestCase("-a", "-l")]
	[TestCase("-a", "-r")]
	public void FlagUsageErrors(string f, string v)
	{
		Enqueue("alice", "alice", "net!a.example", "x");
		var r = Runq("-a", f, v, "/mail/queue", Cmd);
		Assert.That(r.Exit, Is.Not.EqualTo(0));
		Assert.That(r.Err, Does.StartWith("usage: runq [-adsER] [-q dir] [-l load] [-t hours] [-r nfiles] [-n nprocs] q-root cmd\n"));
		Assert.That(Calls(), Is.Empty);
	}

	[TestCase("-n")]
	[TestCase("-l")]
	[TestCase("-r")]
	public void AFlagWithoutItsValue(string f)
	{
		var r = Runq(f);
		Assert.That(r.Exit, Is.Not.EqualTo(0));
		Assert.That(r.Err, Does.StartWith("usage: runq"));
	}
}
