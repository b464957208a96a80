using Mono.Unix.Native;

namespace Upas;

/// <summary>Appends with O_APPEND and one write(2), so lines from concurrent processes never interleave or clobber.</summary>
public static class AppendFile
{
	/// <summary>Appends data; false when the file cannot be opened (missing and !create) or the write fails.</summary>
	public static unsafe bool Write(string path, ReadOnlySpan<byte> data, bool create = false, int mode = 0x1b6 /* 0666 */)
	{
		var flags = OpenFlags.O_WRONLY | OpenFlags.O_APPEND | OpenFlags.O_CLOEXEC;
		if (create)
			flags |= OpenFlags.O_CREAT;
		var fd = Syscall.open(path, flags, NativeConvert.ToFilePermissions((uint)mode));
		if (fd < 0)
			return false;
		try {
			fixed (byte* p = data) {
				long n;
				do
					n = Syscall.write(fd, p, (ulong)data.Length);
				while (n < 0 && Stdlib.GetLastError() == Errno.EINTR);
				return n == data.Length;
			}
		} finally {
			Syscall.close(fd);
		}
	}
}
