using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>Directory syncs, the user's name, a dying process.</summary>
static class Posix
{
	/// <summary>fsync of a directory, so that the names created in it are durable.</summary>
	public static bool SyncDir(string dir)
	{
		var fd = Syscall.open(dir, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
		if (fd < 0)
			return false;
		try {
			return Syscall.fsync(fd) == 0;
		} finally {
			Syscall.close(fd);
		}
	}

	public static string Err() => Stdlib.strerror(Stdlib.GetLastError());

	/// <summary>The invoking user's login name (the queue subdirectory, the default sender).</summary>
	public static string UserName()
	{
		var pw = Syscall.getpwuid(Syscall.geteuid());
		if (pw is not null && !string.IsNullOrEmpty(pw.pw_name))
			return pw.pw_name;
		return Environment.UserName;
	}

	/// <summary>
	/// Whether process pid is gone or on its way out: /proc/pid/stat shows it a zombie or dead, or with
	/// PF_EXITING (flags, field 9), which the kernel sets before it closes a dying process's files.
	/// </summary>
	public static bool Dying(int pid)
	{
		string stat;
		try {
			stat = File.ReadAllText($"/proc/{pid}/stat");
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return Directory.Exists("/proc/self"); // gone, unless there is no /proc to go by
		}
		var f = stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
		const uint PF_EXITING = 0x4;
		return f.Length < 7 || f[0] is "Z" or "X" or "x" || (uint.TryParse(f[6], out var flags) && (flags & PF_EXITING) != 0);
	}
}
