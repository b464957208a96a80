using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>A program run under strace(1): its system calls, file descriptors shown with their paths (-y).</summary>
static class Strace
{
	/// <summary>psi run under strace -f, writing the calls named (e.g. "openat,write,fsync") to traceFile.</summary>
	public static ProcessStartInfo Wrap(ProcessStartInfo psi, string traceFile, string calls)
	{
		if (!Repo.Have("strace"))
			Assert.Fail("strace is not installed (sys/lib/upas/prereq installs it)");
		var s = new ProcessStartInfo("strace") {
			RedirectStandardInput = psi.RedirectStandardInput,
			RedirectStandardOutput = psi.RedirectStandardOutput,
			RedirectStandardError = psi.RedirectStandardError,
			UseShellExecute = false,
		};
		foreach (var a in new[] { "-f", "-qq", "-y", "-s", "0", "-o", traceFile, "-e", "trace=" + calls, "--", psi.FileName })
			s.ArgumentList.Add(a);
		foreach (var a in psi.ArgumentList)
			s.ArgumentList.Add(a);
		s.Environment.Clear();
		foreach (var (k, v) in psi.Environment)
			s.Environment[k] = v;
		return s;
	}

	/// <summary>The path as strace -y shows it: links (a TMPDIR under a symbolic link, say) resolved.</summary>
	public static string Real(string path) => Mono.Unix.UnixPath.GetCompleteRealPath(path);

	/// <summary>One call: its name, the path of its first argument's descriptor (or ""), the path of a returned descriptor (or ""), the line.</summary>
	public sealed record Call(string Name, string FdPath, string Returned, string Line);

	static readonly Regex CallLine = new(@"^\d+\s+(\w+)\((?:(-?\d+|AT_FDCWD)<([^>]*)>)?.*?\)\s+=\s+(-?\d+)(?:<([^>]*)>)?");

	/// <summary>The completed calls in order (a call strace split over two lines is skipped: -f, but calls of one thread stay whole).</summary>
	public static List<Call> Read(string traceFile) =>
		File.ReadAllLines(traceFile).Select(l => CallLine.Match(l)).Where(m => m.Success)
			.Select(m => new Call(m.Groups[1].Value, m.Groups[3].Value, m.Groups[5].Value, m.Value)).ToList();
}

/// <summary>
/// Promises that once had no test: each test here fails when its promise is broken (each was seen to, by
/// breaking the code once). Where the files cannot show it, the test watches the system calls.
/// </summary>
public class WouldNoticeTests
{
	const string Env = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \n";

	static Tree SendTree(params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		return t;
	}

	/// <summary>send with args under strace; its exit status and the calls.</summary>
	static (int Exit, string Err, List<Strace.Call> Calls) SendTraced(Tree t, string input, params string[] args)
	{
		var file = t.P("/strace.out");
		var (_, err, exit) = Tree.Exec(Strace.Wrap(t.Prog(Repo.Bin("send"), args), file, "openat,write,fsync,fdatasync"), Encoding.Latin1.GetBytes(input));
		return (exit, err, Strace.Read(file));
	}

	static bool IsSync(Strace.Call c) => c.Name is "fsync" or "fdatasync";

	// 1. send appends to the mailbox and forces it to the disk before it says delivered (mailer.md §3)
	[Test]
	public void SendSyncsTheMailboxAfterItsLastWrite()
	{
		using var t = SendTree("bob");
		var (exit, err, calls) = SendTraced(t, Env + "Subject: durable\n\nbody\n", "-r", "bob");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		Assert.That(Mail.Box(t, "bob"), Does.Contain("Subject: durable\n"));
		var mbox = Strace.Real(t.P("/mail/box/bob/mbox"));
		var lastWrite = calls.FindLastIndex(c => c.Name == "write" && c.FdPath == mbox);
		Assert.That(lastWrite, Is.GreaterThanOrEqualTo(0), "send wrote the mailbox");
		Assert.That(calls.Skip(lastWrite + 1).Any(c => IsSync(c) && c.FdPath == mbox), Is.True,
			"no fsync of the mailbox after its last write:\n" + string.Join("\n", calls.Where(c => c.FdPath == mbox).Select(c => c.Line)));
	}

