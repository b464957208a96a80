using System.Diagnostics;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>A queued job: C.&lt;id&gt; (the command words), D.&lt;id&gt; (the message), E.&lt;id&gt; (the errors so far).</summary>
sealed class Job(Options o, string subdir, string dir, string ctlName)
{
	static readonly TimeSpan EmptyCtlAge = TimeSpan.FromMinutes(15);

	string Name(char kind) => Path.Join(dir, kind + ctlName[1..]);

	/// <summary>The queue log's "subdir/C.id: event 'arg0' 'arg1' …" line.</summary>
	void Logit(string ev, IEnumerable<string> av)
	{
		var sb = new StringBuilder($"{subdir}/{ctlName}: {ev}");
		foreach (var a in av)
			sb.Append(" '").Append(a).Append('\'');
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
		using var lk = JobLock.Try(Name('C'));
		if (lk is null) {
			Debug("locked or gone");
			return false;
		}
		var ctl = new FileInfo(Name('C'));
		var data = new FileInfo(Name('D'));
		if (!data.Exists) {
			Syslog.Log(Program.Log, $"no data file for {ctlName}");
			Remove();
			return false;
		}
		var now = DateTime.UtcNow;
		if (ctl.Length == 0) {
			// still being written, unless it has been empty for a long time
			if (now - ctl.LastWriteTimeUtc > EmptyCtlAge) {
				Syslog.Log(Program.Log, $"empty ctl file for {ctlName}");
				Remove();
			}
			return false;
		}
		var dtime = data.LastWriteTimeUtc;
		var err = new FileInfo(Name('E'));
		if (!o.NoPacing && err.Exists && TooSoon(dtime, err.LastWriteTimeUtc, now)) {
			Debug("too soon after the last error");
			return false;
		}
		var av = new List<string> { o.Cmd };
		av.AddRange(Words(lk.ReadText()));

		if (!o.NoPacing && !o.NoGiveup && now - dtime > o.Giveup) {
			ReturnMail.Send(ev => Logit(ev, av), av, Name('D'), Name('E'), "Giveup");
			Remove();
			return false;
		}
		if (av.Count > 3 && badDest.Contains(av[3])) {
			Debug($"{av[3]} already failed in this directory's pass");
			return false;
		}

		Logit("execing", av);
		var (status, retry) = Exec(av, lk);
		if (status is null) {
			Remove();
			return true;
		}
		Syslog.Log(Program.Log, $"message: {status}");
		if (retry || o.NoGiveup) {
			// the attempt's time paces the next one, even when the command said nothing on stderr
			File.SetLastWriteTimeUtc(Name('E'), DateTime.UtcNow);
			if (av.Count > 3)
				badDest.Add(av[3]);
			return true;
		}
		ReturnMail.Send(ev => Logit(ev, av), av, Name('D'), Name('E'), status);
		Remove();
		return true;
	}

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

	/// <summary>The control file's words: split at white space; a double-quoted part may hold spaces (the quotes are dropped).</summary>
	internal static List<string> Words(string s)
	{
		var words = new List<string>();
		var i = 0;
		while (true) {
			while (i < s.Length && char.IsWhiteSpace(s[i]))
				i++;
			if (i >= s.Length)
				return words;
			var w = new StringBuilder();
			while (i < s.Length && !char.IsWhiteSpace(s[i])) {
				if (s[i] == '"') {
					var end = s.IndexOf('"', i + 1);
					if (end < 0)
						end = s.Length;
					w.Append(s, i + 1, end - i - 1);
					i = Math.Min(end + 1, s.Length);
				} else {
					w.Append(s[i++]);
				}
			}
			words.Add(w.ToString());
		}
	}

	/// <summary>
	/// Runs cmd with stdin the D. file and stderr appended to the E. file (the files themselves, as Plan 9
	/// does: Spawn.WithFiles), holding the job's lock and told the job's name in $runqjob. Exit 0 → (null, false); 2 or death by
	/// a signal → retry; anything else is a permanent failure (plan9port's convention).
	/// </summary>
	(string? Status, bool Retry) Exec(List<string> av, JobLock lk)
	{
		if (Syscall.access(av[0], AccessModes.X_OK) != 0 || Directory.Exists(av[0])) {
			File.AppendAllText(Name('E'), $"runq: can't exec {av[0]}: not an executable file\n");
			return ($"can't exec {av[0]} - Retry", true);
		}
		var psi = Spawn.WithFiles(Name('D'), Name('E'), av);
		psi.Environment["runqjob"] = Name('C');
		if (!File.Exists(Name('E')))
			CreateErrorFile();
		Process p;
		try {
			p = lk.Inherit(() => Process.Start(psi)!);
		} catch (System.ComponentModel.Win32Exception e) {
			File.AppendAllText(Name('E'), $"runq: can't exec {av[0]}: {e.Message}\n");
			return ($"can't exec {av[0]} - Retry", true);
		}
		using (p) {
			p.WaitForExit();
			return p.ExitCode switch {
				0 => (null, false),
				1 => ("Permanent Failure", false),
				2 => ("Retry, Temporary Failure", true),
				126 or 127 => ($"can't exec {av[0]} - Retry", true),
				> 128 => ($"killed by signal {p.ExitCode - 128} - Retry", true),
				var n => ($"exit {n}", false),
			};
		}
	}

	/// <summary>E.id, mode 0666 less the umask, as Plan 9's runq creates it.</summary>
	void CreateErrorFile()
	{
		using var _ = new FileStream(Name('E'), new FileStreamOptions {
			Mode = FileMode.Append,
			Access = FileAccess.Write,
			UnixCreateMode = (UnixFileMode)0x1b6,
		});
	}

	/// <summary>Removes the job: the control file first (the job is then no one's to run), then its other files.</summary>
	void Remove()
	{
		Syslog.Log(Program.Log, $"removing {subdir}/{ctlName}");
		var id = ctlName[1..];
		File.Delete(Name('C'));
		foreach (var f in Directory.GetFiles(dir, "?" + id))
			if (Path.GetFileName(f) is [_, '.', ..] n && n[1..] == id)
				File.Delete(f);
	}
}
