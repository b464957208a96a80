using Mono.Unix.Native;

namespace Upas;

/// <summary>Whole-buffer writes to a file descriptor, for the files whose bytes must all land (mailboxes, queue files).</summary>
public static class Fd
{
	/// <summary>Writes all of data, again after EINTR; false on an error.</summary>
	public static unsafe bool WriteAll(int fd, ReadOnlySpan<byte> data)
	{
		fixed (byte* p = data) {
			var off = 0;
			while (off < data.Length) {
				var n = Syscall.write(fd, p + off, (ulong)(data.Length - off));
				if (n < 0) {
					if (Stdlib.GetLastError() == Errno.EINTR)
						continue;
					return false;
				}
				off += (int)n;
			}
		}
		return true;
	}
}
