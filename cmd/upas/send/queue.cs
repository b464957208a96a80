using System.Globalization;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>qer's queue (mailer.md §4.1): D.id, then C.id as the commit point, in /mail/queue/subdir.</summary>
static class Queue
{
	/// <summary>The queue subdirectory: the invoking user's name, as qer without -q.</summary>
	public static string Subdir => Posix.UserName();

	public static string Root9 => Upas.Root.Path9("/mail/queue");

	/// <summary>Queues one job: smtp sender net!host users…; returns the control file once D. and C. are durable.</summary>
	public static string Enqueue(string sender, string host, IEnumerable<string> users, byte[] data)
	{
		var sub = Subdir;
		var none = sub == "none";
		var qdir = Path.Join(Root9, sub);
		MkDir(Root9, 0x1ff); // 0777
		MkDir(qdir, none ? 0x1ff : 0x1fd); // 0777 for none, else 0775
		var dmode = (FilePermissions)(none ? 0x1b4 : 0x1b0); // 0664 / 0660
		var id = Create(qdir, dmode, out var dfd);
		var dpath = Path.Join(qdir, "D." + id);
		try {
			if (!Posix.WriteAll(dfd, data) || Syscall.fsync(dfd) != 0)
				Fail(dpath, "writing", dpath);
		} finally {
			Syscall.close(dfd);
		}
		if (!Posix.SyncDir(qdir))
			Fail(dpath, "syncing", dpath);
		var ctl = new StringBuilder();
		foreach (var w in new[] { "smtp", sender, "net!" + host }.Concat(users))
			ctl.Append(w).Append(' ');
		ctl.Append('\n');
		var cpath = Path.Join(qdir, "C." + id);
		var cmode = (FilePermissions)0x1b4; // 0664
		var cfd = Syscall.open(cpath, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, cmode);
		if (cfd < 0)
			Fail(cpath, "creating", dpath);
		try {
			Syscall.fchmod(cfd, cmode);
			if (!Posix.WriteAll(cfd, Encoding.Latin1.GetBytes(ctl.ToString())) || Syscall.fsync(cfd) != 0)
				Fail(cpath, "writing", dpath, cpath);
		} finally {
			Syscall.close(cfd);
		}
		if (!Posix.SyncDir(qdir))
			Fail(cpath, "syncing", dpath, cpath);
		return cpath;
	}

	static void Fail(string path, string what, params string[] remove)
	{
		var err = Posix.Err();
		foreach (var r in remove)
			Syscall.unlink(r); // no half job: runq never sees a C. without its D.
		throw new TempFail($"queue error {what} {path}: {err}");
	}

	static void MkDir(string dir, int mode)
	{
		if (Directory.Exists(dir))
			return;
		if (Syscall.mkdir(dir, (FilePermissions)mode) != 0 && Stdlib.GetLastError() != Errno.EEXIST)
			throw new TempFail($"cannot create queue directory {dir}: {Posix.Err()}");
		Syscall.chmod(dir, (FilePermissions)mode);
	}

	/// <summary>
	/// A new D. file, exclusively: id = the pid's last six digits, zero-padded; when taken the first
	/// character becomes a, b, … (D.004711, D.a04711).
	/// </summary>
	static string Create(string qdir, FilePermissions mode, out int fd)
	{
		var pid = (Environment.ProcessId % 1000000).ToString("D6", CultureInfo.InvariantCulture);
		for (var i = -1; i < 26; i++) {
			var id = i < 0 ? pid : (char)('a' + i) + pid[1..];
			if (File.Exists(Path.Join(qdir, "C." + id)))
				continue;
			fd = Syscall.open(Path.Join(qdir, "D." + id), OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, mode);
			if (fd >= 0) {
				Syscall.fchmod(fd, mode);
				return id;
			}
			if (Stdlib.GetLastError() != Errno.EEXIST)
				throw new TempFail($"cannot create data file in {qdir}: {Posix.Err()}");
		}
		throw new TempFail($"no free queue file name in {qdir}");
	}
}
