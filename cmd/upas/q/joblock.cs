using System.Text;
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

	/// <summary>
	/// The control file's text, read through the locked fd: opening and closing the file anew (File.ReadAllText)
	/// would drop the lock, since closing any fd of a file releases the process's fcntl locks on it.
	/// </summary>
	public unsafe string ReadText()
	{
		var buf = new MemoryStream();
		var chunk = new byte[4096];
		long off = 0;
		while (true) {
			long n;
			fixed (byte* p = chunk)
				n = Syscall.pread(fd, p, (ulong)chunk.Length, off);
			if (n < 0 && Stdlib.GetLastError() == Errno.EINTR)
				continue;
			if (n < 0)
				throw new IOException(Stdlib.strerror(Stdlib.GetLastError()));
			if (n == 0)
				return Encoding.UTF8.GetString(buf.GetBuffer(), 0, (int)buf.Length);
			buf.Write(chunk, 0, (int)n);
			off += n;
		}
	}

	public void Dispose()
	{
		if (fd >= 0) {
			Syscall.close(fd); // closing releases the lock
			fd = -1;
		}
	}
}
