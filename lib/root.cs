namespace Upas;

/// <summary>The Plan 9 tree every /mail, /sys and /bin path is resolved under.</summary>
public static class Root
{
	static string? dir;

	/// <summary>$PLAN9 when set, else the tree holding this executable (ROOT/bin/upas/prog).</summary>
	public static string Dir
	{
		get => dir ??= Find();
		set => dir = value; // the in-process listener and tests pin it
	}

	static string Find()
	{
		var env = Environment.GetEnvironmentVariable("PLAN9");
		if (!string.IsNullOrEmpty(env))
			return Path.GetFullPath(env);
		// AppContext.BaseDirectory is ROOT/bin/upas/ for an installed program
		var exe = AppContext.BaseDirectory.TrimEnd('/');
		var up = Path.GetDirectoryName(Path.GetDirectoryName(exe));
		return string.IsNullOrEmpty(up) ? "/" : up;
	}

	/// <summary>A Plan 9 path (/mail/lib/smtpd.conf) as a host path under the root.</summary>
	public static string Path9(string plan9path) => Path.Join(Dir, plan9path.TrimStart('/'));
}
