using System.Collections.Concurrent;
using System.Text;
using Mono.Unix.Native;

namespace Upas;

/// <summary>
/// The text of a small configuration file, read again only when stat(2) says it changed (device, inode, size,
/// mtime and ctime to the nanosecond): smtpd -L consults the names files and /mail/lib lists for every message.
/// </summary>
public static class FileText
{
	const long MaxCachedSize = 1 << 20;
	const int MaxEntries = 256;

	static readonly ConcurrentDictionary<string, (FileStamp Key, string Text)> Cache = new();

	/// <summary>The file's text as UTF-8; the exceptions of File.ReadAllText when it cannot be read.</summary>
	public static string Read(string path)
	{
		// stat before reading: a change after it gives a new key, so no stale text is ever kept under it
		if (Syscall.stat(path, out var st) != 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
			return File.ReadAllText(path, Encoding.UTF8); // missing or odd: File says why, as before
		var key = FileStamp.From(st);
		if (Cache.TryGetValue(path, out var c) && c.Key == key)
			return c.Text;
		var text = File.ReadAllText(path, Encoding.UTF8);
		if (st.st_size <= MaxCachedSize && (Cache.Count < MaxEntries || Cache.ContainsKey(path)))
			Cache[path] = (key, text);
		return text;
	}
}

/// <summary>
/// What stat(2) says of a file that changes with any write or replacement: device, inode, size, and mtime and ctime
/// to the nanosecond. Caches of files an administrator edits while smtpd -L runs are keyed by it.
/// </summary>
public readonly record struct FileStamp(ulong Dev, ulong Ino, long Size, long Mtime, long MtimeNsec, long Ctime, long CtimeNsec)
{
	public static FileStamp From(Stat st) =>
		new(st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec, st.st_ctime, st.st_ctime_nsec);

	/// <summary>The file's stamp; null when it cannot be stat'ed (missing).</summary>
	public static FileStamp? Of(string path) => Syscall.stat(path, out var st) == 0 ? From(st) : null;
}
