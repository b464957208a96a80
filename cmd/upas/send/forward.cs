using System.Text;
using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>
/// /mail/box/user/forward (mailer.md §3 step 1): the addresses the user's mail goes to instead of the mailbox.
/// All lines are joined (a trailing '\' is a continuation, as in Plan 9, where every line end becomes a
/// blank anyway) and split at white space and commas.
/// </summary>
static class Forward
{
	/// <summary>A forward file larger than this is not one: it is ignored (and logged).</summary>
	const int MaxSize = 64 * 1024;

	static readonly char[] Separators = [' ', '\t', '\n', '\r', '\f', '\v', ','];

	/// <summary>
	/// The user's forwarding addresses; null when the mail is not forwarded: no forward file, one without
	/// addresses (Plan 9 then delivers as if there were none), or one that is not a regular file, is too
	/// large or cannot be read (logged: the mailbox is the safe place for the mail).
	/// </summary>
	public static List<string>? Read(string dir)
	{
		var path = Path.Join(dir, "forward");
		if (BoxFile.Regular(path) is not { } st)
			return null;
		if (st.st_size > MaxSize) {
			Syslog.Log("mail", $"{path}: forward file too large, ignored");
			return null;
		}
		byte[] text;
		try {
			text = BoxFile.ReadAll(path);
		} catch (IOException e) {
			Syslog.Log("mail", $"{path}: cannot read forward file, ignored: {e.Message}");
			return null;
		}
		var addrs = Parse(Encoding.UTF8.GetString(text));
		return addrs.Count > 0 ? addrs : null;
	}

	/// <summary>The addresses of a forward file's text, in order, each once.</summary>
	public static List<string> Parse(string text)
	{
		var joined = text.Replace("\\\r\n", " ").Replace("\\\n", " ");
		var list = new List<string>();
		foreach (var a in joined.Split(Separators, StringSplitOptions.RemoveEmptyEntries)) {
			if (!list.Contains(a))
				list.Add(a);
		}
		return list;
	}
}

/// <summary>The files of a mailbox directory a user controls: trusted only when they are plain files, never through a link.</summary>
static class BoxFile
{
	/// <summary>lstat of path when it is a regular file; null when missing, or a symbolic link (logged), directory, device….</summary>
	public static Stat? Regular(string path)
	{
		if (Syscall.lstat(path, out var st) != 0)
			return null;
		var type = st.st_mode & FilePermissions.S_IFMT;
		if (type == FilePermissions.S_IFREG)
			return st;
		// a link could make root read or run another user's file: ignored, as if absent
		Syslog.Log("mail", $"{path}: not a regular file, ignored");
		return null;
	}

	/// <summary>Reads a file without following a symbolic link put there since the lstat.</summary>
	public static byte[] ReadAll(string path)
	{
		var fd = Syscall.open(path, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC | OpenFlags.O_NONBLOCK);
		if (fd < 0)
			throw new IOException(Posix.Err());
		try {
			if (Syscall.fstat(fd, out var st) != 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
				throw new IOException("not a regular file");
			var m = new MemoryStream();
			var buf = new byte[8192];
			while (true) {
				long n;
				unsafe {
					fixed (byte* p = buf)
						n = Syscall.read(fd, p, (ulong)buf.Length);
				}
				if (n < 0) {
					if (Stdlib.GetLastError() == Errno.EINTR)
						continue;
					throw new IOException(Posix.Err());
				}
				if (n == 0)
					return m.ToArray();
				m.Write(buf, 0, (int)n);
			}
		} finally {
			Syscall.close(fd);
		}
	}
}
