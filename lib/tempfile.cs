using Mono.Unix.Native;

namespace Upas;

/// <summary>Spool files of send, smtpd and smtp: in $TMPDIR (else /tmp), created exclusively, never through a link, mode 0600, unlinked at once.</summary>
public static class TempFile
{
	/// <summary>The descriptor of a new, already unlinked file (nobody else can open it; it goes with us); an IOException saying why when none can be made.</summary>
	public static int CreateUnlinked(string prefix)
	{
		var dir = Path.GetTempPath();
		for (var i = 0; i < 100; i++) {
			var path = Path.Join(dir, $"{prefix}.{Environment.ProcessId}.{Random.Shared.Next():x8}");
			var fd = Syscall.open(path, OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, (FilePermissions)0x180);
			if (fd >= 0) {
				Syscall.unlink(path);
				return fd;
			}
			var e = Stdlib.GetLastError();	// read once: asking again goes through a call that may clear it
			if (e != Errno.EEXIST)
				throw new IOException($"cannot create a spool file in {dir}: {Stdlib.strerror(e)}");
		}
		throw new IOException($"cannot create a spool file in {dir}");
	}
}
