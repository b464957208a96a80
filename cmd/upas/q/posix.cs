using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>The system calls Mono.Posix lacks.</summary>
static partial class Posix
{
	public const int LOCK_EX = 2, LOCK_NB = 4;

	[LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
	private static partial int flock_(int fd, int op);

	/// <summary>flock(2), restarted when a signal interrupts it; on failure the errno is in Error().</summary>
	public static int Flock(int fd, int op)
	{
		int r;
		do
			r = flock_(fd, op);
		while (r < 0 && Error() == Errno.EINTR);
		return r;
	}

	/// <summary>The errno of the last failed call, Mono.Posix's or ours.</summary>
	public static Errno Error() => NativeConvert.ToErrno(Marshal.GetLastPInvokeError());

	public static string Message(Errno e) => Stdlib.strerror(e);
}
