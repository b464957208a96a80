using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Upas;

/// <summary>flock(2), which Mono.Posix lacks: send's mailbox lock and runq's job, directory and load locks.</summary>
public static partial class FileLock
{
	public const int Ex = 2, Nb = 4, Un = 8;

	[LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
	private static partial int flock_(int fd, int op);

	/// <summary>flock(fd, op), restarted when a signal interrupts it; on failure the errno is Marshal.GetLastPInvokeError().</summary>
	public static int Flock(int fd, int op)
	{
		int r;
		do
			r = flock_(fd, op);
		while (r < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
		return r;
	}
}
