using System.Diagnostics;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Runq;

/// <summary>
/// The bounce of a job that failed for good (mailer.md §5, "by runq"): a MIME message from postmaster with
/// the reason and the E. file's text, the original message attached, given to ROOT/bin/upas/send with
/// upasname=/dev/null so that it can never bounce back.
/// </summary>
static class ReturnMail
{
	public static string SendPath => Root.Path9("/bin/upas/send");

	/// <summary>
	/// Sends the bounce of the job whose D. and E. files are open on dfd and efd (-1: none); failures are
	/// logged through logit (the job is removed all the same, as Plan 9's runq does).
	/// </summary>
	public static void Send(Action<string> logit, List<string> av, SafeDir dir, string id, int dfd, int efd, string status)
	{
		if (av.Count < 3) {
			logit("runq - dumping bad file");
			return;
		}
		// the control file's words are in %%XX form; the bounce goes to the sender as it really is
		var sender = QueueWord.Unescape(av[2]);
		if (!Returnable(sender)) {
			logit("runq - dumping p to p mail");
			return;
		}
		logit("returning");
		// send reads the bounce from a file, not a pipe: a runq killed meanwhile cannot cut it short.
		// B. is made anew in the directory (whatever had the name is removed first, a link only as a link).
		var bname = "B." + id;
		dir.Unlink(bname);
		var bfd = dir.OpenRaw(bname, OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_EXCL, (FilePermissions)0x180);
		if (bfd < 0) {
			Syslog.Log(Program.Log, $"returnmail: can't create {bname}: {Stdlib.strerror(SafeDir.Error())}");
			logit("returnmail failed");
			return;
		}
		try {
			Write(bfd, av, dfd, efd, status);
			// ROOT/bin/upas/send -- sender: the sender is never taken for an option
			var psi = Spawn.WithFiles(SafeDir.FdPath(bfd), null, [SendPath, "--", sender]);
			psi.Environment["upasname"] = "/dev/null";
			Process p;
			lock (Spawn.Gate)
				p = Process.Start(psi)!;
			using (p) {
				p.WaitForExit();
				if (p.ExitCode != 0) {
					Syslog.Log(Program.Log, $"returnmail child: exit {p.ExitCode}");
					logit("returnmail child failed");
				}
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception) {
			Syslog.Log(Program.Log, $"returnmail: can't run {SendPath}: {e.Message}");
			logit("returnmail failed");
		} finally {
			Syscall.close(bfd);
			dir.Unlink(bname);
		}
	}

	/// <summary>Whether a bounce may go to sender: not to /dev/null (bulk) nor to postmaster (no loops).</summary>
	internal static bool Returnable(string sender) =>
		sender.Length > 0 && sender != "/dev/null" && !sender.EndsWith("!/dev/null", StringComparison.Ordinal) && sender != "postmaster";

	/// <summary>
	/// The bounce into bfd: "Your request ``tag dest rcpts… '' failed (code status)." and the E. file, then the
	/// message, copied from the D. file a piece at a time.
	/// </summary>
	static void Write(int bfd, List<string> av, int dfd, int efd, string status)
	{
		static string Word(string w) => EnvAddr.Printable(QueueWord.Unescape(w));
		var text = new StringBuilder();
		var tag = av[1].Length > 20 ? av[1][..20] : av[1];
		text.Append($"Your request ``{Word(tag)} ");
		foreach (var w in av.Skip(3))
			text.Append(Word(w)).Append(' ');
		text.Append($"'' failed (code {status}).\nThe symptom was:\n\n");
		if (efd >= 0)
			text.Append(Encoding.Latin1.GetString(ReadAt(efd, 0, MaxSymptom)));

		var now = DateTimeOffset.Now;
		var header = $"From: postmaster\nTo: {Word(av[2])}\nSubject: permanent failure\n" +
			$"Date: {now:ddd, d MMM yyyy HH:mm:ss} {(now.Offset < TimeSpan.Zero ? '-' : '+')}{now.Offset:hhmm}\n";
		var (head, tail) = MimeBounce.Parts(header, text.ToString());
		Put(bfd, head);
		// the queue's envelope line is not part of the RFC 822 message
		var first = ReadAt(dfd, 0, 64 * 1024);
		long off = 0;
		if (first.AsSpan().StartsWith("From "u8)) {
			var nl = Array.IndexOf(first, (byte)'\n');
			off = nl < 0 ? first.Length : nl + 1;
		}
		var last = -1;
		var buf = new byte[64 * 1024];
		while (true) {
			var n = Pread(dfd, buf, off);
			if (n <= 0)
				break;
			Put(bfd, buf.AsSpan(0, n));
			last = buf[n - 1];
			off += n;
		}
		if (last >= 0 && last != '\n')
			Put(bfd, "\n"u8);
		Put(bfd, tail);
	}

	/// <summary>At most this much of the E. file goes into the bounce.</summary>
	const int MaxSymptom = 1 << 20;

	static byte[] ReadAt(int fd, long off, int max)
	{
		if (Syscall.fstat(fd, out var st) == 0)
			max = (int)Math.Clamp(st.st_size - off, 0, max);
		var buf = new byte[max];
		var got = 0;
		int n;
		while (got < max && (n = Pread(fd, buf.AsSpan(got), off + got)) > 0)
			got += n;
		return buf[..got];
	}

	static unsafe int Pread(int fd, Span<byte> b, long off)
	{
		fixed (byte* p = b) {
			long n;
			do
				n = Syscall.pread(fd, p, (ulong)b.Length, off);
			while (n < 0 && Stdlib.GetLastError() == Errno.EINTR);
			return (int)n;
		}
	}

	static unsafe void Put(int fd, ReadOnlySpan<byte> b)
	{
		fixed (byte* p = b) {
			for (var off = 0; off < b.Length;) {
				var n = Syscall.write(fd, p + off, (ulong)(b.Length - off));
				if (n < 0 && Stdlib.GetLastError() == Errno.EINTR)
					continue;
				if (n <= 0)
					throw new IOException($"writing the bounce: {Stdlib.strerror(Stdlib.GetLastError())}");
				off += (int)n;
			}
		}
	}
}
