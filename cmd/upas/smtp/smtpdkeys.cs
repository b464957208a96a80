namespace Upas.Smtpd;

/// <summary>
/// The credentials AUTH checks: /mail/lib/smtpd.keys, factotum key syntax, one key a line
/// ("key proto=pass service=smtp user=glenda !password=s3cret"); re-read whenever it changes.
/// </summary>
static class SmtpdKeys
{
	public const string File9 = "/mail/lib/smtpd.keys";
	static readonly Lock Sync = new();
	// keyed on the contents and the mode, not on mtime and size: an edit within one clock tick that keeps the
	// size (a changed password of the same length) must not be missed
	static (string Path, string Text, UnixFileMode Mode, List<FactotumKey> Keys)? cache;

	/// <summary>The keys; empty when the file is missing. warn is called when others may read it.</summary>
	public static List<FactotumKey> Load(Action<string> warn)
	{
		var path = Root.Path9(File9);
		string text;
		UnixFileMode mode;
		try {
			if (!File.Exists(path))
				return [];
			mode = File.GetUnixFileMode(path);
			text = File.ReadAllText(path);
		} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
			return [];
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			warn($"can't read {File9}: {e.Message}");
			return [];
		}
		lock (Sync) {
			if (cache is { } c && c.Path == path && c.Mode == mode && c.Text == text)
				return c.Keys;
		}
		if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
			warn($"warning: {File9} is readable by group or others (mode {Convert.ToString((int)mode, 8)}); chmod 600 it");
		var keys = Factotum.ParseKeys(text);
		lock (Sync)
			cache = (path, text, mode, keys);
		return keys;
	}

	/// <summary>The secret of an smtp password key for user, or null.</summary>
	public static string? Secret(List<FactotumKey> keys, string user) =>
		keys.FirstOrDefault(k => k.Matches([("proto", "pass"), ("service", "smtp"), ("user", user)]))?.Secrets.GetValueOrDefault("password");
}
