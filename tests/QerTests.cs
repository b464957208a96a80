using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 10 item 2, qer(8) and /mail/lib/qmail: qer writes byte for byte the queue send writes (its code is send's),
/// with the same modes, syncs and refusals; qmail queues with qer and its runq delivers through remotemail and smtp.
/// </summary>
[TestFixture]
public class QerTests
{
	const string Date = "Mon Nov 24 01:21:00 EST 2025";
	static string User => Mono.Unix.Native.Syscall.getpwuid(Mono.Unix.Native.Syscall.geteuid()).pw_name;

	static (string Err, int Exit) Qer(Tree t, string input, params string[] args)
	{
		var (_, e, x) = Tree.Exec(t.Prog(Repo.Bin("qer"), args), Encoding.Latin1.GetBytes(input));
		return (e, x);
	}

	static string[] Files(string dir, string pattern) =>
		Directory.GetFiles(dir, pattern).Order(StringComparer.Ordinal).ToArray();

	static int Mode(string path) => (int)File.GetUnixFileMode(path);

	static string Oct(string path) => Convert.ToString(Mode(path), 8);

	[Test]
	public void QerWritesWhatSendWrites()
	{
		var data = $"From \"john doe\"@corp.example {Date} remote from testhost\nSubject: x\n\nhi\n";
		string[] SendJob(out string dataFile, out string ctlFile)
		{
			using var t = new Tree();
			t.Write("/sys/log/mail", "");
			var (_, err, exit) = Tree.Exec(t.Prog(Repo.Bin("send"), ["-r", "--", "x.example!bob", "x.example!\"a b\"", "x.example!-c"]),
				Encoding.Latin1.GetBytes($"From \"john doe\"@corp.example {Date} remote from \nSubject: x\n\nhi\n"));
			Assert.That((exit, err), Is.EqualTo((0, "")));
			return Layout(t, out dataFile, out ctlFile);
		}
		var sendLayout = SendJob(out var sendData, out var sendCtl);
		using var q = new Tree();
		var r = Qer(q, data, "--", "/mail/queue", "smtp", "\"john doe\"@corp.example", "net!x.example", "bob", "\"a b\"", "-c");
		Assert.That(r, Is.EqualTo(("", 0)));
		var qerLayout = Layout(q, out var qerData, out var qerCtl);
		Assert.That(qerLayout, Is.EqualTo(sendLayout), "the same files, modes and directories");
		Assert.That(qerData, Is.EqualTo(data).And.EqualTo(sendData), "D. is standard input, byte for byte");
		Assert.That(qerCtl, Is.EqualTo("smtp %%22john%%20doe%%22@corp.example net!x.example bob %%22a%%20b%%22 -c \n").And.EqualTo(sendCtl));
	}

	/// <summary>The queue's shape: modes of the root, the user's directory and its files (ids masked); D.'s and C.'s text.</summary>
	static string[] Layout(Tree t, out string data, out string ctl)
	{
		var root = t.P("/mail/queue");
		var dir = Path.Join(root, User);
		var files = Files(dir, "*");
		Assert.That(files, Has.Length.EqualTo(2));
		Assert.That(Path.GetFileName(files[0]), Does.Match(@"^C\.[0-9a-z][0-9]{5}$"));
		Assert.That(Path.GetFileName(files[1]), Does.Match(@"^D\.[0-9a-z][0-9]{5}$"));
		data = File.ReadAllText(files.Single(f => Path.GetFileName(f).StartsWith("D.")), Encoding.Latin1);
		ctl = File.ReadAllText(files.Single(f => Path.GetFileName(f).StartsWith("C.")), Encoding.Latin1);
		Assert.That(Path.GetFileName(files[0])[2..], Is.EqualTo(Path.GetFileName(files[1])[2..]), "one id");
		return [
			$"root {Oct(root)}",
			$"dir {Oct(dir)}",
			.. files.Select(f => $"{Path.GetFileName(f)[..1]} {Oct(f)}"),
		];
	}

	[Test]
	public void TheModesArePlan9s()
	{
		using var t = new Tree();
		Assert.That(Qer(t, "From x\n", "/mail/queue", "smtp", "x", "net!y", "z"), Is.EqualTo(("", 0)));
		Assert.That(Layout(t, out _, out _), Is.EqualTo(new[] { "root 1777", "dir 775", "C 664", "D 660" }));
		// -q: a directory of that name, the data readable by all (Plan 9's)
		Assert.That(Qer(t, "From x\n", "-q", "shared", "/mail/queue", "smtp", "x", "net!y", "z"), Is.EqualTo(("", 0)));
		var shared = t.P("/mail/queue/shared");
		Assert.That(Mode(shared), Is.EqualTo(0x1fd));
		Assert.That(Files(shared, "*").Select(f => $"{Path.GetFileName(f)[..1]} {Oct(f)}"), Is.EqualTo(new[] { "C 664", "D 664" }));
	}

	[Test]
	public void DashFFilesAreCopiedAndNamedInTheControlFile()
	{
		using var t = new Tree();
		t.Write("/one", "first\n");
		t.Write("/two", "second\x01\xff\n");
		Assert.That(Qer(t, "From x\n", "-f", t.P("/one"), "-f", t.P("/two"), "/mail/queue", "tag", "reply", "arg"), Is.EqualTo(("", 0)));
		var dir = t.P("/mail/queue/" + User);
		var c = Files(dir, "C.*").Single();
		var id = Path.GetFileName(c)[2..];
		Assert.That(File.ReadAllText(c), Is.EqualTo($"tag reply arg {dir}/F.{id} {dir}/G.{id} \n"));
		Assert.That(File.ReadAllText(Path.Join(dir, "F." + id)), Is.EqualTo("first\n"));
		Assert.That(File.ReadAllBytes(Path.Join(dir, "G." + id)), Is.EqualTo(File.ReadAllBytes(t.P("/two"))));
		Assert.That(Mode(Path.Join(dir, "F." + id)), Is.EqualTo(0x1b0));
		// a file that cannot be read: nothing is queued
		var r = Qer(t, "From x\n", "-f", t.P("/missing"), "/mail/queue", "tag", "reply", "arg");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Does.StartWith($"qer: copying {t.P("/missing")} to queue: ").And.EndWith("\n").And.Not.Contain("   at "));
		Assert.That(Files(dir, "*"), Has.Length.EqualTo(4), "the first job's files only");
	}

	[Test]
	public void DataThatIsNotMailIsLogged()
	{
		using var t = new Tree();
		t.Write("/sys/log/smtp", "");
		Assert.That(Qer(t, "hello\tworld\nsecond line of it, long enough to be cut\n", "/mail/queue", "smtp", "x", "net!y", "z"), Is.EqualTo(("", 0)));
		Assert.That(t.Log("smtp"), Is.EqualTo(new[] { "qer usys data starts with hello\\x09world second line of it, long enou" }));
		Assert.That(Qer(t, "hi\n", "/mail/queue", "smtp", "x", "net!y", "z"), Is.EqualTo(("", 0)));
		Assert.That(t.Log("smtp")[1], Is.EqualTo("qer usys data starts with " + "hi".PadRight(40)), "padded to 40, as %-40.40s");
		Assert.That(Qer(t, "From x\n", "/mail/queue", "smtp", "x", "net!y", "z"), Is.EqualTo(("", 0)));
		Assert.That(t.Log("smtp"), Has.Length.EqualTo(2), "mail is not logged");
	}

	[TestCase(new string[] { }, "usage: qer [-f file]... [-q dir] root tag reply args...\n")]
	[TestCase(new[] { "/mail/queue", "smtp" }, "usage: qer [-f file]... [-q dir] root tag reply args...\n")]
	[TestCase(new[] { "-z", "/mail/queue", "smtp", "x", "y" }, "usage: qer [-f file]... [-q dir] root tag reply args...\n")]
	[TestCase(new[] { "-q", "../x", "/mail/queue", "smtp", "x", "y" }, "qer: bad queue directory ../x\n")]
	[TestCase(new[] { "-q", "..", "/mail/queue", "smtp", "x", "y" }, "qer: bad queue directory ..\n")]
	public void UsageErrorsQueueNothing(string[] args, string err)
	{
		using var t = new Tree();
		Assert.That(Qer(t, "From x\n", args), Is.EqualTo((err, 1)));
		Assert.That(Directory.Exists(t.P("/mail/queue")), Is.False);
	}

	[Test]
	public void ADashDashEndsTheOptionsAndTheWordsSurvive()
	{
		using var t = new Tree();
		Assert.That(Qer(t, "From x\n", "--", "/mail/queue", "-f", "a\u000bb", "net!y", "-q"), Is.EqualTo(("", 0)));
		Assert.That(File.ReadAllText(Files(t.P("/mail/queue/" + User), "C.*").Single()), Is.EqualTo("-f a%%0Bb net!y -q \n"));
	}

	[Test]
	public void AQueueDirectoryAnotherUserMadeIsNotUsed()
	{
		QueueSecurityTests.RequireRoot();
		using var t = new Tree();
		Directory.CreateDirectory(t.P("/mail/queue"));
		File.SetUnixFileMode(t.P("/mail/queue"), (UnixFileMode)0x3ff);
		QueueSecurityTests.AsNobody($"mkdir -m 777 '{t.P("/mail/queue/root")}'");
		Assert.That(Qer(t, "From x\n", "/mail/queue", "smtp", "x", "net!y", "z"),
			Is.EqualTo(($"qer: queue directory {t.P("/mail/queue/root")} not used: owned by uid 65534, not by uid 0\n", 1)));
		Assert.That(Directory.GetFileSystemEntries(t.P("/mail/queue/root")), Is.Empty);
		Directory.CreateDirectory(t.P("/elsewhere"));
		File.CreateSymbolicLink(t.P("/mail/queue/linked"), t.P("/elsewhere"));
		var r = Qer(t, "From x\n", "-q", "linked", "/mail/queue", "smtp", "x", "net!y", "z");
		Assert.That(r, Is.EqualTo(($"qer: queue directory not used: {t.P("/mail/queue/linked")}: not a directory (a symbolic link?)\n", 1)));
		Assert.That(Directory.GetFileSystemEntries(t.P("/elsewhere")), Is.Empty);
	}

	[Test]
	public void DataIsSyncedBeforeTheControlFileIsMade()
	{
		if (!File.Exists("/usr/bin/strace"))
			Assert.Ignore("needs strace");
		using var t = new Tree();
		var log = t.P("/strace.out");
		var psi = t.Prog("/usr/bin/strace", ["-f", "-qq", "-e", "trace=openat,open,fsync", "-o", log, Repo.Bin("qer"), "/mail/queue", "smtp", "x", "net!y", "z"]);
		var (_, err, exit) = Tree.Exec(psi, "From x\n"u8.ToArray());
		Assert.That(exit, Is.EqualTo(0), err);
		var lines = File.ReadAllLines(log);
		var trace = string.Join("\n", lines);
		int Find(string re, int from = 0)
		{
			for (var i = from; i < lines.Length; i++)
				if (Regex.IsMatch(lines[i], re))
					return i;
			return -1;
		}
		static string Fd(string line) => Regex.Match(line, @"= (\d+)$").Groups[1].Value;
		var dir = Find(@"open(at)?\(.*/mail/queue/" + User + @""", .*O_DIRECTORY.*= \d+$");
		var d = Find(@"openat\(\d+, ""D\.[0-9a-z]\d{5}"", .*O_CREAT.*= \d+$");
		var c = Find(@"openat\(\d+, ""C\.[0-9a-z]\d{5}"", .*O_CREAT.*= \d+$");
		Assert.That(dir >= 0 && d > dir && c > d, Is.True, trace);
		var dsync = Find($@"fsync\({Fd(lines[d])}\) += 0", d);
		var dirsync = Find($@"fsync\({Fd(lines[dir])}\) += 0", dsync < 0 ? d : dsync);
		Assert.That(dsync, Is.GreaterThan(d).And.LessThan(c), "D. synced before C. is made\n" + trace);
		Assert.That(dirsync, Is.GreaterThan(dsync).And.LessThan(c), "the directory synced before C. is made\n" + trace);
		Assert.That(Find($@"fsync\({Fd(lines[c])}\) += 0", c), Is.GreaterThan(c), "C. synced\n" + trace);
	}

	/// <summary>qmail as the | rule of rewrite runs it: qer queues, its runq runs remotemail, smtp delivers; the job is then gone.</summary>
	[Test]
	public void QmailQueuesAndItsRunqDelivers()
	{
		using var t = new Tree();
		t.Write("/sys/log/runq", "");
		using var srv = new ScriptServer();
		QueueSecurityTests.SmarthostSmtp(t, srv);
		foreach (var p in new[] { "qer", "runq", "aliasmail" })
			File.CreateSymbolicLink(t.P("/bin/upas/" + p), Repo.Bin(p));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/qmail"), t.P("/mail/lib/qmail"));
		File.SetUnixFileMode(t.P("/mail/lib/qmail"), (UnixFileMode)0x1ed);
		var psi = t.Prog("/bin/sh", [t.P("/mail/lib/qmail"), "\"john doe\"@corp.example", "net!x.example", "bob", "\"a b\"", "-c"]);
		var (_, err, exit) = Tree.Exec(psi, Encoding.Latin1.GetBytes($"From \"john doe\"@corp.example {Date} remote from testhost\nSubject: q\n\nhi\n"));
		Assert.That((exit, err), Is.EqualTo((0, "")));
		Wait.Until(() => srv.Messages.Count == 1 && Files(t.P("/mail/queue/" + User), "*").Length == 0,
			() => "delivered and removed: " + string.Join("\n", srv.Log) + "\n" + string.Join("\n", t.Log("runq")), TimeSpan.FromSeconds(30));
		Assert.That(File.ReadAllLines(t.P("/smtp.args")), Is.EqualTo(new[] {
			"-h", "corp.example", "--", "net!x.example", "%%22john%%20doe%%22@corp.example", "bob", "%%22a%%20b%%22", "-c" }));
		var cmds = srv.Log.Where(c => c.StartsWith("MAIL") || c.StartsWith("RCPT")).Select(c => c.Split(' ')[0] == "MAIL" ? c[..(c.IndexOf('>') + 1)] : c).ToArray();
		Assert.That(cmds, Is.EqualTo(new[] {
			"MAIL FROM:<\"john doe\"@corp.example>",
			"RCPT TO:<bob@x.example>",
			"RCPT TO:<\"a b\"@x.example>",
			"RCPT TO:<-c@x.example>",
		}), string.Join("\n", srv.Log));
		Assert.That(Encoding.Latin1.GetString(srv.Messages.Single()), Does.Contain("Subject: q\r\n"));
	}

	[Test]
	public void QmailFailsWhenQerCannotQueue()
	{
		using var t = new Tree();
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/qer"), Repo.Bin("qer"));
		File.Copy(Path.Join(Repo.Dir, "mail/lib/qmail"), t.P("/mail/lib/qmail"));
		t.Write("/mail/queue", "not a directory");
		var (_, err, exit) = Tree.Exec(t.Prog("/bin/sh", [t.P("/mail/lib/qmail"), "a@b.example", "net!x.example", "bob"]), "From x\n"u8.ToArray());
		Assert.That(exit, Is.EqualTo(1));
		Assert.That(err, Does.EndWith("qmail: qer failed\n").And.StartWith("qer: "));
		var (_, uerr, uexit) = Tree.Exec(t.Prog("/bin/sh", [t.P("/mail/lib/qmail"), "a@b.example", "net!x.example"]), []);
		Assert.That((uexit, uerr), Is.EqualTo((1, "usage: qmail sender net!host rcpt...\n")));
	}
}
