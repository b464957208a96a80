using System.Diagnostics;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 10 item 5: mk install into an existing plan9port tree keeps the originals (once), says what it replaced
/// and left alone, never touches mail/lib, and makes sys/log a link to plan9port's log/. The recipe's body is
/// sys/lib/upas/install (mk install = build, then that script); the tests run the script, not the two-minute build.
/// </summary>
[TestFixture]
public class InstallTests
{
	string root = null!;

	[SetUp]
	public void SetUp()
	{
		root = Path.Join(Path.GetTempPath(), "upas-p9p-" + Guid.NewGuid().ToString("N")[..12]);
		// plan9port's tree: its own upas programs, its log/, an administrator's remotemail and rewrite
		foreach (var d in new[] { "bin/upas", "log", "mail/lib", "mail/box/glenda" })
			Directory.CreateDirectory(Path.Join(root, d));
		foreach (var p in new[] { "send", "smtp", "fs", "nedmail" })
			Write($"bin/upas/{p}", $"#!/bin/sh\necho plan9port {p}\n", 0x1ed);
		Write("mail/lib/remotemail", "#!/usr/local/plan9/bin/rc\n# the administrator's\nexec upas/smtp $*\n", 0x1c0);
		Write("mail/lib/rewrite", "# the administrator's rules\n", 0x180);
		Write("log/smtp", "old plan9port smtp log line\n", 0x1a4);
	}

	[TearDown]
	public void TearDown() => Directory.Delete(root, true);

	void Write(string rel, string text, int mode)
	{
		File.WriteAllText(Path.Join(root, rel), text);
		File.SetUnixFileMode(Path.Join(root, rel), (UnixFileMode)mode);
	}

	string R(string rel) => Path.Join(root, rel);

	string[] Install()
	{
		var psi = new ProcessStartInfo("bash") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
		foreach (var a in new[] { Path.Join(Repo.Dir, "sys/lib/upas/install"), root })
			psi.ArgumentList.Add(a);
		var (o, e, x) = Tree.Exec(psi, [], 120_000);
		Assert.That(x, Is.EqualTo(0), e);
		return System.Text.Encoding.UTF8.GetString(o).Split('\n', StringSplitOptions.RemoveEmptyEntries);
	}

	[Test]
	public void TwiceIntoAPlan9portTree()
	{
		Repo.Bin("smtpd");
		var first = Install();
		Assert.That(first, Does.Contain($"kept the original {R("bin/upas/send")} as {R("bin/upas/send.orig")}"));
		Assert.That(first, Does.Contain($"kept the original {R("bin/upas/smtp")} as {R("bin/upas/smtp.orig")}"));
		Assert.That(first, Does.Contain($"installed {R("bin/upas/smtpd")}"));
		Assert.That(first, Does.Contain($"left alone {R("bin/upas/fs")}"));
		Assert.That(first, Does.Contain($"left alone {R("bin/upas/nedmail")}"));
		Assert.That(first, Does.Contain($"left alone {R("mail/lib/remotemail")}"));
		Assert.That(first, Does.Contain($"linked {R("sys/log")} -> ../log"));
		Assert.That(File.ReadAllText(R("bin/upas/send.orig")), Is.EqualTo("#!/bin/sh\necho plan9port send\n"));
		Assert.That(File.Exists(R("bin/upas/smtpd.orig")), Is.False, "nothing to keep: there was no smtpd");

		var second = Install();
		Assert.That(second, Has.None.StartsWith("kept the original"), "our own programs are never kept as originals");
		Assert.That(File.ReadAllText(R("bin/upas/send.orig")), Is.EqualTo("#!/bin/sh\necho plan9port send\n"), "the original survives a second install");
		Assert.That(Directory.GetFiles(R("bin/upas"), "*.orig").Select(Path.GetFileName).Order(),
			Is.EqualTo(new[] { "send.orig", "smtp.orig" }));
		Assert.That(second, Does.Contain($"left alone {R("bin/upas/fs")}"));
		Assert.That(File.ReadAllText(R("bin/upas/fs")), Is.EqualTo("#!/bin/sh\necho plan9port fs\n"));

		// the administrator's files: bytes and modes as they were
		Assert.That(File.ReadAllText(R("mail/lib/remotemail")), Is.EqualTo("#!/usr/local/plan9/bin/rc\n# the administrator's\nexec upas/smtp $*\n"));
		Assert.That((int)File.GetUnixFileMode(R("mail/lib/remotemail")), Is.EqualTo(0x1c0));
		Assert.That(File.ReadAllText(R("mail/lib/rewrite")), Is.EqualTo("# the administrator's rules\n"));

		// one log directory: /sys/log/smtpd is plan9port's log/smtpd, its old logs kept
		Assert.That(new FileInfo(R("sys/log")).LinkTarget, Is.EqualTo("../log"));
		Assert.That(File.Exists(R("log/smtpd")), Is.True);
		Assert.That(File.ReadAllText(R("sys/log/smtp")), Is.EqualTo("old plan9port smtp log line\n"));
		Assert.That(Directory.Exists(R("log/smtpdb")), Is.True);
	}

	[Test]
	public void ATreeWithItsOwnSysLogKeepsIt()
	{
		Directory.CreateDirectory(R("sys/log"));
		var out1 = Install();
		Assert.That(out1, Has.None.StartsWith("linked"));
		Assert.That(new FileInfo(R("sys/log")).LinkTarget, Is.Null);
	}

	[Test]
	public void MkInstallRunsTheScript()
	{
		var mk = "/usr/lib/plan9/bin/mk";
		Assume.That(File.Exists(mk), "9base's mk is not installed");
		var psi = new ProcessStartInfo(mk) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Repo.Dir };
		foreach (var a in new[] { "-n", "install", "ROOT=" + root })
			psi.ArgumentList.Add(a);
		var (o, e, x) = Tree.Exec(psi, []);
		Assert.That(x, Is.EqualTo(0), e);
		Assert.That(System.Text.Encoding.UTF8.GetString(o), Does.Contain("bash sys/lib/upas/install \"$ROOT\""));
	}
}
