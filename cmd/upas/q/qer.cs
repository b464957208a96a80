using System.Text;

namespace Upas.QueueJob;

/// <summary>
/// upas/qer [-f file]… [-q dir] root tag reply args…: queues standard input as a job for runq(8) in root/user
/// (root/dir with -q), the control file holding "tag reply args…" and the copies of the -f files (mailer.md §4.1).
/// Exit 0 when the job is queued; 1, with a line on stderr, for a usage error or when it cannot be (nothing is left).
/// </summary>
static class Program
{
	const string Usage = "usage: qer [-f file]... [-q dir] root tag reply args...";

	static int Main(string[] argv)
	{
		var files = new List<string>();
		string? qdir = null;
		var a = new Args("qer", argv);
		for (char c; (c = a.Next()) != '\0';) {
			switch (c) {
			case 'f':
				if (a.Value() is not { Length: > 0 } f)
					return Fail(Usage);
				files.Add(f);
				break;
			case 'q':
				if (a.Value() is not { Length: > 0 } q)
					return Fail(Usage);
				qdir = q;
				break;
			default:
				return Fail(Usage);
			}
		}
		if (a.Rest.Length < 3)
			return Fail(Usage);
		// one directory of the queue, never a path out of it
		if (qdir is "." or ".." || qdir?.Contains('/') == true)
			return Fail($"qer: bad queue directory {EnvAddr.Printable(qdir)}");
		if (files.Count > 'Z' - 'F' + 1)
			return Fail($"qer: more than {'Z' - 'F' + 1} files");
		var root = HostPath(a.Rest[0]);
		try {
			using var stdin = Console.OpenStandardInput();
			Qer.Enqueue(root, qdir, a.Rest[1..], sink => CopyIn(stdin, sink), files);
			return 0;
		} catch (Qer.Failure e) {
			return Fail("qer: " + e.Message);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return Fail("qer: " + e.Message);
		}
	}

	static int Fail(string msg)
	{
		Console.Error.WriteLine(msg);
		return 1;
	}

	/// <summary>/mail/… names a file of the Plan 9 tree (under $PLAN9), as for runq; any other path is the host's own.</summary>
	static string HostPath(string p) =>
		p == "/mail" || p.StartsWith("/mail/", StringComparison.Ordinal) ? Upas.Root.Path9(p) : p;

	/// <summary>
	/// Standard input into the data file a piece at a time; data that does not start "From" (no envelope: not
	/// mail from upas) is logged to /sys/log/smtp with its first 40 characters, as Plan 9's qer does.
	/// </summary>
	static bool CopyIn(Stream input, ByteSink sink)
	{
		var buf = new byte[65536];
		var n = 0;
		int r;
		// the first piece: enough to see the start, however the writer splits its writes
		while (n < 40 && (r = input.Read(buf, n, buf.Length - n)) > 0)
			n += r;
		if (n > 0 && !buf.AsSpan(0, n).StartsWith("From"u8))
			Syslog.Log("smtp", "qer usys data starts with " + Encoding.Latin1.GetString(buf, 0, Math.Min(n, 40)).PadRight(40));
		if (n > 0 && !sink(buf.AsSpan(0, n)))
			return false;
		while ((r = input.Read(buf)) > 0)
			if (!sink(buf.AsSpan(0, r)))
				return false;
		return true;
	}
}
