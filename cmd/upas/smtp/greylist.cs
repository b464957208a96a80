using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using DnsClient;
using Mono.Unix.Native;

namespace Upas.Smtpd;

// Greylisting, -g (smtpd.md §11, files.md §4.1–4.2, decisions #10).
//
// /mail/grey/whitelist is read afresh at every check; smtpd only appends to it, one O_APPEND write
// per line ("<rsys> <hostname>" or "<rsys>"), so concurrent sessions and administrators' `echo >>`
// never interleave. When it is missing greylisting is off (Bell Labs) and smtpd logs, once per
// connection:
//	greylisting (-g) is off: no /mail/grey/whitelist
//
// Markers are /mail/grey/tmp/<lsys>/<rsys>/<user>. Beyond the reference:
//   - the three components are made safe: lsys and rsys are written in their canonical address form
//     when they are addresses, else escaped like a user; the user keeps [A-Za-z0-9._+-] (and not a
//     leading '.'), every other byte of its UTF-8 becomes %XX, the empty name is "%", and a name
//     whose escaped form exceeds 200 bytes is cut to 120 bytes plus "%~" and the SHA-256 of the name
//     in hex. So "/", ".", "..", control and 8-bit bytes, and long names never leave (or break)
//     tmp/<lsys>/<rsys>/. The directories are walked with openat(O_NOFOLLOW): a symbolic link planted
//     in the world-writable tree is refused, not followed. A recipient given twice (or two recipients
//     with the same user) is checked once.
//   - while checking, smtpd deletes the markers of that <lsys>/<rsys> directory older than the 14-hour
//     window: harmless, since an older marker can never make a call recent (it is only touched), so
//     the next call behaves the same with or without it.
//   - the administrator may clean the whole tree at any time (the worst effect is one more retry);
//     the line for cron, also in smtpd(8) and the README:
//	find $PLAN9/mail/grey/tmp -type f -mmin +840 -delete; find $PLAN9/mail/grey/tmp -mindepth 1 -type d -empty -delete
//
// Errors creating or touching a marker are logged ("greylist: …") and count as "not recent", as in the
// reference: mail is deferred, never lost.

/// <summary>-g at DATA.</summary>
sealed partial class Session
{
	bool greyOffLogged;

	/// <summary>True when the message may go on; otherwise replies 451 and ends the session (exit 1).</summary>
	async Task<bool> GreylistPasses()
	{
		if (policy.Trusted || authenticated)
			return true; // trusted clients are never greylisted (the caller already asks only in state Accept)
		var grey = new Greylist(Root.Path9("/mail/grey"), Log);
		switch (grey.Whitelisted(rsys)) {
		case null:
			if (!greyOffLogged)
				Log(Greylist.OffMessage);
			greyOffLogged = true;
			return true;
		case true:
			return true;
		}
		if (grey.AnyRecent(lsys, rsys, rcpts, DateTimeOffset.UtcNow.ToUnixTimeSeconds())) {
			grey.AddToWhitelist(rsys, await Greylist.HostName(rsys, conf.DnsServers));
			return true;
		}
		Log($"no recent call from {rsys} for a rcpt; rejecting with temporary failure");
		Reply("451 4.7.1 please try again soon from the same IP.");
		throw new Hangup(1);
	}
}

/// <summary>The files of greylisting under a /mail/grey directory: the whitelist and the markers.</summary>
sealed class Greylist(string dir, Action<string> log)
{
	public const string OffMessage = "greylisting (-g) is off: no /mail/grey/whitelist";
	public const long MinAge = 5 * 60, MaxAge = 14 * 60 * 60;
	public static readonly TimeSpan LookupTimeout = TimeSpan.FromSeconds(2);
	const int MaxName = 200, HeadName = 120;

	string WhitelistPath => Path.Join(dir, "whitelist");
	string TmpPath => Path.Join(dir, "tmp");

