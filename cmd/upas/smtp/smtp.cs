using System.Net.NetworkInformation;
using System.Text;

namespace Upas.Smtp;

/// <summary>The Plan 9 exit status strings and their Unix exit codes (decisions #16, plan9port's convention).</summary>
static class Status
{
	public const string Retry = "Retry, Temporary Failure";
	public const string Giveup = "Permanent Failure";

	/// <summary>0 for success (null), 2 when the string says Retry, else 1.</summary>
	public static int Code(string? rv) => rv is null ? 0 : rv.Contains("Retry", StringComparison.Ordinal) ? 2 : 1;
}

/// <summary>The command line of one smtp run (smtp.md §1).</summary>
sealed class Options
{
	public const int MaxBusted = 100;
	public const string Usage = "usage: smtp [-aAdfiops] [-b busted-mx] [-g gw] [-h host] [-u user] [.domain] net!host[!service] sender rcpt-list\n"
		+ "       smtp -K rsa|ed25519 domain selector keyfile";

	public bool Auth;		// -a (implies -s)
	public bool Avoidant;		// -A: NOOP before the greeting
	public List<string> Busted { get; } = [];	// -b
	public bool Debug;		// -d
	public bool Filter;		// -f
	public string? Gateway;		// -g
	public string? Host;		// -h
	public bool Insecure;		// -i
	public bool OkUnknownCert;	// -o
	public bool Ping;		// -p
	public bool Secure;		// -s
	public string? User;		// -u
	public string? KeyGen;		// -K: the key type; Rcpts then holds domain selector keyfile
	public string? Domain;		// .domain
	public string DestAddr = "";
	public string Sender = "";
	public string[] Rcpts = [];

	/// <summary>The unit of every alarm: 60 s, 10 s under -p (smtp.md §10).</summary>
	public TimeSpan Scale => TimeSpan.FromSeconds(Ping ? 10 : 60);

	/// <summary>Parses argv; null and a status string on a usage error.</summary>
	public static Options? Parse(string[] argv, out string? fatal)
	{
		fatal = null;
		var o = new Options();
		var a = new Args("smtp", argv);
		char c;
		while ((c = a.Next()) != '\0') {
			switch (c) {
			case 'a': o.Auth = o.Secure = true; break;
			case 'A': o.Avoidant = true; break;
			case 'd': o.Debug = true; break;
			case 'f': o.Filter = true; break;
			case 'i': o.Insecure = true; break;
			case 'o': o.OkUnknownCert = true; break;
			case 'p': o.Ping = true; break;
			case 's': o.Secure = true; break;
			case 'b':
				if (a.Value() is not { } b)
					return null;
				if (o.Busted.Count >= MaxBusted) {
					fatal = $"more than {MaxBusted} busted mxs given";
					return null;
				}
				o.Busted.Add(b);
				break;
			case 'g':
				if ((o.Gateway = a.Value()) is null)
					return null;
				break;
			case 'h':
				if ((o.Host = a.Value()) is null)
					return null;
				break;
			case 'u':
				if ((o.User = a.Value()) is null)
					return null;
				break;
			case 'K':
				if ((o.KeyGen = a.Value()) is null)
					return null;
				break;
			default:
				return null;
			}
		}
		var rest = a.Rest;
		if (o.KeyGen is not null) {
			o.Rcpts = rest;	// checked by DkimKeyGen
			return o;
		}
		var i = 0;
		if (rest.Length > 0 && rest[0].StartsWith('.'))
			o.Domain = rest[i++];
		if (rest.Length - i < 2)
			return null;
		o.DestAddr = rest[i++];
		o.Sender = rest[i++];
		o.Rcpts = rest[i..];
		// product: an empty rcpt-list is a usage error (the original said MAIL FROM, then QUIT, and succeeded)
		if (o.Rcpts.Length == 0 && !o.Filter)
			return null;
		return o;
	}
}

/// <summary>The names smtp derives at start-up (smtp.md §1.2).</summary>
sealed class Names
{
	public required string SysName;
	public required string? Domain;
	public required string HostDomain;	// MAIL FROM, From:, header addresses, Message-ID
	public required string HelloDomain;	// EHLO/HELO: the system name, never -h

	public static Names Get(Options o)
	{
		var site = Environment.GetEnvironmentVariable("site");
		var sys = string.IsNullOrEmpty(site) ? Upas.SysName.Get() : site;
		var domain = o.Domain ?? LocalDomain(sys);
		return new Names {
			SysName = sys,
			Domain = domain,
			HostDomain = Domainify(o.Host ?? sys, domain),
			HelloDomain = Domainify(sys, domain),
		};
	}

	/// <summary>
	/// The first of the system's names that has a dot (smtp.md §1.2): the system name, /dev/sysname, the dom=
	/// values of the system's entry in ROOT/lib/ndb/local; then, on Unix, the host name and host name + the
	/// resolver's domain.
	/// </summary>
	static string? LocalDomain(string sys)
	{
		if (sys.Contains('.'))
			return sys;
		var dev = Upas.SysName.Get();
		if (dev.Contains('.'))
			return dev;
		foreach (var d in NdbDomains([sys, dev]))
			if (d.Contains('.'))
				return d;
		try {
			var h = System.Net.Dns.GetHostName();
			if (h.Contains('.'))
				return h;
			var d = IPGlobalProperties.GetIPGlobalProperties().DomainName;
			if (!string.IsNullOrEmpty(d) && d != "(none)")
				return h + "." + d.TrimStart('.');
		} catch (Exception e) when (e is NetworkInformationException or System.Net.Sockets.SocketException or PlatformNotSupportedException) {
		}
		return null;
	}

