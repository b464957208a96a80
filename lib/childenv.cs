using System.Diagnostics;

namespace Upas;

/// <summary>
/// The environment of every program our programs start: ROOT/bin first on PATH, as plan9port's 9(1) does,
/// so that Plan 9 scripts (remotemail, qmail, rewrite's pipes) find upas/smtp, upas/aliasmail … as ROOT/bin/upas/…
/// even when run from cron or systemd, whose PATH knows nothing of the tree.
/// </summary>
public static class ChildEnv
{
	/// <summary>ROOT/bin, then the inherited PATH without another copy of it (the system's default when there is none).</summary>
	public static string SearchPath(string? inherited)
	{
		var bin = Root.Path9("/bin");
		var rest = (string.IsNullOrEmpty(inherited) ? "/usr/local/bin:/usr/bin:/bin" : inherited)
			.Split(':').Where(d => d.Length > 0 && d.TrimEnd('/') != bin);
		return string.Join(':', rest.Prepend(bin));
	}

	/// <summary>Sets psi's PATH to SearchPath of the one it would inherit; returns psi.</summary>
	public static ProcessStartInfo Apply(ProcessStartInfo psi)
	{
		psi.Environment.TryGetValue("PATH", out var cur);
		psi.Environment["PATH"] = SearchPath(cur);
		return psi;
	}
}
