using Microsoft.Win32.SafeHandles;
using Mono.Unix.Native;

namespace Upas.Smtp;

/// <summary>
/// How a signed message's body is read a second time (the signature, hash of the body included, goes before
/// the header): standard input rewound when it is a regular file (runq hands smtp the queue's D. file), else
/// the body kept in an unlinked temporary file. Memory stays bounded either way.
/// </summary>
static class SecondPass
{
	/// <summary>Seeks standard input back to where it is now, when it is a regular file; null when it is not (a pipe, a terminal).</summary>
	public static Func<bool>? StdinRewind()
	{
		if (Syscall.fstat(0, out var st) != 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
			return null;
		var at = Syscall.lseek(0, 0, SeekFlags.SEEK_CUR);
		if (at < 0)
			return null;
		return () => Syscall.lseek(0, at, SeekFlags.SEEK_SET) == at;
	}

	/// <summary>
	/// An empty read-write file in $TMPDIR (else /tmp), mode 0600, already unlinked: nobody else can open it and it
	/// goes when smtp exits. An IOException when none can be made.
	/// </summary>
	public static Stream Spool() =>
		// unbuffered: the converter reads and writes it 64 KB at a time
		new FileStream(new SafeFileHandle(TempFile.CreateUnlinked("upas-smtp"), ownsHandle: true), FileAccess.ReadWrite, 0);
}
