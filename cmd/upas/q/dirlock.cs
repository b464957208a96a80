using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>
/// -s: an exclusive flock(2) on a user directory itself, held for its whole pass, so that one runq at a
/// time works a directory. flock belongs to the open file, not the process: our own workers conflict with
/// each other as two runqs do, and the fd is close-on-exec, so a command we run never keeps it.
/// </summary>
sealed class DirLock : IDisposable
{
	int fd;

	DirLock(int fd) => this.fd = fd;

	/// <summary>The lock on dir (a new open of the directory itself, "."), or null when another holder has it; IOException when it can't be opened or locked at all.</summary>
	public static DirLock? Try(SafeDir dir)
	{
		var fd = dir.OpenRaw(".", OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY);
		if (fd < 0)
			throw new IOException(Posix.Message(Posix.Error()));
		if (FileLock.Flock(fd, FileLock.Ex | FileLock.Nb) == 0)
			return new DirLock(fd);
		var err = Posix.Error();
		Syscall.close(fd);
		if (err is Errno.EWOULDBLOCK or Errno.EAGAIN)
			return null;
		throw new IOException($"lock: {Posix.Message(err)}");
	}

	public void Dispose()
	{
		if (fd >= 0) {
			Syscall.close(fd); // the last close releases the flock
			fd = -1;
		}
	}
}
