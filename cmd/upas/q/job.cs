using System.Diagnostics;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>
/// A queued job: C.&lt;id&gt; (the command words), D.&lt;id&gt; (the message), E.&lt;id&gt; (the errors so far).
/// Every file is reached through the user directory's descriptor and never through a symbolic link, and
/// read or written only when it is a plain file of the directory's owner or root (decisions #24): the
/// directory belongs to a user, and runq may be root.
/// </summary>
sealed class Job(Options o, string subdir, SafeDir dir, string ctlName)
{
	static readonly TimeSpan EmptyCtlAge = TimeSpan.FromMinutes(15);

	string Name(char kind) => kind + ctlName[1..];

	/// <summary>The queue log's "subdir/C.id: event 'arg0' 'arg1' …" line, the words decoded and control bytes shown escaped.</summary>
	void Logit(string ev, IEnumerable<string> av)
	{
		var sb = new StringBuilder($"{subdir}/{ctlName}: {ev}");
		foreach (var a in av)
			sb.Append(" '").Append(EnvAddr.Printable(QueueWord.Unescape(a))).Append('\'');
		Syslog.Log(Program.Log, sb.ToString());
	}

	void Debug(string msg)
	{
		if (o.Debug)
			Console.Error.WriteLine($"runq: {subdir}/{ctlName}: {msg}");
	}

	/// <summary>Runs the job if it is due; true when its command was run, or its exec tried (what -r counts).</summary>
	public bool Run(HashSet<string> badDest)
	{
		// everything is decided under the lock: a second runq either waits its turn or finds the job gone
		using var lk = JobLock.Try(dir, ctlName, out var why);
		if (lk is null) {
			if (why is not null)
				Refuse(ctlName, why);
			else
				Debug("locked or gone");
			return false;
		}
		var dfd = dir.OpenOwned(Name('D'), OpenFlags.O_RDONLY, out why);
		if (dfd < 0) {
			if (dir.Lstat(Name('D')) is null)
				Syslog.Log(Program.Log, $"no data file for {ctlName}");
			else
				Refuse(Name('D'), why!);
			Remove();
			return false;
		}
		try {
			return Run(badDest, lk, dfd);
		} finally {
			Syscall.close(dfd);
		}
	}

	/// <summary>A file planted in the queue (a link, another user's file): logged; the job it is part of is not run.</summary>
	void Refuse(string name, string why) => Syslog.Log(Program.Log, $"{subdir}/{name}: not used: {why}");

	bool Run(HashSet<string> badDest, JobLock lk, int dfd)
	{
		var now = DateTime.UtcNow;
		var ctl = lk.Stat();
		if (ctl.st_size == 0) {
			// still being written, unless it has been empty for a long time
			if (now - Time(ctl.st_mtime) > EmptyCtlAge) {
				Syslog.Log(Program.Log, $"empty ctl file for {ctlName}");
				Remove();
			}
			return false;
		}
		Syscall.fstat(dfd, out var dst);
		var dtime = Time(dst.st_mtime);
		var est = dir.Lstat(Name('E'));
		if (!o.NoPacing && est is { } e && TooSoon(dtime, Time(e.st_mtime), now)) {
			Debug("too soon after the last error");
			return false;
		}
		// the words as written (%%XX form): the command decodes them, as Plan 9's smtp does
		var av = new List<string> { o.Cmd };
		av.AddRange(QueueWord.Split(lk.ReadText()));

		if (!o.NoPacing && !o.NoGiveup && now - dtime > o.Giveup) {
			var gfd = ErrorFile();
			try {
				ReturnMail.Send(ev => Logit(ev, av), av, dir, ctlName[2..], dfd, gfd, "Giveup");
			} finally {
				if (gfd >= 0)
					Syscall.close(gfd);
			}
			Remove();
			return false;
		}
		if (av.Count > 3 && badDest.Contains(av[3])) {
			Debug($"{av[3]} already failed in this directory's pass");
			return false;
		}

		var efd = ErrorFile();
		if (efd < 0)
			return false; // logged: tried again on the next pass
		try {
			Logit("execing", av);
			var (status, retry) = Exec(av, lk, dfd, efd);
			if (status is null) {
				Remove();
				return true;
			}
			Syslog.Log(Program.Log, $"message: {status}");
			if (retry || o.NoGiveup) {
				// the attempt's time paces the next one, even when the command said nothing on stderr
				SafeDir.Touch(efd);
				if (av.Count > 3)
					badDest.Add(av[3]);
				return true;
			}
			ReturnMail.Send(ev => Logit(ev, av), av, dir, ctlName[2..], dfd, efd, status);
			Remove();
			return true;
		} finally {
			Syscall.close(efd);
		}
	}

	static DateTime Time(long unix) => DateTime.UnixEpoch.AddSeconds(unix);

	/// <summary>Retry pacing from the E. file's age (mailer.md §4.2, the Bell Labs rule).</summary>
	static bool TooSoon(DateTime dtime, DateTime etime, DateTime now)
	{
		var failingFor = etime - dtime;
		var sinceError = now - etime;
		if (failingFor < TimeSpan.FromMinutes(15))
			return sinceError < TimeSpan.FromSeconds(30);
		if (failingFor < TimeSpan.FromHours(1))
			return sinceError < TimeSpan.FromMinutes(15);
		return sinceError < TimeSpan.FromHours(1);
	}

