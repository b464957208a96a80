using System.Globalization;
using System.Text;
using Mono.Unix.Native;

namespace Upas;

/// <summary>Takes the next piece of a stream of bytes; false to say the copy failed.</summary>
public delegate bool ByteSink(ReadOnlySpan<byte> bytes);

/// <summary>
/// qer's queue (mailer.md §4.1), shared by qer(8) and send(8): in root/subdir, D.id (the data), then F.id, G.id…
/// (copies of qer -f files), then C.id (the words, the commit point), each written, fsynced and its name made
/// durable before the next; never through a link, and only in a directory of the user's own (decisions #24).
/// </summary>
public static class Qer
{
	/// <summary>Why a job could not be queued (a temporary failure: nothing was left behind).</summary>
	public sealed class Failure(string msg) : Exception(msg);

	const int RootMode = 0x3ff;	// 01777: everyone's queue directory is made here; only its owner may rename or remove it
	const int DirMode = 0x1fd;	// 0775

	/// <summary>The invoking user's login name: the queue subdirectory without -q.</summary>
	public static string UserName()
	{
		var pw = Syscall.getpwuid(Syscall.geteuid());
		return pw is not null && !string.IsNullOrEmpty(pw.pw_name) ? pw.pw_name : Environment.UserName;
	}

	/// <summary>
	/// Queues one job in root/subdir (subdir null: the user's name): the data written by data, copies of files,
	/// and the control line "word word … copy… " + LF, each word in upas's %%XX form (QueueWord) so that it
	/// survives exactly. Returns the control file's path once everything is durable; throws Failure.
	/// </summary>
	public static string Enqueue(string root, string? subdir, IReadOnlyList<string> words, Func<ByteSink, bool> data, IReadOnlyList<string>? files = null, string? id = null)
	{
		var user = UserName();
		// Plan 9's qer: none's and -q's data are readable by all
		var shared = subdir is not null || user == "none";
		using var dir = UserDir(root, subdir ?? user);
		var jid = Create(dir, (FilePermissions)(shared ? 0x1b4 : 0x1b0), id, out var dfd); // 0664 / 0660
		var made = new List<string> { "D." + jid };
		try {
			if (!data(b => Fd.WriteAll(dfd, b)) || Syscall.fsync(dfd) != 0)
				Fail(dir, made[0], "writing", made);
		} finally {
			Syscall.close(dfd);
		}
		var copies = new List<string>();
		if (files is not null) {
			for (var i = 0; i < files.Count; i++) {
				var name = (char)('F' + i) + "." + jid;
				Copy(dir, files[i], name, made);
				copies.Add(Path.Join(dir.Path, name));
			}
		}
		if (!dir.Sync())
			Fail(dir, made[0], "syncing", made);
		var cname = "C." + jid;
		var cmode = (FilePermissions)0x1b4; // 0664
		var cfd = dir.OpenRaw(cname, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL, cmode);
		if (cfd < 0)
			Fail(dir, cname, "creating", made);
		made.Add(cname);
		try {
			Syscall.fchmod(cfd, cmode);
			if (!Fd.WriteAll(cfd, Encoding.ASCII.GetBytes(QueueWord.Line(words.Concat(copies)))) || Syscall.fsync(cfd) != 0)
				Fail(dir, cname, "writing", made);
		} finally {
			Syscall.close(cfd);
		}
		if (!dir.Sync())
			Fail(dir, cname, "syncing", made);
		return Path.Join(dir.Path, cname);
	}

