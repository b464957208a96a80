using System.Text;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>
/// An exclusive flock on a job's control file, taken without waiting, and checked against the name after
/// locking: a C. file removed by the runq that held it before us is not ours to run. The queue command
/// inherits a duplicate (Inherit), so the lock lives until both runq and the command are gone: a runq
/// killed in the middle of a transfer leaves the job locked until its smtp has finished with it.
/// </summary>
sealed class JobLock : IDisposable
{
	int fd;

	JobLock(int fd) => this.fd = fd;

	/// <summary>
	/// The lock on the control file name of dir, or null: when another process holds it or the file is gone
	/// (why null), or when it is no plain file of the directory's owner (why says so).
	/// </summary>
	public static JobLock? Try(SafeDir dir, string name, out string? why)
	{
		var fd = dir.OpenOwned(name, OpenFlags.O_RDONLY, out why);
		if (fd < 0) {
			if (dir.Lstat(name) is null)
				why = null; // gone meanwhile: another runq's
			return null;
		}
		if (FileLock.Flock(fd, FileLock.Ex | FileLock.Nb) < 0 || !SameFile(fd, dir, name)) {
			Syscall.close(fd);
			return null;
		}
		return new JobLock(fd);
	}

	/// <summary>fstat of the locked control file.</summary>
	public Stat Stat()
	{
		Syscall.fstat(fd, out var st);
		return st;
	}

	/// <summary>The control file's text, read through the locked descriptor (.NET's own opens would meet our flock).</summary>
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

	/// <summary>
	/// Starts a process (start is called under Spawn.Gate) that inherits this lock and a descriptor of the job's
	/// directory, whose number start is given (-1: none): dup clears close-on-exec.
	/// </summary>
	public T Inherit<T>(SafeDir dir, Func<int, T> start)
	{
		lock (Spawn.Gate) {
			var dup = Syscall.dup(fd);
			var ddup = Syscall.dup(dir.Fd);
			try {
				return start(ddup);
			} finally {
				if (dup >= 0)
					Syscall.close(dup);
				if (ddup >= 0)
					Syscall.close(ddup);
			}
		}
	}

	/// <summary>Whether the name still names the file open on fd (it was not removed or replaced meanwhile).</summary>
	static bool SameFile(int fd, SafeDir dir, string name) =>
		Syscall.fstat(fd, out var a) == 0 && dir.Lstat(name) is { } b && a.st_dev == b.st_dev && a.st_ino == b.st_ino;

	public void Dispose()
	{
		if (fd >= 0) {
			Syscall.close(fd); // the lock goes with the last descriptor: ours or the command's
			fd = -1;
		}
	}
}