	/// <summary>Is rsys on the whitelist? null when there is no whitelist (greylisting off).</summary>
	public bool? Whitelisted(string rsys)
	{
		try {
			var lines = File.ReadAllLines(WhitelistPath);
			return IpNet.Addr(rsys) is { } a && Covers(lines, a);
		} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
			return null;
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			log($"greylist: can't read /mail/grey/whitelist: {e.Message}");
			return false; // an unreadable list is an empty one: defer, do not open the door
		}
	}

	/// <summary>
	/// Whitelist lines: the entry is the text before the first space or tab; blank and # lines are
	/// skipped; a.b.c.d/n and v6[/n] are networks, a bare a.b.c.d is its /24 (Bell Labs), bare IPv6 a /128.
	/// </summary>
	public static bool Covers(IEnumerable<string> lines, System.Net.IPAddress a)
	{
		foreach (var line in lines) {
			var end = line.AsSpan().IndexOfAny(" \t\r");
			var entry = end < 0 ? line : line[..end];
			if (entry.Length == 0 || entry.StartsWith('#'))
				continue;
			if (IpNet.TryParse(entry, out var n, bareV4: 24) && n.Contains(a))
				return true;
		}
		return false;
	}

	/// <summary>Checks (and creates or touches) every recipient's marker; true when one was recent.</summary>
	public bool AnyRecent(string lsys, string rsys, IEnumerable<string> rcpts, long now)
	{
		var l = SysName(lsys);
		var r = SysName(rsys);
		using var rdir = OpenDirs(l, r);
		var recent = false;
		var seen = new HashSet<string>(StringComparer.Ordinal);
		foreach (var rcpt in rcpts) {
			var name = SafeName(rcpt[(rcpt.LastIndexOf('!') + 1)..]);
			if (!seen.Add(name))
				continue;
			var where = $"/mail/grey/tmp/{l}/{r}/{name}";
			switch (rdir is null ? Mark.Failed : Check(rdir.Fd, name, where, now)) {
			case Mark.Registered:
				log($"no call registered for {rsys}/{rcpt}; registering");
				break;
			case Mark.Recent:
				log($"{rsys}/{rcpt} was grey; adding IP to white");
				recent = true;
				break;
			case Mark.NotRecent:
				log($"call for {rsys}/{rcpt} was just minutes ago or long ago");
				break;
			}
		}
		if (rdir is not null)
			Expire(rdir.Fd, Path.Join(TmpPath, l, r), now);
		return recent;
	}

	/// <summary>Appends "rsys name" (or "rsys") to the whitelist in one write; only real addresses.</summary>
	public void AddToWhitelist(string rsys, string? name)
	{
		if (IpNet.Addr(rsys) is not { } a) {
			log($"greylist: {rsys} is not an address; not added to /mail/grey/whitelist");
			return;
		}
		var line = NetConn.Text(a) + (name is null ? "" : " " + name) + "\n";
		if (!AppendFile.Write(WhitelistPath, Encoding.ASCII.GetBytes(line)))
			log($"greylist: can't append {rsys} to /mail/grey/whitelist");
	}

	enum Mark { Registered, Recent, NotRecent, Failed }

	/// <summary>Creates the marker exclusively, or reads its age and touches it (one 'x' at offset 0).</summary>
	Mark Check(int dirfd, string name, string where, long now)
	{
		var fd = Syscall.openat(dirfd, name, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, FileMode);
		if (fd >= 0) {
			Syscall.fchmod(fd, FileMode); // 0666 whatever the umask: the next smtpd may run as another user
			Syscall.close(fd);
			return Mark.Registered;
		}
		if (Stdlib.GetLastError() != Errno.EEXIST)
			return Failed("create", where);
		// O_NONBLOCK: a FIFO planted here must not hang us
		fd = Syscall.openat(dirfd, name, OpenFlags.O_WRONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC);
		if (fd < 0) {
			var err = Stdlib.GetLastError();
			if (err is Errno.EACCES or Errno.EPERM && Syscall.fstatat(dirfd, name, out var ro, AtFlags.AT_SYMLINK_NOFOLLOW) == 0 && IsFile(ro)) {
				// a marker we may not write (made by hand): judge by its age all the same
				log($"greylist: can't touch {where}: {Stdlib.strerror(err)}");
				return ByAge(now - ro.st_mtime);
			}
			return Failed("open", where);
		}
		try {
			if (Syscall.fstat(fd, out var st) < 0)
				return Failed("stat", where);
			if (!IsFile(st)) {
				log($"greylist: {where} is not a file");
				return Mark.Failed;
			}
			try {
				// pwrite(2) of one byte at offset 0: content "x", mtime now
				RandomAccess.Write(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: false), "x"u8, 0);
			} catch (IOException e) {
				log($"greylist: can't touch {where}: {e.Message}");
			}
			return ByAge(now - st.st_mtime);
		} finally {
			Syscall.close(fd);
		}
	}

	static Mark ByAge(long age) => age is >= MinAge and <= MaxAge ? Mark.Recent : Mark.NotRecent;

	static bool IsFile(Stat st) => (st.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG;

	Mark Failed(string what, string where)
	{
		log($"greylist: can't {what} {where}: {Stdlib.strerror(Stdlib.GetLastError())}");
		return Mark.Failed;
	}

	/// <summary>Removes the markers of one directory that are past the window (they can never pass).</summary>
	static void Expire(int dirfd, string path, long now)
	{
		IEnumerable<string> names;
		try {
			names = Directory.EnumerateFiles(path).Select(Path.GetFileName).OfType<string>().ToList();
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return;
		}
		foreach (var name in names) {
			// stat and unlink through the directory we checked, not through the path, which may have changed
			if (Syscall.fstatat(dirfd, name, out var st, AtFlags.AT_SYMLINK_NOFOLLOW) == 0 && IsFile(st) && now - st.st_mtime > MaxAge)
				Syscall.unlinkat(dirfd, name, 0);
		}
	}

	static readonly FilePermissions FileMode = NativeConvert.ToFilePermissions(0x1b6); // 0666
	static readonly FilePermissions DirMode = NativeConvert.ToFilePermissions(0x1ff); // 0777

	/// <summary>An open directory descriptor.</summary>
	sealed class Dir(int fd) : IDisposable
	{
		public int Fd { get; } = fd;
		public void Dispose() => Syscall.close(Fd);
	}

	/// <summary>Opens tmp/l/r, creating l and r (0777) on demand; null (logged) when that fails.</summary>
	Dir? OpenDirs(string l, string r)
	{
		var tmp = TmpPath;
		var fd = Syscall.open(tmp, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
		if (fd < 0 && Stdlib.GetLastError() == Errno.ENOENT && Syscall.mkdir(tmp, DirMode) == 0) {
			Syscall.chmod(tmp, DirMode); // a tree without tmp: make it, as the reference makes missing parents
			fd = Syscall.open(tmp, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
		}
		if (fd < 0) {
			Failed("open", "/mail/grey/tmp");
			return null;
		}
		var where = "/mail/grey/tmp";
		foreach (var c in new[] { l, r }) {
			where += "/" + c;
			var sub = SubDir(fd, c);
			var err = Stdlib.GetLastError(); // before close, which resets it
			Syscall.close(fd);
			if (sub < 0) {
				log($"greylist: can't make {where}: {Stdlib.strerror(err)}");
				return null;
			}
			fd = sub;
		}
		return new Dir(fd);
	}

	/// <summary>openat(name, O_DIRECTORY|O_NOFOLLOW), making it first when missing.</summary>
	static int SubDir(int dirfd, string name)
	{
		const OpenFlags flags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
		var fd = Syscall.openat(dirfd, name, flags);
		if (fd >= 0 || Stdlib.GetLastError() != Errno.ENOENT)
			return fd;
		var made = Syscall.mkdirat(dirfd, name, DirMode) == 0;
		if (!made && Stdlib.GetLastError() != Errno.EEXIST)
			return -1;
		fd = Syscall.openat(dirfd, name, flags);
		if (fd >= 0 && made)
			Syscall.fchmod(fd, DirMode); // 0777 whatever the umask, as the reference's create(…, DMDIR|0777)
		return fd;
	}

	/// <summary>lsys or rsys as a directory name: the canonical address, or the escaped text when it is none.</summary>
	public static string SysName(string sys) =>
		IpNet.Addr(sys) is { } a && NetConn.Text(a) is var t && t.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or ':' or '%')
			? t
			: SafeName(sys);

	/// <summary>A recipient user as one safe file name (see the comment at the top of the file).</summary>
	public static string SafeName(string user)
	{
		var b = Encoding.UTF8.GetBytes(user);
		if (b.Length == 0)
			return "%";
		var sb = new StringBuilder(b.Length);
		for (var i = 0; i < b.Length; i++) {
			var c = (char)b[i];
			if (char.IsAsciiLetterOrDigit(c) || c is '_' or '+' or '-' || c == '.' && i > 0)
				sb.Append(c);
			else
				sb.Append('%').Append(b[i].ToString("X2"));
		}
		if (sb.Length <= MaxName)
			return sb.ToString();
		// "%~" never occurs in an escaped name, so a hashed name cannot collide with a short one
		var head = sb.ToString(0, HeadName);
		var pct = head.LastIndexOf('%');
		if (pct >= HeadName - 2)
			head = head[..pct];
		return head + "%~" + Convert.ToHexStringLower(SHA256.HashData(b));
	}

	/// <summary>The client's DNS name for the whitelist's comment, or null (no name, odd name, or no answer within 2 s).</summary>
	public static async Task<string?> HostName(string rsys, IReadOnlyList<string> servers)
	{
		if (IpNet.Addr(rsys) is not { } a)
			return null;
		using var cts = new CancellationTokenSource(LookupTimeout);
		try {
			var q = Resolver.Client(servers).QueryReverseAsync(a, cts.Token);
			// the token is not always noticed while DnsClient waits on a socket: bound the wait ourselves too
			if (await Task.WhenAny(q, Task.Delay(LookupTimeout, CancellationToken.None)) != q)
				return null;
			var ptr = (await q).Answers.PtrRecords().FirstOrDefault();
			var name = ptr?.PtrDomainName.Value.TrimEnd('.');
			return name is { Length: > 0 and <= 253 } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_') ? name : null;
		} catch (Exception e) when (e is DnsResponseException or OperationCanceledException or SocketException or IOException or TimeoutException or ArgumentException) {
			return null;
		}
	}
}
