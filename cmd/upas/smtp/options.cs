namespace Upas.Smtpd;

/// <summary>The command line of one smtpd, as listen(8) would start it.</summary>
sealed class Options
{
	public bool Authenticate;		// -a
	public string? CertFile;		// -c
	public bool Debug;			// -d
	public bool Tarpit;			// -D
	public bool NoRelay;			// -f
	public bool Greylist;			// -g
	public string? Domain;			// -h
	public List<string> Kill { get; } = [];	// -k
	public List<string> Listen { get; } = [];	// -L: serve these dial strings ourselves
	public const string DefaultMailer = "/bin/upas/send";
	public string Mailer = DefaultMailer;	// -m, as given
	bool mailerGiven;
	public string? NetDir;			// -n
	public bool PasswordInClear;		// -p
	public bool VerifySenderDom;		// -r
	public bool SaveBlocked;		// -s

	public const string Usage = "usage: smtpd [-adDfghprs] [-c cert] [-k ip] [-L dialstring] [-m mailer] [-n net]";

	/// <summary>Parses the flags; null on a usage error.</summary>
	public static Options? Parse(string[] argv)
	{
		var o = new Options();
		var a = new Args("smtpd", argv);
		char c;
		while ((c = a.Next()) != '\0') {
			switch (c) {
			case 'a': o.Authenticate = true; break;
			case 'd': o.Debug = true; break;
			case 'D': o.Tarpit = true; break;
			case 'f': o.NoRelay = true; break;
			case 'g': o.Greylist = true; break;
			case 'p': o.PasswordInClear = true; break;
			case 'r': o.VerifySenderDom = true; break;
			case 's': o.SaveBlocked = true; break;
			case 'c':
				if ((o.CertFile = a.Value()) is null)
					return null;
				break;
			case 'h':
				if ((o.Domain = a.Value()) is null)
					return null;
				break;
			case 'k':
				if (a.Value() is not { } k)
					return null;
				o.Kill.Add(k);
				break;
			case 'L':
				if (a.Value() is not { } ds)
					return null;
				o.Listen.Add(ds);
				break;
			case 'm':
				if (a.Value() is not { } m)
					return null;
				o.Mailer = m;
				o.mailerGiven = true;
				break;
			case 'n':
				if ((o.NetDir = a.Value()) is null)
					return null;
				break;
			default:
				return null;
			}
		}
		return a.Rest.Length == 0 ? o : null;
	}

	/// <summary>
	/// The mailer as a host path: the default is the tree's /bin/upas/send; -m /path is a host path;
	/// -m name without a leading slash is ROOT/bin/upas/name, as in Plan 9.
	/// </summary>
	public string MailerPath => !mailerGiven ? Root.Path9(DefaultMailer) : Mailer.StartsWith('/') ? Mailer : Root.Path9("/bin/upas/" + Mailer);
}
