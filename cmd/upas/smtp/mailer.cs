using System.Diagnostics;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Smtpd;

/// <summary>Where an accepted message goes: the mailer's stdin, or a dump file for blocked mail.</summary>
interface IMessageSink
{
	Stream Input { get; }
	/// <summary>Closes the input and waits: null on success, else the status text (Unix: the exit code).</summary>
	Task<string?> FinishAsync();
	/// <summary>Throws the message away: the mailer is killed, a dump file removed.</summary>
	void Abort();
	/// <summary>Complete lines the mailer wrote on stderr.</summary>
	IReadOnlyList<string> Errors { get; }
}

/// <summary>The mailer process: argv (no shell), stdin the message, stderr collected, stdout thrown away.</summary>
sealed class Mailer : IMessageSink
{
	const int MaxErrLines = 50;
	const int MaxErrLine = 1024;
	readonly Process p;
	readonly Task<List<string>> err;
	readonly Task drain;
	List<string>? errors;

	Mailer(Process p)
	{
		this.p = p;
		err = ReadErrors(p.StandardError.BaseStream);
		drain = p.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
	}

	/// <summary>Starts the mailer; null when it cannot be run (the caller answers 450 busy).</summary>
	public static Mailer? Start(string path, IEnumerable<string> args)
	{
		try {
			var p = Process.Start(Argv(path, args));
			return p is null ? null : new Mailer(p);
		} catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException) {
			return null;
		}
	}

	/// <summary>An argument vector, no shell; all three standard files are ours, so the mailer never writes on the client's connection.</summary>
	static ProcessStartInfo Argv(string path, IEnumerable<string> args)
	{
		var psi = new ProcessStartInfo(path) {
			UseShellExecute = false,
			RedirectStandardInput = true,
			RedirectStandardError = true,
			RedirectStandardOutput = true,
		};
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		// who feeds the message: send -r delivers nothing if this process is gone by the end of its input
		psi.Environment["upasparent"] = Environment.ProcessId.ToString();
		return ChildEnv.Apply(psi);
	}

	public Stream Input => p.StandardInput.BaseStream;
	public IReadOnlyList<string> Errors => errors ?? [];

	/// <summary>First line of stdout (VRFY), after the process ends; null if there was none.</summary>
	public static async Task<(bool started, string? line)> QueryAsync(string path, IEnumerable<string> args, TimeSpan limit)
	{
		Process? p;
		try {
			p = Process.Start(Argv(path, args));
		} catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException) {
			return (false, null);
		}
		if (p is null)
			return (false, null);
		using (p)
		using (p.StandardOutput) // Process.Dispose leaves read pipes open, and smtpd -L lives long
		using (p.StandardError) {
			p.StandardInput.Close();
			var errTask = p.StandardError.BaseStream.CopyToAsync(Stream.Null);
			var outTask = p.StandardOutput.ReadToEndAsync();
			using var cts = new CancellationTokenSource(limit);
			try {
				await p.WaitForExitAsync(cts.Token);
			} catch (OperationCanceledException) {
				Kill(p);
				return (true, null);
			}
			var o = await outTask;
			await errTask;
			var first = o.Split('\n')[0].TrimEnd('\r');
			return (true, first.Length == 0 ? null : first);
		}
	}

	static async Task<List<string>> ReadErrors(Stream s)
	{
		var lines = new List<string>();
		var cur = new MemoryStream();
		var b = new byte[4096];
		int n;
		try {
			while ((n = await s.ReadAsync(b)) > 0) {
				for (var i = 0; i < n; i++) {
					if (b[i] == '\n') {
						if (lines.Count < MaxErrLines)
							lines.Add(Encoding.UTF8.GetString(cur.GetBuffer(), 0, (int)cur.Length).TrimEnd('\r'));
						cur.SetLength(0);
					} else if (cur.Length < MaxErrLine)
						cur.WriteByte(b[i]);
				}
			}
		} catch (IOException) {
		}
		// a last line without LF is not echoed (Bell Labs)
		return lines;
	}

	public async Task<string?> FinishAsync()
	{
		try {
			p.StandardInput.Close();
		} catch (IOException) {
		}
		errors = await err;
		await drain.ConfigureAwait(false);
		await p.WaitForExitAsync();
		var code = p.ExitCode;
		p.StandardError.Dispose(); // Process.Dispose leaves read pipes open, and smtpd -L lives long
		p.StandardOutput.Dispose();
		p.Dispose();
		return code == 0 ? null : code >= 128 + 1 && code <= 128 + 64 ? $"signal: {code - 128}" : code.ToString(System.Globalization.CultureInfo.InvariantCulture);
	}

	public void Abort()
	{
		Kill(p);
		try {
			p.WaitForExit(5000);
		} catch (InvalidOperationException) {
		}
	}

	static void Kill(Process p)
	{
		try {
			p.Kill(entireProcessTree: true);
		} catch (InvalidOperationException) {
		} catch (System.ComponentModel.Win32Exception) {
		}
	}
}

