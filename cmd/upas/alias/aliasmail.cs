using System.Text;

namespace Upas.Alias;

/// <summary>
/// upas/aliasmail: what local names stand for, from the names files listed in /mail/lib/namefiles (rewrite(6)'s
/// translate rule runs it; mailer.md §2.4).
///	aliasmail name…		each name's destinations, one per line: its aliases followed to the end, local!name for
///				a name that is no alias
///	aliasmail -f addr…	the domain mail from addr is sent as (remotemail's smtp -h), or nothing
/// Exit 0; 1 for a usage error, an address refused (control byte, angle bracket, leading '-') or an alias that
/// cannot be expanded; the other names are still answered.
/// </summary>
static class Program
{
	const string Usage = "usage: aliasmail [-df] [-n namefiles] [--] name ...";

	static int Main(string[] argv)
	{
		try {
			return Run(argv);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			Console.Error.WriteLine("aliasmail: " + e.Message);
			return 1;
		}
	}

	static int Run(string[] argv)
	{
		bool debug = false, from = false;
		var namefiles = "namefiles";
		var a = new Args("aliasmail", argv);
		for (char c; (c = a.Next()) != '\0';) {
			switch (c) {
			case 'd': debug = true; break;
			case 'f': from = true; break;
			case 'n':
				if (a.Value() is not { Length: > 0 } n) {
					Console.Error.WriteLine(Usage);
					return 1;
				}
				namefiles = n;
				break;
			default:
				Console.Error.WriteLine(Usage);
				return 1;
			}
		}
		if (a.Rest.Length == 0) {
			Console.Error.WriteLine(Usage);
			return 1;
		}
		void Warn(string msg) => Console.Error.WriteLine("aliasmail: " + EnvAddr.Printable(msg));
		// -f reads the sending addresses of /mail/lib/fromfiles (no default), as Plan 9's
		var aliases = from ? Aliases.FromList("fromfiles", null, Warn) : Aliases.FromList(namefiles, "names.local", Warn);
		if (debug)
			Console.Error.WriteLine("aliasmail: files are " + string.Join(' ', aliases.Files));
		var sysnames = SysNames();
		var o = new StringBuilder();
		var status = 0;
		foreach (var arg in a.Rest) {
			// lower case, then upas's %%XX escapes decoded: remotemail passes the queue's words as written
			var s = QueueWord.Unescape(Expander.Lower(arg));
			var why = EnvAddr.Refusal(s) ?? (s.Length == 0 ? "empty address" : EnvAddr.LooksLikeOption(s) ? "address begins with -" : null);
			if (why is not null) {
				Warn($"{why}: {s}");
				status = 1;
				continue;
			}
			if (from) {
				if (FromDomain.Of(s, aliases) is { } dom)
					o.Append(dom).Append('\n');
				continue;
			}
			if (s.Contains('!')) {
				o.Append("local!").Append(s).Append('\n'); // not a name: as Plan 9, never looked up
				continue;
			}
			try {
				foreach (var d in new Expander(aliases, sysnames).Expand(s))
					o.Append(d).Append('\n');
			} catch (AliasError e) {
				Warn(e.Message);
				status = 1;
			}
		}
		using var stdout = Console.OpenStandardOutput();
		stdout.Write(Encoding.UTF8.GetBytes(o.ToString()));
		return status;
	}

	/// <summary>This system's names, for kremvax!bob in an alias: the system name and, with smtpd.conf's defaultdomain, its full name.</summary>
	static List<string> SysNames()
	{
		var sys = SysName.Get();
		var names = new List<string> { sys };
		try {
			foreach (var line in File.ReadLines(Root.Path9("/mail/lib/smtpd.conf"))) {
				var t = ConfTokens.Split(line);
				if (t.Count >= 2 && t[0] == "defaultdomain")
					names.Add(sys + "." + t[1]);
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
		}
		return names;
	}
}
