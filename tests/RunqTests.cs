using System.Diagnostics;
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
		var psi = new ProcessStartInfo(Repo.Bin("runq")) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		psi.Environment["PLAN9"] = t.Dir;
		var (_, err, exit) = Tree.Exec(psi, []);
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
		Assert.That(sent, Does.StartWith("send alice upasname=/dev/null\n"));
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

	/// <summary>The default tree's remotemail → our smtp → our smtpd behind socat → the recording mailer.</summary>
	[Test]
	public void RemotemailThroughSmtpAndSmtpd()
	{
		using var srv = new SocketServer(t, []);
		File.Copy(Path.Join(Repo.Dir, "mail/lib/remotemail"), t.P("/mail/lib/remotemail"));
		File.SetUnixFileMode(t.P("/mail/lib/remotemail"), (UnixFileMode)0x1ed);
		// our smtp, told a dotted name for EHLO: the tree's sysname is smtpd's own (a client claiming it is hung up on)
		t.Write("/bin/upas/smtp", $"#!/bin/sh\nh=$1 d=$2\nshift 2\nexec {Repo.Bin("smtp")} \"$h\" \"$d\" .cs.bell-labs.com \"$@\"\n", 0x1ed);
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
}
