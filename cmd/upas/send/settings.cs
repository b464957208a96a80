namespace Upas.Send;

/// <summary>
/// What send reads before it routes: the system name, the local names and bounce domain of smtpd.conf, the
/// rules of /mail/lib/rewrite, and what reading the rules logged (logged again for every message, as each run
/// of send logs it).
/// </summary>
sealed record Settings(string Sys, Route.LocalNames Local, Rewrite? Rules, string Domain, IReadOnlyList<string> RuleLog)
{
	public static readonly string[] Files = ["/dev/sysname", "/mail/lib/smtpd.conf", "/mail/lib/rewrite"];

	public static Settings Load()
	{
		var sys = SysName.Get();
		var log = new List<string>();
		var rules = Rewrite.Load(sys, log.Add);
		return new Settings(sys, new Route.LocalNames(sys), rules, BounceDomain(sys), log);
	}

	/// <summary>The domain of postmaster in bounces: smtpd.conf's defaultdomain, else the system name.</summary>
	static string BounceDomain(string sys)
	{
		try {
			foreach (var line in File.ReadAllLines(Root.Path9("/mail/lib/smtpd.conf"))) {
				var t = ConfTokens.Split(line);
				if (t.Count >= 2 && t[0] == "defaultdomain")
					return t[1];
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
		}
		return sys;
	}
}

/// <summary>
/// The settings, read again whenever one of their files changes on disk (an administrator edits the rewrite rules
/// while smtpd -L runs): each file's device, inode, size, modification and change times are compared per message.
/// </summary>
sealed class SettingsCache
{
	(FileStamp?[] Stamps, Settings Settings)? cur;
	readonly Lock gate = new();

	/// <summary>The settings now, with the lines reading the rules logged to /sys/log/mail.</summary>
	public Settings Get()
	{
		var stamps = Settings.Files.Select(f => FileStamp.Of(Root.Path9(f))).ToArray();
		Settings s;
		lock (gate) {
			if (cur is not { } c || !c.Stamps.AsSpan().SequenceEqual(stamps)) {
				cur = (stamps, Settings.Load());
			}
			s = cur.Value.Settings;
		}
		foreach (var m in s.RuleLog)
			Syslog.Log("mail", m);
		return s;
	}
}