	// 2. a queued job: D. written and synced, its directory synced, and only then C. created (the commit point)
	[Test]
	public void SendSyncsTheDataFileAndItsDirectoryBeforeCreatingTheControlFile()
	{
		using var t = SendTree();
		var (exit, err, calls) = SendTraced(t, Env + "Subject: queued\n\nbody\n", "-r", "example.net!bob");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		var dirs = Directory.GetDirectories(t.P("/mail/queue"));
		Assert.That(dirs, Has.Length.EqualTo(1));
		var qdir = Strace.Real(dirs[0]);
		var dfile = Strace.Real(Directory.GetFiles(qdir, "D.*").Single());
		var cfile = Strace.Real(Directory.GetFiles(qdir, "C.*").Single());
		var trace = string.Join("\n", calls.Where(c => c.FdPath.StartsWith(qdir) || c.Returned.StartsWith(qdir) || c.Line.Contains(qdir)).Select(c => c.Line));

		var dWrite = calls.FindLastIndex(c => c.Name == "write" && c.FdPath == dfile);
		var cOpen = calls.FindIndex(c => c.Name == "openat" && c.Returned == cfile);
		Assert.That(dWrite, Is.GreaterThanOrEqualTo(0), "D. written\n" + trace);
		Assert.That(cOpen, Is.GreaterThan(dWrite), "C. created after D. was written\n" + trace);
		var between = calls.GetRange(dWrite + 1, cOpen - dWrite - 1);
		var dSync = between.FindIndex(c => IsSync(c) && c.FdPath == dfile);
		Assert.That(dSync, Is.GreaterThanOrEqualTo(0), "D. synced before C. is created\n" + trace);
		Assert.That(between.Skip(dSync + 1).Any(c => c.Name == "fsync" && c.FdPath == qdir), Is.True, "the queue directory synced after D., before C. is created\n" + trace);
		// and C. itself is durable before send exits 0
		var cWrite = calls.FindLastIndex(c => c.Name == "write" && c.FdPath == cfile);
		Assert.That(calls.Skip(cWrite + 1).Any(c => IsSync(c) && c.FdPath == cfile), Is.True, "C. synced after its last write\n" + trace);
	}

	// 3. -d under -L: every session its own trace, even three in one second (decisions #13)
	[Test]
	public void ThreeSessionsInOneSecondUnderDashLLeaveThreeTraces()
	{
		for (var attempt = 0; ; attempt++) {
			using var t = new Tree();
			using (var l = new Listening(t, "127.0.0.1", "-d")) {
				// start just after a second begins, so that the three sessions share it
				while (DateTime.UtcNow.Millisecond > 100)
					Thread.Sleep(5);
				var sessions = Enumerable.Range(1, 3).Select(i => Task.Run(() => {
					using var c = l.Connect();
					c.Reply();
					Assert.That(c.Ask("HELO client.9fans.net"), Does.StartWith("250 "));
					c.Ask($"VRFY session{i}");
					c.Ask("QUIT");
				})).ToArray();
				Task.WaitAll(sessions);
				l.Stop();
			}
			var traces = Directory.GetFiles(t.P("/sys/log/smtpdb"));
			var seconds = traces.Select(f => Path.GetFileName(f).Split('.')[0]).Distinct().Count();
			if (seconds > 1 && attempt < 3)
				continue;	// the sessions straddled a second: that proves nothing, try again
			Assert.That(seconds, Is.EqualTo(1), "the three sessions started in one second");
			Assert.That(traces, Has.Length.EqualTo(3), string.Join(", ", traces.Select(Path.GetFileName)));
			var texts = traces.Select(File.ReadAllText).ToList();
			for (var i = 1; i <= 3; i++)
				Assert.That(texts.Count(s => s.Contains($"VRFY session{i}")), Is.EqualTo(1), $"session {i} is in exactly one trace");
			return;
		}
	}

	// ---- runq (mailer.md §4.2) ----

	/// <summary>A tree with a job in /mail/queue/alice as qer writes it and a command that records its calls.</summary>
	static (Tree T, string Dir, string Id) RunqJob(string control)
	{
		var t = new Tree();
		t.Write("/sys/log/runq", "");
		t.Write("/rec", "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/calls\"\ncat > /dev/null\nexit 2\n", 0x1ed);
		t.Write("/bin/upas/send", "#!/bin/sh\ncat > /dev/null\n", 0x1ed);
		var dir = t.P("/mail/queue/alice");
		Directory.CreateDirectory(dir);
		const string id = "004711";
		File.WriteAllText(Path.Join(dir, "D." + id), "From alice Thu Nov 26 03:35:01 UTC 2026 remote from testhost\nSubject: x\n\nbody\n");
		File.WriteAllText(Path.Join(dir, "C." + id), control);
		return (t, dir, id);
	}

