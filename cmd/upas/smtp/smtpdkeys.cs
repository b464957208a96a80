namespace Upas.Smtpd;

/// <summary>
/// The credentials AUTH checks: /mail/lib/smtpd.keys, factotum key syntax, one key a line
/// ("key proto=pass service=smtp user=glenda !password=s3cret"); re-read whenever it changes.
/// </summary>
static class SmtpdKeys
{
	public const string File9 = "/mail/lib/smtpd.keys";
	static readonly Lock Sync = new();
	static (string Path, DateTime Mtime, long Size, List<FactotumKey> Keys)? cache;

	/// <summary>The keys; empty when the file is missing. warn is called when others may read it.</summary>
	public static List<FactotumKey> Load(Action<string> warn)
	{
		var path = Root.Path9(File9);
		var fi = new FileInfo(path);
		if (!fi.Exists)
			return [];
		lock (Sync) {
			if (cache is { } c && c.Path == path && c.Mtime == fi.LastWriteTimeUtc && c.Size == fi.Length)
				return c.Keys;
		}
		var mode = File.GetUnixFileMode(path);
		if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
			warn($"warning: {File9} is readable by group or others (mode {Convert.ToString((int)mode, 8)}); chmod 600 it");
		List<FactotumKey> keys;
		try {
			keys = Factotum.ParseKeys(File.ReadAllText(path));
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			warn($"can't read {File9}: {e.Message}");
			return [];
		}
		lock (Sync)
			cache = (path, fi.LastWriteTimeUtc, fi.Length, keys);
		return keys;
	}

	/// <summary>The secret of an smtp password key for user, or null.</summary>
	public static string? Secret(List<FactotumKey> keys, string user) =>
		keys.FirstOrDefault(k => k.Matches([("proto", "pass"), ("service", "smtp"), ("user", user)]))?.Secrets.GetValueOrDefault("password");
}
