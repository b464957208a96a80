namespace Upas.Runq;

/// <summary>The command line of one queue run (mailer.md §4.2).</summary>
sealed class Options
{
	public const string Usage = "usage: runq [-adsER] [-q dir] [-l load] [-t hours] [-r nfiles] [-n nprocs] q-root cmd";

	public bool All;		// -a: every user directory
	public bool Debug;		// -d: trace on stderr
	public bool NoPacing;		// -E: ignore E. file dates (and never give up)
	public bool NoGiveup;		// -R: every failure is a retry
	public string? Subdir;		// -q
	public TimeSpan Giveup = TimeSpan.FromHours(48);	// -t hours
	public string Root = "";
	public string Cmd = "";

	/// <summary>Parses argv; null on a usage error. -s, -l, -r and -n are accepted and ignored: jobs run one at a time.</summary>
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
			case 's': break;
			case 'q':
				if (a.Value() is not { Length: > 0 } q)
					return null;
				o.Subdir = q;
				break;
			case 't':
				if (!int.TryParse(a.Value(), out var h) || h < 0)
					return null;
				o.Giveup = TimeSpan.FromHours(h);
				break;
			case 'l' or 'r' or 'n':
				if (!int.TryParse(a.Value(), out _))
					return null;
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
		var run = new QueueRun(o);
		if (o.All) {
			foreach (var d in Directory.GetDirectories(o.Root).Order(StringComparer.Ordinal))
				run.Dir(Path.GetFileName(d));
		} else {
			run.Dir(o.Subdir ?? Environment.UserName);
		}
		return 0;
	}
}