	static int Runq(Tree t)
	{
		var (_, _, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), ["-a", "/mail/queue", t.P("/rec")]), []);
		return exit;
	}

	static int Calls(Tree t) => File.Exists(t.P("/calls")) ? File.ReadAllLines(t.P("/calls")).Length : 0;

	// 4. failing for between 15 minutes and an hour: retried every 15 minutes, not every 30 s and not hourly
	[TestCase(40, 16, true)]	// failing for 24 min, last try 16 min ago: due
	[TestCase(40, 10, false)]	// failing for 30 min, last try 10 min ago: not yet
	[TestCase(20, 1, false)]	// failing for 19 min, last try 1 min ago: the 30 s pace is over, the 15 min one is not
	[TestCase(75, 16, true)]	// failing for 59 min: still the middle band
	[TestCase(77, 16, false)]	// failing for 61 min: hourly now
	public void RunqRetriesEveryQuarterHourBetweenFifteenMinutesAndAnHourOfFailing(int dataAgeMin, int errorAgeMin, bool tried)
	{
		var (t, dir, id) = RunqJob("smtp alice net!example.net bob \n");
		using var _ = t;
		File.WriteAllText(Path.Join(dir, "E." + id), "an earlier failure\n");
		var now = DateTime.UtcNow;
		File.SetLastWriteTimeUtc(Path.Join(dir, "D." + id), now - TimeSpan.FromMinutes(dataAgeMin));
		File.SetLastWriteTimeUtc(Path.Join(dir, "E." + id), now - TimeSpan.FromMinutes(errorAgeMin));
		Assert.That(Runq(t), Is.EqualTo(0));
		Assert.That(Calls(t), Is.EqualTo(tried ? 1 : 0));
		Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "C." + id, "D." + id, "E." + id }), "the job stays");
	}

	// 5. an empty control file is one being written, unless it has been empty for more than 15 minutes
	[TestCase(16, true)]
	[TestCase(14, false)]
	public void RunqRemovesAnEmptyControlFileOnlyWhenOlderThanFifteenMinutes(int ageMin, bool removed)
	{
		var (t, dir, id) = RunqJob("");
		using var _ = t;
		File.SetLastWriteTimeUtc(Path.Join(dir, "C." + id), DateTime.UtcNow - TimeSpan.FromMinutes(ageMin));
		Assert.That(Runq(t), Is.EqualTo(0));
		Assert.That(Calls(t), Is.Zero, "nothing to run");
		Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(),
			Is.EqualTo(removed ? Array.Empty<string>() : new[] { "C." + id, "D." + id }));
		Assert.That(t.Log("runq").Any(l => l.Contains($"empty ctl file for C.{id}")), Is.EqualTo(removed));
	}

	// 6. the Bell Labs HELO check refuses every reserved last label, not only "invalid" (decisions #4)
	[TestCase("mail.plan9.test")]
	[TestCase("mail.plan9.example")]
	[TestCase("mail.plan9.localdomain")]
	[TestCase("mail.plan9.localhost")]
	[TestCase("MAIL.PLAN9.LocalHost")]
	[TestCase("mail.plan9.invalid")]
	public void HeloWithAReservedLastLabelIsALiar(string name)
	{
		using var t = new Tree();
		var r = t.Run($"HELO {name}\r\nQUIT\r\n");
		Assert.That(r.Out, Is.EqualTo("220-example.com ESMTP\r\n220 \r\n554 5.7.0 Liar!\r\n"));
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Log(), Is.EqualTo(new[] { $"helo from 127.0.0.2 as {name}", $"Hung up on 127.0.0.2; claimed to be {name}" }));
	}

	// and only the last label: these are ordinary names
	[TestCase("test.plan9.example.net.uk")]
	[TestCase("localhost.9fans.net")]
	[TestCase("mail.plan9.testing")]
	public void HeloWithAReservedLabelElsewhereIsFine(string name)
	{
		using var t = new Tree();
		var r = t.Run($"HELO {name}\r\nQUIT\r\n");
		Assert.That(r.Out, Is.EqualTo($"220-example.com ESMTP\r\n220 \r\n250 example.com you are {name}\r\n221 2.0.0 Successful termination\r\n"));
		Assert.That(r.Exit, Is.EqualTo(0));
	}
}
