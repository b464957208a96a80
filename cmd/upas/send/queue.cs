using System.Globalization;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>qer's queue (mailer.md §4.1): D.id, then C.id as the commit point, in /mail/queue/subdir.</summary>
static class Queue
{
	const int RootMode = 0x3ff;	// 01777: everyone's send makes its directory here; only its owner may rename or remove it
	const int DirMode = 0x1fd;	// 0775

	/// <summary>The queue subdirectory: the invoking user's name, as qer without -q.</summary>
	public static string Subdir => Posix.UserName();

	public static string Root9 => Upas.Root.Path9("/mail/queue");

	/// <summary>
	/// Queues one job: smtp sender net!host users…, each word in upas's %%XX form (QueueWord) so that it
	/// survives the blank-separated line exactly; returns the control file once D. and C. are durable.
	/// </summary>
	public static string Enqueue(string sender, string host, IEnumerable<string> users, Content data)
	{
		var sub = Subdir;
		var none = sub == "none";
		using var dir = UserDir(sub);
		var dmode = (FilePermissions)(none ? 0x1b4 : 0x1b0); // 0664 / 0660
		var id = Create(dir, dmode, out var dfd);
		var dname = "D." + id;
		try {
			if (!data.CopyTo(b => Posix.WriteAll(dfd, b)) || Syscall.fsync(dfd) != 0)
				Fail(dir, dname, "writing", dname);
		} finally {
			Syscall.close(dfd);
		}
		if (!dir.Sync())
			Fail(dir, dname, "syncing", dname);
		var ctl = QueueWord.Line(new[] { "smtp", sender, "net!" + host }.Concat(users));
		var cname = "C." + id;
		var cmode = (FilePermissions)0x1b4; // 0664
		var cfd = dir.OpenRaw(cname, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL, cmode);
		if (cfd < 0)
			Fail(dir, cname, "creating", dname);
		try {
			Syscall.fchmod(cfd, cmode);
			if (!Posix.WriteAll(cfd, Encoding.ASCII.GetBytes(ctl)) || Syscall.fsync(cfd) != 0)
				Fail(dir, cname, "writing", dname, cname);
		} finally {
			Syscall.close(cfd);
		}
		if (!dir.Sync())
			Fail(dir, cname, "syncing", dname, cname);
		return Path.Join(dir.Path, cname);
	}

	static void Fail(SafeDir dir, string name, string what, params string[] remove)
	{
		var err = Posix.Err();
		foreach (var r in remove)
			dir.Unlink(r); // no half job: runq never sees a C. without its D.
		throw new TempFail($"queue error {what} {Path.Join(dir.Path, name)}: {err}");
	}

	/// <summary>
	/// The user's queue directory, made when missing, opened without following a link and used only when
	/// it is a directory of ours that others cannot write (decisions #24): a directory another user made
	/// first would give them our mail. Otherwise a TempFail saying why.
	/// </summary>
	static SafeDir UserDir(string sub)
	{
		var root = Root9;
		MkDir(root, RootMode);
		var path = Path.Join(root, sub);
		if (Syscall.mkdir(path, (FilePermissions)DirMode) == 0)
			Syscall.chmod(path, (FilePermissions)DirMode);
		else if (Stdlib.GetLastError() != Errno.EEXIST)
			throw new TempFail($"cannot create queue directory {path}: {Posix.Err()}");
		SafeDir dir;
		try {
			dir = SafeDir.Open(path);
		} catch (IOException e) {
			throw new TempFail($"queue directory not used: {e.Message}");
		}
		var why = Unsafe(dir);
		if (why is null)
			return dir;
		dir.Dispose();
		throw new TempFail($"queue directory {path} not used: {why}");
	}

	/// <summary>Why a queue directory is not ours to use; null when it is.</summary>
	static string? Unsafe(SafeDir dir)
	{
		if (Syscall.fstat(dir.Fd, out var st) != 0)
			return Posix.Err();
		var me = Syscall.geteuid();
		if (st.st_uid != me)
			return $"owned by uid {st.st_uid.ToString(CultureInfo.InvariantCulture)}, not by uid {me.ToString(CultureInfo.InvariantCulture)}";
		if ((st.st_mode & FilePermissions.S_IWOTH) != 0)
			return "writable by others";
		return null;
	}

	/// <summary>The queue's root, made mode 01777 when missing; one of ours without the sticky bit gets it.</summary>
	static void MkDir(string dir, int mode)
	{
		if (Syscall.lstat(dir, out var st) == 0) {
			if ((st.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR && st.st_uid == Syscall.geteuid() && (st.st_mode & FilePermissions.S_ISVTX) == 0)
				Syscall.chmod(dir, (st.st_mode & (FilePermissions)0xfff) | FilePermissions.S_ISVTX);
			return;
		}
		if (Syscall.mkdir(dir, (FilePermissions)mode) != 0 && Stdlib.GetLastError() != Errno.EEXIST)
			throw new TempFail($"cannot create queue directory {dir}: {Posix.Err()}");
		Syscall.chmod(dir, (FilePermissions)mode);
	}

	/// <summary>
	/// A new D. file, exclusively: id = the pid's last six digits, zero-padded; when taken the first
	/// character becomes a, b, … (D.004711, D.a04711).
	/// </summary>
	static string Create(SafeDir dir, FilePermissions mode, out int fd)
	{
		var pid = (Environment.ProcessId % 1000000).ToString("D6", CultureInfo.InvariantCulture);
		for (var i = -1; i < 26; i++) {
			var id = i < 0 ? pid : (char)('a' + i) + pid[1..];
			if (dir.Lstat("C." + id) is not null)
				continue;
			fd = dir.OpenRaw("D." + id, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL, mode);
			if (fd >= 0) {
				Syscall.fchmod(fd, mode);
				return id;
			}
			if (SafeDir.Error() != Errno.EEXIST)
				throw new TempFail($"cannot create data file in {dir.Path}: {Posix.Err()}");
		}
		throw new TempFail($"no free queue file name in {dir.Path}");
	}
}