	/// <summary>A copy of the file at from as name (mode 0660), synced; an orphan of that name (no C., no D.) is replaced.</summary>
	static void Copy(SafeDir dir, string from, string name, List<string> made)
	{
		var flags = OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL;
		var fd = dir.OpenRaw(name, flags, (FilePermissions)0x1b0);
		if (fd < 0 && SafeDir.Error() == Errno.EEXIST && dir.Unlink(name))
			fd = dir.OpenRaw(name, flags, (FilePermissions)0x1b0);
		if (fd < 0)
			Fail(dir, name, "creating", made);
		made.Add(name);
		try {
			Syscall.fchmod(fd, (FilePermissions)0x1b0);
			bool ok;
			try {
				using var src = File.OpenRead(from);
				var buf = new byte[65536];
				int n;
				ok = true;
				while (ok && (n = src.Read(buf)) > 0)
					ok = Fd.WriteAll(fd, buf.AsSpan(0, n));
			} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
				foreach (var r in made)
					dir.Unlink(r);
				throw new Failure($"copying {from} to queue: {e.Message}");
			}
			if (!ok || Syscall.fsync(fd) != 0)
				Fail(dir, name, "writing", made);
		} finally {
			Syscall.close(fd);
		}
	}

	static void Fail(SafeDir dir, string name, string what, List<string> remove)
	{
		var err = Stdlib.strerror(Stdlib.GetLastError());
		foreach (var r in remove)
			dir.Unlink(r); // no half job: runq never sees a C. without its D.
		throw new Failure($"queue error {what} {Path.Join(dir.Path, name)}: {err}");
	}

	/// <summary>
	/// The queue directory, made when missing, opened without following a link and used only when it is a
	/// directory of ours that others cannot write (decisions #24): a directory another user made first would
	/// give them our mail. Otherwise a Failure saying why.
	/// </summary>
	static SafeDir UserDir(string root, string sub)
	{
		MkRoot(root);
		var path = Path.Join(root, sub);
		if (Syscall.mkdir(path, (FilePermissions)DirMode) == 0)
			Syscall.chmod(path, (FilePermissions)DirMode);
		else if (Stdlib.GetLastError() != Errno.EEXIST)
			throw new Failure($"cannot create queue directory {path}: {Stdlib.strerror(Stdlib.GetLastError())}");
		SafeDir dir;
		try {
			dir = SafeDir.Open(path);
		} catch (IOException e) {
			throw new Failure($"queue directory not used: {e.Message}");
		}
		var why = Unsafe(dir);
		if (why is null)
			return dir;
		dir.Dispose();
		throw new Failure($"queue directory {path} not used: {why}");
	}

	/// <summary>Why a queue directory is not ours to use; null when it is.</summary>
	static string? Unsafe(SafeDir dir)
	{
		if (Syscall.fstat(dir.Fd, out var st) != 0)
			return Stdlib.strerror(Stdlib.GetLastError());
		var me = Syscall.geteuid();
		if (st.st_uid != me)
			return $"owned by uid {st.st_uid.ToString(CultureInfo.InvariantCulture)}, not by uid {me.ToString(CultureInfo.InvariantCulture)}";
		if ((st.st_mode & FilePermissions.S_IWOTH) != 0)
			return "writable by others";
		return null;
	}

	/// <summary>The queue's root, made mode 01777 when missing; one of ours without the sticky bit gets it.</summary>
	static void MkRoot(string dir)
	{
		if (Syscall.lstat(dir, out var st) == 0) {
			if ((st.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR && st.st_uid == Syscall.geteuid() && (st.st_mode & FilePermissions.S_ISVTX) == 0)
				Syscall.chmod(dir, (st.st_mode & (FilePermissions)0xfff) | FilePermissions.S_ISVTX);
			return;
		}
		if (Syscall.mkdir(dir, (FilePermissions)RootMode) != 0 && Stdlib.GetLastError() != Errno.EEXIST)
			throw new Failure($"cannot create queue directory {dir}: {Stdlib.strerror(Stdlib.GetLastError())}");
		Syscall.chmod(dir, (FilePermissions)RootMode);
	}

	/// <summary>
	/// A new D. file, exclusively: id = the pid's last six digits, zero-padded (or the six digits given: a
	/// process that queues many jobs at once); when taken the first character becomes a, b, … (D.004711, D.a04711).
	/// </summary>
	static string Create(SafeDir dir, FilePermissions mode, string? digits, out int fd)
	{
		var pid = digits ?? (Environment.ProcessId % 1000000).ToString("D6", CultureInfo.InvariantCulture);
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
				throw new Failure($"cannot create data file in {dir.Path}: {Stdlib.strerror(SafeDir.Error())}");
		}
		throw new Failure($"no free queue file name in {dir.Path}");
	}
}
