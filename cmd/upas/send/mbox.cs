using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>A mailbox failure that another try may cure (lock held too long, disk full): exit non-zero, smtpd says 450.</summary>
sealed class TempFail(string msg) : Exception(msg);

/// <summary>Appends an entry to /mail/box/user/mbox under the L.mbox lock, then fsyncs it (mailer.md §3).</summary>
static class Mbox
{
	const FilePermissions LockMode = (FilePermissions)0x1b6;   // 0666
	const FilePermissions BoxMode = (FilePermissions)0x192;    // 0622, as the mail tools create mailboxes
	const OpenFlags Common = OpenFlags.O_CLOEXEC | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK;

	/// <summary>How long a held lock is waited for; Plan 9: 5 minutes, retrying every 0.5 s.</summary>
	public static TimeSpan LockWait = TimeSpan.FromMinutes(5);

	/// <summary>Delivers entry to user's mailbox; the directory must exist. Throws TempFail when it cannot now.</summary>
	public static void Append(string user, byte[] entry)
	{
		var dir = Route.BoxDir(user);
		var lockfd = Lock(dir);
		try {
			var path = Path.Join(dir, "mbox");
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
				var size = st.st_size;
				if (!Posix.WriteAll(fd, entry) || Syscall.fsync(fd) != 0) {
					var err = Posix.Err();
					Syscall.ftruncate(fd, size); // never leave half an entry behind
					throw new TempFail($"error writing mail file {path}: {err}");
				}
			} finally {
				Syscall.close(fd);
			}
		} finally {
			if (lockfd >= 0)
				Syscall.close(lockfd); // releases the flock
		}
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
		while (Posix.Flock(fd, Posix.LOCK_EX | Posix.LOCK_NB) != 0) {
			if (DateTime.UtcNow >= deadline) {
				Syscall.close(fd);
				throw new TempFail($"mailbox locked: {path}");
			}
			Thread.Sleep(500);
		}
		return fd;
	}
}
