using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>The errno of the last failed call (FileLock.Flock's or Mono.Posix's), and its text.</summary>
static class Posix
{
	/// <summary>The errno of the last failed call, Mono.Posix's or ours.</summary>
	public static Errno Error() => NativeConvert.ToErrno(Marshal.GetLastPInvokeError());

	public static string Message(Errno e) => Stdlib.strerror(e);
}
