using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Upas;

/// <summary>
/// A directory in a place other users can write (/mail/queue/user), opened once without following a link;
/// its files are opened, created and removed only relative to that descriptor (openat, unlinkat) and never
/// through a symbolic link, so that a link planted by another user never makes us read, write or delete
/// a file elsewhere (decisions #24).
/// </summary>
public sealed partial class SafeDir : IDisposable
{
	public int Fd { get; private set; }
	public string Path { get; }
	/// <summary>The directory's owner, as it was opened.</summary>
	public uint Owner { get; }

	const int AT_FDCWD = -100;
	const int O_PATH = 0x200000; // Linux: a handle for fstat only

	[LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
	private static partial int openat_(int dirfd, string path, int flags, uint mode);

	[LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
	private static partial int unlinkat_(int dirfd, string path, int flags);

	[LibraryImport("libc", EntryPoint = "futimens", SetLastError = true)]
	private static partial int futimens_(int fd, IntPtr times);

	SafeDir(int fd, string path, uint owner)
	{
		Fd = fd;
		Path = path;
		Owner = owner;
	}

	/// <summary>The errno of the last failed call of ours or of Mono.Posix.</summary>
	public static Errno Error() => NativeConvert.ToErrno(Marshal.GetLastPInvokeError());

	static int Native(OpenFlags f) => NativeConvert.FromOpenFlags(f);

	/// <summary>Opens path as a directory, refusing a symbolic link; throws IOException saying why when it cannot.</summary>
	public static SafeDir Open(string path)
	{
		var fd = Syscall.open(path, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC);
		if (fd < 0) {
			var e = Stdlib.GetLastError();
			throw new IOException(e is Errno.ELOOP or Errno.ENOTDIR ? $"{path}: not a directory (a symbolic link?)" : $"{path}: {Stdlib.strerror(e)}");
		}
		if (Syscall.fstat(fd, out var st) != 0) {
			var e = Stdlib.GetLastError();
			Syscall.close(fd);
			throw new IOException($"{path}: {Stdlib.strerror(e)}");
		}
		return new SafeDir(fd, path, st.st_uid);
	}

	/// <summary>lstat of a name in the directory (a link is reported as a link); null when it is missing.</summary>
	public Stat? Lstat(string name)
	{
		var fd = openat_(Fd, name, O_PATH | Native(OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC), 0);
		if (fd < 0)
			return null;
		try {
			return Syscall.fstat(fd, out var st) == 0 ? st : null;
		} finally {
			Syscall.close(fd);
		}
	}

	/// <summary>openat(2) of a name in the directory, O_NOFOLLOW always added; -1 and errno on failure.</summary>
	public int OpenRaw(string name, OpenFlags flags, FilePermissions mode = 0) =>
		openat_(Fd, name, Native(flags | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC), (uint)mode);

	/// <summary>
	/// Opens an existing file of the directory that must be a regular file with one link, owned by the
	/// directory's owner or by root (what our own programs create); -1 with why otherwise.
	/// </summary>
	public int OpenOwned(string name, OpenFlags flags, out string? why)
	{
		why = null;
		var fd = OpenRaw(name, flags | OpenFlags.O_NONBLOCK);
		if (fd < 0) {
			var e = Error();
			why = e == Errno.ELOOP ? "a symbolic link" : Stdlib.strerror(e);
			return -1;
		}
		if (Syscall.fstat(fd, out var st) != 0)
			why = Stdlib.strerror(Stdlib.GetLastError());
		else if ((st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
			why = "not a regular file";
		else if (st.st_nlink != 1)
			why = "a file with more than one name (a hard link?)";
		else if (st.st_uid != Owner && st.st_uid != 0)
			why = $"owned by uid {st.st_uid}, not by the directory's owner";
		if (why is null)
			return fd;
		Syscall.close(fd);
		return -1;
	}

	/// <summary>Removes a name of the directory (a link itself, never what it points to); false when it was not there.</summary>
	public bool Unlink(string name) => unlinkat_(Fd, name, 0) == 0;

	/// <summary>Sets a descriptor's modification time to now.</summary>
	public static bool Touch(int fd) => futimens_(fd, IntPtr.Zero) == 0;

	/// <summary>The names in the directory, read through the descriptor (not the path, which may have changed since).</summary>
	public string[] Names(string pattern) =>
		Directory.GetFiles($"/proc/self/fd/{Fd}", pattern).Select(System.IO.Path.GetFileName).OfType<string>().ToArray();

	/// <summary>A path that opens the very file of a descriptor of ours, for a child that opens it by name (sh's redirections).</summary>
	public static string FdPath(int fd) => $"/proc/{Environment.ProcessId}/fd/{fd}";

	public bool Sync() => Syscall.fsync(Fd) == 0;

	public void Dispose()
	{
		if (Fd >= 0) {
			Syscall.close(Fd);
			Fd = -1;
		}
	}
}