/// <summary>-s: blocked messages go to /mail/queue.dump/MonD/number instead of the mailer (or nowhere).</summary>
sealed class DumpSink : IMessageSink
{
	readonly FileStream? f;
	readonly int dirfd;
	public string Path { get; }

	DumpSink(FileStream? f, string path, int dirfd = -1)
	{
		this.f = f;
		Path = path;
		this.dirfd = dirfd;
	}

	static readonly FilePermissions DirMode = NativeConvert.ToFilePermissions(0x1ff); // 0777
	static readonly FilePermissions FileMode = NativeConvert.ToFilePermissions(0x1b6); // 0666

	/// <summary>
	/// A fresh file in today's dump directory, or a sink that discards (no -s, or it cannot be made).
	/// /mail/queue.dump is world-writable: the day directory is opened with O_NOFOLLOW and used only when it
	/// is a real directory owned by us, root or the owner of /mail/queue.dump; the file is made with
	/// O_CREAT|O_EXCL|O_NOFOLLOW beneath it; both get their modes by fchmod, whatever the umask.
	/// </summary>
	public static DumpSink Create(bool save, string sender, DateTime now, Action<string>? log = null)
	{
		if (!save)
			return new DumpSink(null, "/dev/null");
		var day = $"{PlanTime.Month(now.Month)}{now.Day}";
		var dirfd = OpenDay(Root.Path9("/mail/queue.dump"), day, out var why);
		if (dirfd < 0) {
			log?.Invoke($"can't save blocked message in /mail/queue.dump/{day}: {why}");
			return new DumpSink(null, "/dev/null");
		}
		try {
			uint h = 0;
			foreach (var c in Encoding.UTF8.GetBytes(sender))
				h = h * 257 + c;
			for (var tries = 0; tries < 50; tries++) {
				h += (uint)Random.Shared.Next();
				var name = h.ToString(System.Globalization.CultureInfo.InvariantCulture);
				var fd = Syscall.openat(dirfd, name, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, FileMode);
				if (fd < 0) {
					if (Stdlib.GetLastError() == Errno.EEXIST)
						continue;
					break;
				}
				Syscall.fchmod(fd, FileMode);
				var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
				return new DumpSink(new FileStream(handle, FileAccess.Write), System.IO.Path.Join(Root.Path9("/mail/queue.dump"), day, name), dirfd);
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
		}
		Syscall.close(dirfd);
		return new DumpSink(null, "/dev/null");
	}

	/// <summary>The day directory's descriptor, made (0777) when missing; -1 with the reason when it must not be used.</summary>
	static int OpenDay(string dumpdir, string day, out string why)
	{
		why = "";
		const OpenFlags dirFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC;
		var top = Syscall.open(dumpdir, dirFlags);
		if (top < 0) {
			why = Stdlib.strerror(Stdlib.GetLastError());
			return -1;
		}
		try {
			if (Syscall.fstat(top, out var tst) < 0) {
				why = Stdlib.strerror(Stdlib.GetLastError());
				return -1;
			}
			var made = Syscall.mkdirat(top, day, DirMode) == 0;
			var fd = Syscall.openat(top, day, dirFlags | OpenFlags.O_NOFOLLOW);
			if (fd < 0) {
				var err = Stdlib.GetLastError();
				why = err == Errno.ELOOP || err == Errno.ENOTDIR ? "not a directory (a link?)" : Stdlib.strerror(err);
				return -1;
			}
			if (Syscall.fstat(fd, out var st) < 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR) {
				Syscall.close(fd);
				why = "not a directory";
				return -1;
			}
			// made by another user in the world-writable parent: that user could read and replace our files
			if (st.st_uid != Syscall.geteuid() && st.st_uid != 0 && st.st_uid != tst.st_uid) {
				Syscall.close(fd);
				why = $"owned by another user (uid {st.st_uid})";
				return -1;
			}
			if (made)
				Syscall.fchmod(fd, DirMode); // 0777 whatever the umask: the next smtpd may run as another user
			return fd;
		} finally {
			Syscall.close(top);
		}
	}

	public Stream Input => (Stream?)f ?? Stream.Null;
	public IReadOnlyList<string> Errors => [];

	public async Task<string?> FinishAsync()
	{
		if (f is null)
			return null;
		try {
			await f.FlushAsync();
			f.Flush(flushToDisk: true);
			await f.DisposeAsync();
			return null;
		} catch (IOException e) {
			return e.Message;
		} finally {
			Syscall.close(dirfd);
		}
	}

	public void Abort()
	{
		if (f is null)
			return;
		f.Dispose();
		// through the directory we created it in, not a path that may lead elsewhere by now
		Syscall.unlinkat(dirfd, System.IO.Path.GetFileName(Path), 0);
		Syscall.close(dirfd);
	}
}
