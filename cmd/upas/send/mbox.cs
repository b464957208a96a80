using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>A mailbox failure that another try may cure (lock held too long, disk full): exit non-zero, smtpd says 450.</summary>
sealed class TempFail(string msg) : Exception(msg);

/// <summary>
/// Appends an entry to /mail/box/user/mbox under the L.mbox lock, then fsyncs it (mailer.md §3).
/// While it writes, L.mbox holds "inode offset length" of the append under way: a send killed in the
/// middle leaves that note behind, and the next delivery cuts the unfinished entry off before its own.
/// </summary>
static class Mbox
{
	const FilePermissions LockMode = (FilePermissions)0x1b6;   // 0666
	const FilePermissions BoxMode = (FilePermissions)0x192;    // 0622, as the mail tools create mailboxes
	const OpenFlags Common = OpenFlags.O_CLOEXEC | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK;

	/// <summary>How long a held lock is waited for; Plan 9: 5 minutes, retrying every 0.5 s.</summary>
	public static TimeSpan LockWait = TimeSpan.FromMinutes(5);

	/// <summary>
	/// Delivers an entry of length bytes, which write hands to its sink, to the mailbox file path (a rewrite
	/// rule's >> file, or /mail/box/user/mbox); its directory must exist. Throws TempFail when it cannot now.
	/// </summary>
	public static void Append(string path, long length, Func<Sink, bool> write)
	{
		var dir = Path.GetDirectoryName(path) ?? "/";
		var lockfd = Lock(dir);
		try {
			// a missing mbox in an existing box directory is created, mode 0622 whatever the umask
			var fd = Syscall.open(path, OpenFlags.O_WRONLY | OpenFlags.O_APPEND | OpenFlags.O_CREAT | OpenFlags.O_EXCL | Common, BoxMode);
			if (fd >= 0)
				Syscall.fchmod(fd, BoxMode);
			else if (Stdlib.GetLastError() == Errno.EEXIST)
				fd = Syscall.open(path, OpenFlags.O_WRONLY | OpenFlags.O_APPEND | Common);
			if (fd < 0)
				throw new TempFail($"mail file cannot be opened: {path}: {Posix.Err()}");
			try {
				if (Syscall.fstat(fd, out var st) != 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
					throw new TempFail($"mail file is not a plain file: {path}");
				var size = Recover(lockfd, fd, st, path);
				Note(lockfd, $"{st.st_ino} {size} {length}\n");
				var g = new Gather(b => Fd.WriteAll(fd, b));
				if (!write(g.Put) || !g.Flush() || Syscall.fsync(fd) != 0) {
					var err = Posix.Err();
					Syscall.ftruncate(fd, size); // never leave half an entry behind
					Note(lockfd, "");
					throw new TempFail($"error writing mail file {path}: {err}");
				}
				Note(lockfd, "");
			} finally {
				Syscall.close(fd);
			}
		} finally {
			if (lockfd >= 0)
				Syscall.close(lockfd); // releases the flock
		}
	}

	/// <summary>
	/// Cuts off what an interrupted append left (the note in L.mbox names this mailbox and the mailbox ends
	/// inside that append); the size the next entry starts at. The killed send never exited 0, so nobody
	/// was told the entry was delivered: its sender sends it again.
	/// </summary>
	static long Recover(int lockfd, int fd, Stat st, string path)
	{
		if (lockfd < 0 || ReadNote(lockfd) is not { } n)
			return st.st_size;
		if (n.Ino == st.st_ino && st.st_size > n.Offset && st.st_size <= n.Offset + n.Length && Syscall.ftruncate(fd, n.Offset) == 0) {
			Syslog.Log("mail", $"{path}: removed {st.st_size - n.Offset} bytes of an interrupted delivery");
			Note(lockfd, "");
			return n.Offset;
		}
		Note(lockfd, "");
		return st.st_size;
	}

	/// <summary>The "inode offset length" note of L.mbox, or null when it holds none.</summary>
	static (ulong Ino, long Offset, long Length)? ReadNote(int lockfd)
	{
		var buf = new byte[64];
		long n;
		unsafe {
			fixed (byte* p = buf)
				n = Syscall.pread(lockfd, p, (ulong)buf.Length, 0);
		}
		if (n <= 0)
			return null;
		var f = System.Text.Encoding.ASCII.GetString(buf, 0, (int)n).Split(' ', '\n');
		if (f.Length >= 3 && ulong.TryParse(f[0], out var ino) && long.TryParse(f[1], out var off) && long.TryParse(f[2], out var len) && off >= 0 && len > 0)
			return (ino, off, len);
		return null;
	}

	/// <summary>Replaces L.mbox's note; a lock file opened read-only takes none (and then nothing is recovered).</summary>
	static void Note(int lockfd, string text)
	{
		if (lockfd < 0)
			return;
		var b = System.Text.Encoding.ASCII.GetBytes(text);
		if (b.Length > 0) {
			unsafe {
				fixed (byte* p = b)
					Syscall.pwrite(lockfd, p, (ulong)b.Length, 0);
			}
		}
		Syscall.ftruncate(lockfd, b.Length);
	}

	/// <summary>Opens (creating, mode 0666) dir/L.mbox and takes an exclusive flock on it; -1 when the directory allows no lock file.</summary>
	static int Lock(string dir)
	{
		var path = Path.Join(dir, "L.mbox");
		var fd = Syscall.open(path, OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_EXCL | Common, LockMode);
		if (fd >= 0)
			Syscall.fchmod(fd, LockMode); // whatever the umask: the next sender may be another user
		else if (Stdlib.GetLastError() == Errno.EEXIST)
			fd = Syscall.open(path, OpenFlags.O_RDWR | Common);
		if (fd < 0)
			fd = Syscall.open(path, OpenFlags.O_RDONLY | Common); // flock needs no write permission
		if (fd < 0) {
			Syslog.Log("mail", $"lock error: {path}: {Posix.Err()}");
			return -1; // as Plan 9: deliver without the lock rather than not at all
		}
		var deadline = DateTime.UtcNow + LockWait;
		while (FileLock.Flock(fd, FileLock.Ex | FileLock.Nb) != 0) {
			if (DateTime.UtcNow >= deadline) {
				Syscall.close(fd);
				throw new TempFail($"mailbox locked: {path}");
			}
			Thread.Sleep(500);
		}
		return fd;
	}
}
