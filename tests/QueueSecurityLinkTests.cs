using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9 item 7 (decisions #24): runq run as root against links planted in the queue by the user nobody.
/// A root-only file is never mailed out; a root-owned file is never appended to, overwritten, truncated or
/// deleted; a user directory that is a link is skipped.
/// </summary>
[TestFixture]
public class QueueSecurityLinkTests
{
	const string Date = "Thu Nov 26 03:35:01 UTC 2026";
	Tree t = null!;
	string Q => t.P("/mail/queue");
	string Nob => t.P("/mail/queue/nobody");

	[SetUp]
	public void SetUp()
	{
		QueueSecurityTests.RequireRoot();
		t = new Tree();
		t.Write("/sys/log/runq", "");
		Directory.CreateDirectory(Q);
		File.SetUnixFileMode(Q, (UnixFileMode)0x3ff); // 1777, as mktree makes it
		// the queue command: keeps what it was given on stdin, says something on stderr, exits as /exit says
		t.Write("/rec", """
			#!/bin/sh
			d=$(dirname "$0")
			cat >> "$d/got"
			echo "evil line" >&2
			exit $(cat "$d/exit" 2>/dev/null || echo 0)
			""", 0x1ed);
		t.Write("/bin/upas/send", "#!/bin/sh\nd=$(dirname \"$0\")/../..\nprintf '%s\\n' \"$@\" > \"$d/send.args\"\ncat > \"$d/bounced\"\n", 0x1ed);
		QueueSecurityTests.AsNobody($"mkdir '{Nob}'");
	}

	[TearDown]
	public void TearDown() => t?.Dispose();

	/// <summary>A root-owned file outside the queue, mode given, with an old modification time.</summary>
	string Victim(string name, string text = "keep\n", int mode = 0x1a4)
	{
		t.Write("/" + name, text, mode);
		File.SetLastWriteTimeUtc(t.P("/" + name), new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
		return t.P("/" + name);
	}

	static void Unchanged(string path, string text = "keep\n")
	{
		Assert.That(File.Exists(path), Is.True, $"{path} still there");
		Assert.That(File.ReadAllText(path), Is.EqualTo(text), $"{path} unchanged");
		Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)), $"{path} not touched");
	}

	/// <summary>nobody's job: C.id and, unless planted otherwise, D.id, as nobody's own send would write them.</summary>
	string Job(string id, string? d = "plain")
	{
		var s = new StringBuilder($"cd '{Nob}'; ");
		if (d == "plain")
			s.Append($"printf 'From nobody {Date} remote from testhost\\nSubject: x\\n\\nhi\\n' > D.{id}; ");
		s.Append($"printf 'smtp nobody@example.org net!example.net bob \\n' > C.{id}");
		return s.ToString();
	}

	(int Exit, string Err) Runq(params string[] flags)
	{
		var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), [.. flags, "-a", "/mail/queue", t.P("/rec")]), []);
		return (exit, err);
	}

	string Got => File.Exists(t.P("/got")) ? File.ReadAllText(t.P("/got")) : "";

	[Test]
	public void ADataFileLinkedToARootOnlyFileIsNotMailedOut()
	{
		var secret = Victim("secret", "TOP SECRET\n", 0x180);
		QueueSecurityTests.AsNobody($"ln -s '{secret}' '{Nob}/D.000001'; " + Job("000001", null));
		var r = Runq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Got, Does.Not.Contain("TOP SECRET"));
		Unchanged(secret, "TOP SECRET\n");
		Assert.That(t.Log("runq"), Does.Contain("nobody/D.000001: not used: a symbolic link"));
		Assert.That(File.Exists(t.P("/bounced")), Is.False, "nothing sent anywhere");
	}

	[Test]
	public void AnErrorFileLinkedToARootFileIsNotAppendedTo()
	{
		var crontab = Victim("crontab");
		t.Write("/exit", "2");
		QueueSecurityTests.AsNobody($"ln -s '{crontab}' '{Nob}/E.000002'; " + Job("000002"));
		var r = Runq("-E");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Got, Does.Contain("Subject: x"), "the job itself ran");
		Unchanged(crontab);
		Assert.That(File.ReadAllText(Path.Join(Nob, "E.000002")), Is.EqualTo("evil line\n"), "a new E. file of its own");
		Assert.That(File.ResolveLinkTarget(Path.Join(Nob, "E.000002"), false), Is.Null);
	}

	[Test]
	public void ABounceFileLinkedToARootFileIsNotOverwritten()
	{
		var passwd = Victim("passwd");
		t.Write("/exit", "1");
		QueueSecurityTests.AsNobody($"ln -s '{passwd}' '{Nob}/B.000003'; " + Job("000003"));
		var r = Runq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Unchanged(passwd);
		Assert.That(File.ReadAllText(t.P("/bounced")), Does.Contain("Subject: permanent failure\n").And.Contains("evil line\n"));
		Assert.That(File.ReadAllText(t.P("/send.args")), Is.EqualTo("--\nnobody@example.org\n"));
		Assert.That(Directory.GetFileSystemEntries(Nob), Is.Empty, "the job removed: its names only");
	}

	[Test]
	public void ALoadFileLinkedToARootFileIsNotWritten()
	{
		var counted = Victim("counted");
		QueueSecurityTests.AsNobody($"ln -s '{counted}' '{Q}/.runqload'");
		var r = Runq("-l", "5");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Unchanged(counted);
	}

	[Test]
	public void AUserDirectoryThatIsALinkIsSkipped()
	{
		var victim = t.P("/victim");
		Directory.CreateDirectory(victim);
		// root's files that look like a job without its data: runq would remove them, were it to look there
		File.WriteAllText(Path.Join(victim, "C.000005"), "smtp root net!example.net bob \n");
		File.WriteAllText(Path.Join(victim, "E.000005"), "keep\n");
		QueueSecurityTests.AsNobody($"ln -s '{victim}' '{Q}/evil'");
		var r = Runq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Directory.GetFiles(victim).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "C.000005", "E.000005" }));
		Assert.That(t.Log("runq"), Has.Some.StartsWith("evil: skipped: "));
	}

	[Test]
	public void AControlFileLinkedToRootsJobIsNotRun()
	{
		// a root job elsewhere, made to look like nobody's through links
		var victim = t.P("/victim");
		Directory.CreateDirectory(victim);
		File.WriteAllText(Path.Join(victim, "C.000006"), "smtp root net!example.net bob \n");
		File.WriteAllText(Path.Join(victim, "D.000006"), $"From root {Date} remote from testhost\nSubject: root's\n\nhi\n");
		QueueSecurityTests.AsNobody($"ln -s '{victim}/C.000006' '{Nob}/C.000006'; ln -s '{victim}/D.000006' '{Nob}/D.000006'");
		var r = Runq();
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(Got, Is.Empty);
		Assert.That(Directory.GetFiles(victim), Has.Length.EqualTo(2));
	}

	/// <summary>
	/// smtp removes a job it delivered by $runqjob: that name reaches the directory runq opened, so nobody turning
	/// its directory into a link to another while smtp talks to the server makes it remove nothing there.
	/// </summary>
	[Test]
	public void SmtpRemovesTheDeliveredJobOnlyInItsOwnDirectory()
	{
		var victim = t.P("/victim");
		Directory.CreateDirectory(victim);
		foreach (var k in "CDE")
			File.WriteAllText(Path.Join(victim, k + ".000008"), "root's\n");
		QueueSecurityTests.AsNobody(Job("000008"));
		using var srv = new ScriptServer();
		srv.Answer = cmd => {
			if (cmd == "DATA")
				QueueSecurityTests.AsNobody($"cd '{Q}'; mv nobody nobody.old; ln -s '{victim}' nobody");
			return null;
		};
		File.Delete(t.P("/bin/upas/send"));
		QueueSecurityTests.SmarthostSmtp(t, srv);
		var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), ["-a", "/mail/queue", "/mail/lib/remotemail"]), []);
		Assert.That(exit, Is.EqualTo(0), err);
		Assert.That(srv.Messages, Has.Count.EqualTo(1), string.Join("\n", srv.Log));
		Assert.That(Directory.GetFiles(victim).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "C.000008", "D.000008", "E.000008" }));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/queue/nobody.old")), Is.Empty, "the delivered job removed where it was");
	}
}
