using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// The crash safety send keeps while streaming (issue 9 item 11), watched in its system calls since the
/// final files cannot show it: the data file is written and synced, and the queue directory synced, before
/// the control file exists; a mailbox is synced before send exits 0.
/// </summary>
[TestFixture]
public class QueueSecuritySyncTests
{
	/// <summary>send under strace -f; the trace's lines.</summary>
	static string[] Traced(Tree t, string input, params string[] args)
	{
		if (!File.Exists("/usr/bin/strace"))
			Assert.Ignore("needs strace");
		var log = t.P("/strace.out");
		var psi = t.Prog("/usr/bin/strace", ["-f", "-qq", "-e", "trace=openat,open,fsync,fdatasync,mkdir", "-o", log, Repo.Bin("send"), .. args]);
		var (_, err, exit) = Tree.Exec(psi, Encoding.Latin1.GetBytes(input));
		Assert.That(exit, Is.EqualTo(0), err);
		return File.ReadAllLines(log);
	}

	/// <summary>The index of the first line matching re at or after from, and the fd it returned (-1 if none).</summary>
	static (int At, int Fd) Find(string[] lines, string re, int from = 0)
	{
		for (var i = from; i < lines.Length; i++) {
			var m = Regex.Match(lines[i], re);
			if (m.Success) {
				var r = Regex.Match(lines[i], @"= (\d+)$");
				return (i, r.Success ? int.Parse(r.Groups[1].Value) : -1);
			}
		}
		return (-1, -1);
	}

	[Test]
	public void DataFileAndDirectoryAreSyncedBeforeTheControlFileIsMade()
	{
		using var t = new Tree();
		t.Write("/sys/log/mail", "");
		var lines = Traced(t, "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nhi\n", "-r", "example.net!bob");
		var trace = string.Join("\n", lines);
		var dir = Find(lines, @"open(at)?\(.*/mail/queue/root"", .*O_DIRECTORY.*= \d+$");
		var d = Find(lines, @"openat\(\d+, ""D\.[0-9a-z]\d{5}"", .*O_CREAT.*= \d+$");
		var c = Find(lines, @"openat\(\d+, ""C\.[0-9a-z]\d{5}"", .*O_CREAT.*= \d+$");
		Assert.That(dir.At, Is.GreaterThanOrEqualTo(0), trace);
		Assert.That(d.At, Is.GreaterThan(dir.At), trace);
		Assert.That(c.At, Is.GreaterThan(d.At), trace);
		var dsync = Find(lines, $@"fsync\({d.Fd}\) += 0", d.At);
		var dirsync = Find(lines, $@"fsync\({dir.Fd}\) += 0", dsync.At < 0 ? d.At : dsync.At);
		Assert.That(dsync.At, Is.GreaterThan(d.At).And.LessThan(c.At), "D. synced before C. is made\n" + trace);
		Assert.That(dirsync.At, Is.GreaterThan(dsync.At).And.LessThan(c.At), "the directory synced before C. is made\n" + trace);
		var csync = Find(lines, $@"fsync\({c.Fd}\) += 0", c.At);
		Assert.That(csync.At, Is.GreaterThan(c.At), "C. synced\n" + trace);
	}

	[Test]
	public void TheMailboxIsSyncedBeforeSendExits()
	{
		using var t = new Tree();
		t.Write("/sys/log/mail", "");
		Directory.CreateDirectory(t.P("/mail/box/bob"));
		File.WriteAllText(t.P("/mail/box/bob/mbox"), "");
		var lines = Traced(t, "From glenda Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nhi\n", "-r", "bob");
		var trace = string.Join("\n", lines);
		var box = Find(lines, @"open(at)?\(.*/mail/box/bob/mbox"", .*O_APPEND.*= \d+$");
		Assert.That(box.At, Is.GreaterThanOrEqualTo(0), trace);
		Assert.That(Find(lines, $@"fsync\({box.Fd}\) += 0", box.At).At, Is.GreaterThan(box.At), "the mailbox synced\n" + trace);
	}
}