	/// <summary>
	/// E.id opened to read and append, created mode 0666 (less the umask, as Plan 9's runq) when missing. One
	/// that is a link or not a plain file of the owner's is removed (only the name) and made anew; -1 when
	/// none can be had (logged).
	/// </summary>
	int ErrorFile()
	{
		const OpenFlags rw = OpenFlags.O_RDWR | OpenFlags.O_APPEND;
		var fd = dir.OpenOwned(Name('E'), rw, out var why);
		if (fd >= 0)
			return fd;
		if (dir.Lstat(Name('E')) is not null) {
			Refuse(Name('E'), why!);
			dir.Unlink(Name('E'));
		}
		fd = dir.OpenRaw(Name('E'), rw | OpenFlags.O_CREAT | OpenFlags.O_EXCL, (FilePermissions)0x1b6);
		if (fd < 0)
			Syslog.Log(Program.Log, $"{subdir}/{Name('E')}: cannot create: {Stdlib.strerror(SafeDir.Error())}");
		return fd;
	}

	static void Append(int fd, string text)
	{
		var b = Encoding.UTF8.GetBytes(text);
		unsafe {
			fixed (byte* p = b)
				Syscall.write(fd, p, (ulong)b.Length);
		}
	}

	/// <summary>
	/// Runs cmd with stdin the D. file and stderr appended to the E. file (the files we opened, as Plan 9
	/// does: Spawn.WithFiles), holding the job's lock and told the job's name in $runqjob (through its inherited directory).
	/// Exit 0 → (null, false), unless (as for exit 1) the job is still there and the command's stderr says a program was not
	/// found (a script whose exec failed: 9base rc exits 0 then) → retry; 2, 126, 127 or death by
	/// a signal → retry; anything else is a permanent failure (plan9port's convention).
	/// </summary>
	(string? Status, bool Retry) Exec(List<string> av, JobLock lk, int dfd, int efd)
	{
		if (Syscall.access(av[0], AccessModes.X_OK) != 0 || Directory.Exists(av[0])) {
			Append(efd, $"runq: can't exec {av[0]}: not an executable file\n");
			return ($"can't exec {av[0]} - Retry", true);
		}
		Syscall.lseek(dfd, 0, SeekFlags.SEEK_SET);
		var errStart = Syscall.fstat(efd, out var est) == 0 ? est.st_size : 0;
		var psi = Spawn.WithFiles(SafeDir.FdPath(dfd), SafeDir.FdPath(efd), av);
		Process p;
		try {
			// $runqjob names the control file through the directory the command inherits, not by a path another
			// user could turn into a link meanwhile: smtp removing a delivered job removes this job's files only
			p = lk.Inherit(dir, d => {
				psi.Environment["runqjob"] = d >= 0 ? $"/proc/self/fd/{d}/{ctlName}" : Path.Join(dir.Path, ctlName);
				return Process.Start(psi)!;
			});
		} catch (System.ComponentModel.Win32Exception e) {
			Append(efd, $"runq: can't exec {av[0]}: {e.Message}\n");
			return ($"can't exec {av[0]} - Retry", true);
		}
		using (p) {
			if (!Missing.WaitOrSpin(p, () => NewErrors(efd, errStart)))
				return ($"{Missing.Said(NewErrors(efd, errStart))}: rc spinning after a failed exec, killed - Retry", true);
			return p.ExitCode switch {
				0 or 1 when dir.Lstat(ctlName) is not null && Missing.Said(NewErrors(efd, errStart)) is { } what =>
					($"{what} - Retry", true),
				0 => (null, false),
				1 => ("Permanent Failure", false),
				2 => ("Retry, Temporary Failure", true),
				126 or 127 => ($"can't exec {av[0]} - Retry", true),
				> 128 => ($"killed by signal {p.ExitCode - 128} - Retry", true),
				var n => ($"exit {n}", false),
			};
		}
	}

	/// <summary>What the command appended to the E. file from offset on (at most 64 KB of it).</summary>
	static string NewErrors(int efd, long from)
	{
		if (Syscall.fstat(efd, out var st) != 0 || st.st_size <= from)
			return "";
		var n = (int)Math.Min(st.st_size - from, 64 * 1024);
		var b = new byte[n];
		long got;
		unsafe {
			fixed (byte* p = b)
				got = Syscall.pread(efd, p, (ulong)n, from);
		}
		return got <= 0 ? "" : Encoding.UTF8.GetString(b, 0, (int)got);
	}

	/// <summary>Removes the job: the control file first (the job is then no one's to run), then its other files (names only, never through a link).</summary>
	void Remove()
	{
		Syslog.Log(Program.Log, $"removing {subdir}/{ctlName}");
		var id = ctlName[1..];
		dir.Unlink(ctlName);
		foreach (var n in dir.Names("?" + id))
			if (n is [_, '.', ..] && n[1..] == id)
				dir.Unlink(n);
	}
}
