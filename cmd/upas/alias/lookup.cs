using System.Text;

namespace Upas.Alias;

/// <summary>What aliasmail does, callable in process: send's translate rule runs it without a shell when the command is ours.</summary>
static class Aliasmail
{
	const string Usage = "usage: aliasmail [-df] [-n namefiles] [--] name ...";

	/// <summary>aliasmail argv: what it prints on stdout goes to o, each line of its stderr to err; its exit status.</summary>
	public static int Run(string[] argv, StringBuilder o, Action<string> err)
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
					err(Usage);
					return 1;
				}
				namefiles = n;
				break;
			default:
				err(Usage);
				return 1;
			}
		}
		if (a.Rest.Length == 0) {
			err(Usage);
			return 1;
		}
		void Warn(string msg) => err("aliasmail: " + EnvAddr.Printable(msg));
		// -f reads the sending addresses of /mail/lib/fromfiles (no default), as Plan 9's
		var aliases = from ? Aliases.FromList("fromfiles", null, Warn) : Aliases.FromList(namefiles, "names.local", Warn);
		if (debug)
			err("aliasmail: files are " + string.Join(' ', aliases.Files));
		var sysnames = SysNames();
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
		return status;
	}

	/// <summary>This system's names, for kremvax!bob in an alias: the system name and, with smtpd.conf's defaultdomain, its full name.</summary>
	static List<string> SysNames()
	{
		var sys = SysName.Get();
		var names = new List<string> { sys };
		try {
			foreach (var line in FileText.Read(Root.Path9("/mail/lib/smtpd.conf")).Split(["\r\n", "\n", "\r"], StringSplitOptions.None)) {
				var t = ConfTokens.Split(line);
				if (t.Count >= 2 && t[0] == "defaultdomain")
					names.Add(sys + "." + t[1]);
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
		}
		return names;
	}
}
