using System.Runtime.InteropServices;

namespace Upas;

/// <summary>Appends with O_APPEND and one write(2), so lines from concurrent processes never interleave or clobber.</summary>
public static partial class AppendFile
{
	// Linux values; straight libc calls: a log line must not make every smtpd load MonoPosixHelper
	const int O_WRONLY = 0x1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000, EINTR = 4;

	[LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
	private static partial int open_(string path, int flags, uint mode);

	[LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
	private static unsafe partial nint write_(int fd, byte* buf, nuint count);

	[LibraryImport("libc", EntryPoint = "close")]
	private static partial int close_(int fd);

	/// <summary>Appends data; false when the file cannot be opened (missing and !create) or the write fails.</summary>
	public static unsafe bool Write(string path, ReadOnlySpan<byte> data, bool create = false, int mode = 0x1b6 /* 0666 */)
	{
		var flags = O_WRONLY | O_APPEND | O_CLOEXEC;
		if (create)
			flags |= O_CREAT;
		int fd;
		do
			fd = open_(path, flags, (uint)mode);
		while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
		if (fd < 0)
			return false;
		try {
			fixed (byte* p = data) {
				nint n;
				do
					n = write_(fd, p, (nuint)data.Length);
				while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
				return n == data.Length;
			}
		} finally {
			close_(fd);
		}
	}
}
