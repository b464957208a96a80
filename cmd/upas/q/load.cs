using System.Globalization;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>
/// -l load: how many runqs work the queue now, kept as a decimal number in root/.runqload (Plan 9's file).
/// Each change is made under an exclusive flock on the file itself; a count not changed for 30 minutes
/// is taken as 0, so that runqs killed before they could count themselves out are forgotten.
/// </summary>
sealed class LoadLimit(string root, int limit)
{
	public const string FileName = ".runqload";
	const FilePermissions Mode = (FilePermissions)0x1b6; // 0666: every user's runq shares the count
	static readonly TimeSpan Stale = TimeSpan.FromMinutes(30);

	string LoadFile => Path.Join(root, FileName);
	int counted; // 1 while our increment is in the file

	/// <summary>Counts this runq in; false when limit of them are running already (the caller exits at once).
	/// Without -l, or when the file can't be used, there is no limit, as in Plan 9.</summary>
	public bool Enter(Action<string> debug)
	{
		if (limit <= 0)
			return true;
		int? seen = null;
		var r = Update(n => {
			seen = n;
			return n >= limit ? null : n + 1;
		});
		if (r is null)
			debug($"{LoadFile}: unusable, no load limit");
		else if (r is false)
			debug($"load {seen} >= {limit}: not running");
		else
			counted = 1;
		return r is not false;
	}

	/// <summary>Counts this runq out again; safe to call twice (the signal handlers and the normal end both do).</summary>
	public void Leave()
	{
		if (Interlocked.Exchange(ref counted, 0) == 1)
			Update(n => Math.Max(n - 1, 0));
	}

	/// <summary>Rewrites the count with change(count) under the lock: false when change said no (null), null when the file is unusable.</summary>
	bool? Update(Func<int, int?> change)
	{
		var fd = Open();
		if (fd < 0)
			return null;
		try {
			if (FileLock.Flock(fd, FileLock.Ex) != 0)
				return null;
			var n = change(Read(fd));
			if (n is null)
				return false;
			return Write(fd, n.Value) ? true : null;
		} finally {
			Syscall.close(fd); // releases the flock
		}
	}

	/// <summary>
	/// The file opened read-write, created mode 0666 whatever the umask when missing; -1 when impossible, or
	/// when it is a symbolic link or no plain file of one name (the queue's root is everyone's: a link planted
	/// there must not make a root runq write a file elsewhere).
	/// </summary>
	int Open()
	{
		const OpenFlags common = OpenFlags.O_RDWR | OpenFlags.O_CLOEXEC | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK;
		var fd = Syscall.open(LoadFile, common | OpenFlags.O_CREAT | OpenFlags.O_EXCL, Mode);
		if (fd >= 0)
			Syscall.fchmod(fd, Mode);
		else if (Stdlib.GetLastError() == Errno.EEXIST)
			fd = Syscall.open(LoadFile, common);
		if (fd < 0)
			return -1;
		if (Syscall.fstat(fd, out var st) != 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG || st.st_nlink != 1) {
			Syscall.close(fd);
			Syslog.Log(Program.Log, $"{LoadFile}: not a plain file, not used");
			return -1;
		}
		return fd;
	}

	/// <summary>The count in the file: 0 when it is stale, empty, negative or not a number.</summary>
	static unsafe int Read(int fd)
	{
		if (Syscall.fstat(fd, out var st) != 0 || DateTimeOffset.FromUnixTimeSeconds(st.st_mtime) + Stale < DateTimeOffset.UtcNow)
			return 0;
		var buf = new byte[32];
		long got;
		fixed (byte* p = buf)
			got = Syscall.pread(fd, p, (ulong)buf.Length, 0);
		if (got <= 0)
			return 0;
		var text = Encoding.ASCII.GetString(buf, 0, (int)got).Trim();
		return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 0;
	}

	static unsafe bool Write(int fd, int n)
	{
		var b = Encoding.ASCII.GetBytes($"{n}\n");
		long put;
		fixed (byte* p = b)
			put = Syscall.pwrite(fd, p, (ulong)b.Length, 0);
		return put == b.Length && Syscall.ftruncate(fd, b.Length) == 0;
	}
}