	/// <summary>
	/// The dom= values of the entries of ROOT/lib/ndb/local that have sys=one of names, in file order. An entry
	/// is a line that starts with a non-blank and the lines after it that start with a blank; # starts a comment.
	/// </summary>
	public static List<string> NdbDomains(IEnumerable<string> names)
	{
		var doms = new List<string>();
		string[] lines;
		try {
			lines = File.ReadAllLines(Root.Path9("/lib/ndb/local"));
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return doms;
		}
		var entry = new List<string>();
		void End()
		{
			if (entry.Any(w => w.StartsWith("sys=", StringComparison.Ordinal) && names.Contains(w[4..], StringComparer.OrdinalIgnoreCase)))
				doms.AddRange(entry.Where(w => w.StartsWith("dom=", StringComparison.Ordinal) && w.Length > 4).Select(w => w[4..]));
			entry.Clear();
		}
		foreach (var raw in lines) {
			var line = raw.TrimEnd('\r');
			if (line.Length > 0 && line[0] is not (' ' or '\t' or '#'))
				End();
			if (Factotum.Tokenize(line) is { } words)
				entry.AddRange(words);
		}
		End();
		return doms;
	}

	/// <summary>name unchanged when it has a dot or there is no domain; else name + the domain from its first dot on (or "." + domain).</summary>
	public static string Domainify(string name, string? domain)
	{
		if (name.Contains('.') || string.IsNullOrEmpty(domain))
			return name;
		var dot = domain.IndexOf('.');
		return name + (dot >= 0 ? domain[dot..] : "." + domain);
	}
}

/// <summary>Envelope addresses (smtp.md §6).</summary>
static class Addr
{
	/// <summary>bang → @: a.x.y!b.p.o!c!d → @a.x.y:c!d@b.p.o (smtp.md §6.1); an address literal [..] counts as a domain.</summary>
	public static string BangToAt(string a)
	{
		var f = a.Split('!');
		if (f.Length == 1)
			return a;
		var d = 0;
		while (d < f.Length - 1 && (f[d].Contains('.') || f[d].StartsWith('[')))
			d++;
		var sb = new StringBuilder();
		if (d > 1)
			sb.Append('@').AppendJoin(",@", f[..(d - 1)]).Append(':');
		sb.AppendJoin('!', f[d..]);
		if (d >= 1)
			sb.Append('@').Append(f[d - 1]);
		return sb.ToString();
	}

	/// <summary>A header address: bang → @, "@hostdomain" when it has no '@', a bare source route in &lt;…&gt; (smtp.md §8.3 item 5).</summary>
	public static string Header(string a, bool bracketed, string hostdomain)
	{
		var s = BangToAt(a);
		if (!s.Contains('@'))
			return s + "@" + hostdomain;
		return s[0] == '@' && !bracketed ? "<" + s + ">" : s;
	}
}

static class Program
{
	static int Main(string[] argv)
	{
		// the promise of issue 9 item 13: whatever goes wrong, one line and a status runq understands, never a stack trace
		AppDomain.CurrentDomain.UnhandledException += (_, e) => Crash(e.ExceptionObject as Exception);
		try {
			return Run(argv);
		} catch (Exception e) {
			return Crash(e);
		}
	}

	/// <summary>An error no code path expected: a temporary failure (the message stays queued), told in one line.</summary>
	static int Crash(Exception? e)
	{
		Console.Error.WriteLine($"smtp: internal error: {e?.GetType().Name}: {EnvAddr.Printable(e?.Message ?? "")}");
		Environment.Exit(Exit(Status.Retry));
		return 2;
	}

	static int Run(string[] argv)
	{
		var o = Options.Parse(argv, out var fatal);
		if (o is null) {
			if (fatal is not null) {
				Console.Error.WriteLine($"smtp: {fatal}");
				return Exit(fatal);
			}
			Console.Error.WriteLine(Options.Usage);
			return Exit(Status.Giveup);
		}
		if (o.KeyGen is { } alg)
			return DkimKeyGen.Run(alg, o.Rcpts);
		var names = Names.Get(o);
		if (names.Domain is null)
			Console.Error.WriteLine("smtp: nil domainname_read()");
		// -h comes from the sender's domain in remotemail: it goes into MAIL FROM and the header like an address
		if (EnvAddr.Refusal(names.HostDomain) is { } hwhy) {
			Console.Error.WriteLine($"smtp: illegal host name {EnvAddr.Printable(names.HostDomain)}: {hwhy}");
			return Exit(Status.Giveup);
		}
		var env = Envelope.Decode(o);
		if (env.Refusal() is { } why) {
			Syslog.Log("smtp.fail", $"{why} ({EnvAddr.Printable(o.DestAddr)})");
			Console.Error.WriteLine($"smtp: {why}");
			return Exit(Status.Giveup);
		}

		if (o.Filter) {
			using var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
			var conv = new Converter(Console.OpenStandardInput(), names.HostDomain, env.From, SecondPass.StdinRewind());
			if (DkimSign.Sign(conv, null, null) is { } serr) {
				Console.Error.WriteLine($"smtp: {serr}");
				return Exit(Status.Retry);
			}
			conv.Write(stdout, null, null);
			stdout.Flush();
			return 0;
		}
		return Exit(new Client(o, names, env.From, env.Rcpts).Run());
	}

	/// <summary>The Unix exit code; the Plan 9 status string goes to stderr as the last line.</summary>
	public static int Exit(string? rv)
	{
		if (rv is not null)
			Console.Error.WriteLine(rv);
		return Status.Code(rv);
	}
}
