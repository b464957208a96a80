namespace Upas.Runq;

/// <summary>One pass over the queue (mailer.md §4.2): the jobs of each user directory, oldest name first.</summary>
sealed class QueueRun(Options o)
{
	void Debug(string msg)
	{
		if (o.Debug)
			Console.Error.WriteLine($"runq: {msg}");
	}

	/// <summary>-a: every user directory, up to o.Procs of them at once (Plan 9 forks a child per directory; we use threads).</summary>
	public void All()
	{
		string[] dirs;
		try {
			dirs = Directory.GetDirectories(o.Root).Select(d => Path.GetFileName(d)).Order(StringComparer.Ordinal).ToArray();
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			Console.Error.WriteLine($"runq: reading {o.Root}: {e.Message}");
			return;
		}
		var next = -1;
		void Work()
		{
			int i;
			while ((i = Interlocked.Increment(ref next)) < dirs.Length)
				Guarded(dirs[i]);
		}
		// dedicated threads, not the pool: a worker spends its time blocked on the commands it runs
		var workers = Enumerable.Range(0, Math.Min(o.Procs, dirs.Length)).Select(_ => new Thread(Work)).ToList();
		foreach (var w in workers)
			w.Start();
		foreach (var w in workers)
			w.Join();
	}

	/// <summary>A directory's pass whose failure ends only that pass, as a Plan 9 child's death ends only its own.</summary>
	void Guarded(string subdir)
	{
		try {
			Dir(subdir);
		} catch (Exception e) {
			Console.Error.WriteLine($"runq: {subdir}: {e.Message}");
			Syslog.Log(Program.Log, $"{subdir}: {e.GetType().Name}: {e.Message}");
		}
	}

	/// <summary>
	/// Runs the C. files of root/subdir: under -a -s only while holding the directory's lock, at most o.Limit
	/// of them with -r. A user directory that is a symbolic link (or no directory) is skipped and logged: its
	/// files would be another directory's.
	/// </summary>
	public void Dir(string subdir)
	{
		SafeDir dir;
		try {
			dir = SafeDir.Open(Path.Join(o.Root, subdir));
		} catch (IOException e) {
			Console.Error.WriteLine($"runq: reading {subdir}: {e.Message}");
			Syslog.Log(Program.Log, $"{subdir}: skipped: {e.Message}");
			return;
		}
		using (dir) {
			string[] ctls;
			DirLock? lk = null;
			try {
				if (o.All && o.Single && (lk = DirLock.Try(dir)) is null) {
					Debug($"{subdir}: locked by another runq, skipped");
					return;
				}
				ctls = dir.Names("C.*");
			} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
				lk?.Dispose();
				Console.Error.WriteLine($"runq: reading {subdir}: {e.Message}");
				return;
			}
			using (lk) {
				Debug($"running {subdir}");
				Array.Sort(ctls, StringComparer.Ordinal);
				var badDest = new HashSet<string>(StringComparer.Ordinal); // this directory's own, as each Plan 9 child has
				var ran = 0;
				foreach (var c in ctls) {
					if (o.Limit > 0 && ran >= o.Limit) {
						Debug($"{subdir}: {ran} jobs run, the -r limit; the rest wait for the next pass");
						break;
					}
					try {
						if (new Job(o, subdir, dir, c).Run(badDest))
							ran++;
					} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
						Console.Error.WriteLine($"runq: {subdir}/{c}: {e.Message}");
					}
				}
			}
		}
	}
}
