using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>
/// An exclusive fcntl lock on a job's control file, taken without waiting. It is held by this process
/// only (never inherited by the command), dies with it, and is checked against the name after locking:
/// a C. file removed by the runq that held it before us is not ours to run.
/// </summary>
sealed class JobLock : IDisposable
{
	int fd;

	JobLock(int fd) => this.fd = fd;

	/// <summary>The lock on path, or null when another process holds it or the file is gone.</summary>
	public static JobLock? Try(string path)
	{
		var fd = Syscall.open(path, OpenFlags.O_RDWR | OpenFlags.O_CLOEXEC);
		if (fd < 0)
			return null;
		var fl = new Flock { l_type = LockType.F_WRLCK, l_whence = SeekFlags.SEEK_SET, l_start = 0, l_len = 0 };
		int r;
		do
			r = Syscall.fcntl(fd, FcntlCommand.F_SETLK, ref fl);
		while (r < 0 && Stdlib.GetLastError() == Errno.EINTR);
		if (r < 0 || !SameFile(fd, path)) {
			Syscall.close(fd);
			return null;
		}
		return new JobLock(fd);
	}

	/// <summary>Whether path still names the file open on fd (it was not removed or replaced meanwhile).</summary>
	static bool SameFile(int fd, string path) =>
		Syscall.fstat(fd, out var a) == 0 && Syscall.stat(path, out var b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;

	public void Dispose()
	{
		if (fd >= 0) {
			Syscall.close(fd); // closing releases the lock
			fd = -1;
		}
	}
}
