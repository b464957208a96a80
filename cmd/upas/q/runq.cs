using System.Globalization;
using System.Runtime.InteropServices;

namespace Upas.Runq;

/// <summary>The command line of one queue run (mailer.md §4.2).</summary>
sealed class Options
{
	public const string Usage = "usage: runq [-adsER] [-q dir] [-l load] [-t hours] [-r nfiles] [-n nprocs] q-root cmd";

	public bool All;		// -a: every user directory
	public bool Debug;		// -d: trace on stderr
	public bool Single;		// -s: with -a, one runq at a time per user directory (a flock on it)
	public bool NoPacing;		// -E: ignore E. file dates (and never give up)
	public bool NoGiveup;		// -R: every failure is a retry
	public string? Subdir;		// -q
	public TimeSpan Giveup = TimeSpan.FromHours(48);	// -t hours
	public int Load;		// -l: at most this many runqs on the root at once; 0: no limit
	public int Limit;		// -r: at most this many commands run per directory per pass; 0: no limit
	public int Procs = 50;		// -n: with -a, directories worked at once (Plan 9's default)
	public string Root = "";
	public string Cmd = "";

	/// <summary>Parses argv; null on a usage error.</summary>
	public static Options? Parse(string[] argv)
	{
		var o = new Options();
		var a = new Args("runq", argv);
		char c;
		while ((c = a.Next()) != '\0') {
			switch (c) {
			case 'a': o.All = true; break;
			case 'd': o.Debug = true; break;
			case 'E': o.NoPacing = true; break;
			case 'R': o.NoGiveup = true; break;
			case 's': o.Single = true; break;
			case 'q':
				if (a.Value() is not { Length: > 0 } q)
					return null;
				o.Subdir = q;
				break;
			case 't':
				if (Count(a.Value()) is not int h)
					return null;
				o.Giveup = TimeSpan.FromHours(h);
				break;
			case 'l':
				if (Count(a.Value()) is not int l)
					return null;
				o.Load = l;
				break;
			case 'r':
				if (Count(a.Value()) is not int r)
					return null;
				o.Limit = r;
				break;
			case 'n':
				// as Plan 9, no workers at all is an error, not "unlimited"
				if (Count(a.Value()) is not (int n and > 0))
					return null;
				o.Procs = n;
				break;
			default:
				return null;
			}
		}
		if (a.Rest is not [var root, var cmd])
			return null;
		o.Root = HostPath(root);
		o.Cmd = HostPath(cmd);
		return o;
	}

	/// <summary>A flag's number: decimal digits only (no sign, no blanks), else null.</summary>
	static int? Count(string? s) =>
		int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

	/// <summary>/mail/… names a file of the Plan 9 tree (under $PLAN9); any other path is the host's own.</summary>
	public static string HostPath(string p) =>
		p == "/mail" || p.StartsWith("/mail/", StringComparison.Ordinal) ? Upas.Root.Path9(p) : p;
}

static class Program
{
	public const string Log = "runq";

	static int Main(string[] argv)
	{
		var o = Options.Parse(argv);
		if (o is null) {
			Console.Error.WriteLine(Options.Usage);
			return 1;
		}
		if (!Directory.Exists(o.Root)) {
			Console.Error.WriteLine($"runq: can't cd to {o.Root}");
			return 1;
		}
		var load = new LoadLimit(o.Root, o.Load);
		if (!load.Enter(msg => { if (o.Debug) Console.Error.WriteLine($"runq: {msg}"); }))
			return 0; // enough runqs at work already: not an error
		// a runq killed by cron or by hand counts itself out before the default action ends it
		var signals = new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP }
			.Select(s => PosixSignalRegistration.Create(s, _ => load.Leave())).ToList();
		try {
			var run = new QueueRun(o);
			if (o.All)
				run.All();
			else
				run.Dir(o.Subdir ?? Environment.UserName);
			return 0;
		} catch (Exception e) {
			// caught here, not left unhandled, so that the finally below surely runs
			Console.Error.WriteLine($"runq: {e.Message}");
			return 1;
		} finally {
			load.Leave();
			signals.ForEach(s => s.Dispose());
		}
	}
}
