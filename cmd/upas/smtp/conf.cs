using System.Globalization;
using System.Net;
using Mono.Unix.Native;

namespace Upas.Smtpd;

/// <summary>
/// /mail/lib/smtpd.conf (smtpd.md §16), read afresh for every connection.
/// The file can only turn things on; command-line flags win. A loaded Conf is never changed: under -L
/// sessions share it while the file stays the same.
/// </summary>
sealed class Conf
{
	/// <summary>defaultdomain DOM: our domain when -h is not given; only the first such line counts.</summary>
	public string? DefaultDomain;

	/// <summary>norelay on: as -f (relay only for ournets/ourdomains); anything but "on" leaves it.</summary>
	public bool NoRelay;

	/// <summary>verifysenderdom on: as -r (an untrusted sender's domain must exist in DNS).</summary>
	public bool VerifySenderDom;

	/// <summary>saveblockedmsg on: as -s (keep blocked messages in /mail/queue.dump).</summary>
	public bool SaveBlockedMsg;

	/// <summary>ournets CIDR, …: clients in these blocks are trusted; lines accumulate.</summary>
	public readonly List<IpNet> OurNets = [];

	/// <summary>ourdomains DOM, …: domains we take mail for when relaying is restricted; *.dom = dom and subdomains; lines accumulate.</summary>
	public readonly List<string> OurDomains = [];

	/// <summary>greetdelay SECONDS [3]: pause between the two greeting lines (early-talker check); 0 = no pause.</summary>
	public int GreetDelay = 3;

	/// <summary>maxmsgsize BYTES [67108864]: the SIZE we advertise and enforce.</summary>
	public long MaxMessage = 64L << 20;

	/// <summary>maxrcpts N [1000]: recipients per transaction before 452 4.5.3.</summary>
	public int MaxRcpts = 1000;

	/// <summary>idletimeout SECONDS [300]: how long we wait for each command (RFC 5321 §4.5.3.2.7).</summary>
	public int IdleTimeout = 300;

	/// <summary>datatimeout SECONDS [180]: how long we wait for each read inside DATA (RFC 5321 §4.5.3.2.6).</summary>
	public int DataTimeout = 180;

	/// <summary>sessiontimeout SECONDS [2700 = 45 min]: bound on a whole transaction, as the original's alarm.</summary>
	public int SessionTimeout = 2700;
	/// <summary>maxsessions N: sessions the -L listener serves at once; more get 421 [100].</summary>
	public int MaxSessions = 100;
	/// <summary>maxperip N: sessions the -L listener serves at once for one client address [10].</summary>
	public int MaxPerIp = 10;

	/// <summary>spf reject: refuse at MAIL a client SPF fails (550 5.7.23), and defer one SPF cannot check (451 4.7.24).</summary>
	public bool SpfReject;

	/// <summary>dmarc reject: refuse at the end of DATA a DMARC failure under p=reject (550 5.7.1), tag p=quarantine (X-upas-quarantine:), defer a DMARC temperror (451 4.7.1).</summary>
	public bool DmarcReject;

	/// <summary>dnsserver ADDR[!PORT], …: resolvers for our DNS look-ups instead of the system's; lines accumulate.</summary>
	public readonly List<string> DnsServers = [];

	/// <summary>
	/// -L sets it: a connection whose stat(2) of the file matches the last one read (device, inode, size, mtime and
	/// ctime to the nanosecond; any write or replacement changes ctime) reuses what was parsed, and is told its bad
	/// lines again. Every connection still sees the file as it is when it starts (issue 11).
	/// </summary>
	public static bool Reuse { get; set; }

	static readonly Lock CacheLock = new();
	static (FileStamp Key, Conf Conf, List<string> Errors)? cache;

	/// <summary>Reads /mail/lib/smtpd.conf under the root; a missing file means the defaults.</summary>
	public static Conf Load(Action<string> log)
	{
		var path = Root.Path9("/mail/lib/smtpd.conf");
		FileStamp? key = null;
		if (Reuse) {
			// stat before reading: a change after it gives a new key, so no stale text is ever kept under it
			if (Syscall.stat(path, out var st) == 0) {
				key = FileStamp.From(st);
				lock (CacheLock) {
					if (cache is { } c && c.Key == key) {
						c.Errors.ForEach(log);
						return c.Conf;
					}
				}
			} else if (Stdlib.GetLastError() is Errno.ENOENT or Errno.ENOTDIR)
				return new Conf(); // no file: the defaults, without an exception per connection
		}
		string text;
		try {
			text = File.ReadAllText(path);
		} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
			return new Conf();
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			log($"smtpd.conf: {e.Message}");
			return new Conf();
		}
		var errors = new List<string>();
		var conf = Parse(text, m => {
			errors.Add(m);
			log(m);
		});
		if (key is { } k) {
			lock (CacheLock)
				cache = (k, conf, errors);
		}
		return conf;
	}

	/// <summary>Parses the file's text; a bad line is logged and skipped, never fatal.</summary>
	public static Conf Parse(string text, Action<string> log)
	{
		var c = new Conf();
		var lines = text.Split('\n');
		for (var i = 0; i < lines.Length; i++) {
			var line = lines[i].TrimEnd('\r');
			var t = ConfTokens.Split(line);
			if (t.Count == 0)
				continue;
			var err = c.Apply(t[0], t.GetRange(1, t.Count - 1));
			if (err is not null)
				log($"smtpd.conf:{i + 1}: {err}: {line}");
		}
		return c;
	}

	/// <summary>Applies one keyword line; returns what is wrong with it, or null. A bad line changes nothing.</summary>
	string? Apply(string key, List<string> args)
	{
		switch (key) {
		case "defaultdomain":
			if (args.Count != 1)
				return "wrong argument count";
			DefaultDomain ??= args[0];
			return null;
		case "norelay":
			return On(args, ref NoRelay);
		case "verifysenderdom":
			return On(args, ref VerifySenderDom);
		case "saveblockedmsg":
			return On(args, ref SaveBlockedMsg);
		case "ournets": {
			if (args.Count == 0)
				return "wrong argument count";
			var nets = new List<IpNet>();
			foreach (var a in args) {
				if (!IpNet.TryParse(a, out var n))
					return $"bad CIDR {a}";
				nets.Add(n);
			}
			OurNets.AddRange(nets);
			return null;
		}
		case "ourdomains":
			if (args.Count == 0)
				return "wrong argument count";
			OurDomains.AddRange(args);
			return null;
		case "dnsserver":
			if (args.Count == 0)
				return "wrong argument count";
			foreach (var a in args) {
				if (!IsDnsServer(a))
					return $"bad address {a}";
			}
			DnsServers.AddRange(args);
			return null;
		case "spf":
			return Policy(args, ref SpfReject);
		case "dmarc":
			return Policy(args, ref DmarcReject);
		case "greetdelay":
			return Int(args, 0, ref GreetDelay, MaxSeconds);
		case "maxmsgsize":
			return Number(args, 1, long.MaxValue, ref MaxMessage);
		case "maxrcpts":
			return Int(args, 1, ref MaxRcpts);
		case "idletimeout":
			return Int(args, 1, ref IdleTimeout, MaxSeconds);
		case "datatimeout":
			return Int(args, 1, ref DataTimeout, MaxSeconds);
		case "sessiontimeout":
			return Int(args, 1, ref SessionTimeout, MaxSeconds);
		case "maxsessions":
			return Int(args, 1, ref MaxSessions);
		case "maxperip":
			return Int(args, 1, ref MaxPerIp);
		default:
			return "unknown keyword";
		}
	}

	// "off" or any other word leaves the flag alone: the file cannot undo a command-line flag
	static string? On(List<string> args, ref bool flag)
	{
		if (args.Count != 1)
			return "wrong argument count";
		if (args[0] == "on")
			flag = true;
		return null;
	}

	// "reject" turns the policy on; "none" (the default) leaves it, as "off" does for the flags above
	static string? Policy(List<string> args, ref bool reject)
	{
		if (args.Count != 1)
			return "wrong argument count";
		if (args[0] == "reject")
			reject = true;
		else if (args[0] != "none")
			return $"bad policy {args[0]}";
		return null;
	}

	// a week: longer waits are typing errors, and timers cannot wait past 49 days
	const int MaxSeconds = 7 * 24 * 3600;

	static string? Int(List<string> args, int min, ref int field, int max = int.MaxValue)
	{
		long v = field;
		var err = Number(args, min, max, ref v);
		field = (int)v;
		return err;
	}

	static string? Number(List<string> args, long min, long max, ref long field)
	{
		if (args.Count != 1)
			return "wrong argument count";
		if (!long.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
			return $"bad number {args[0]}";
		field = v;
		return null;
	}

	/// <summary>ADDR or ADDR!PORT, Plan 9 dial-string style so IPv6 colons stay unambiguous; and one the resolver
	/// can use (else it would silently fall back to the system's servers).</summary>
	static bool IsDnsServer(string s)
	{
		if (Resolver.Endpoint(s) is null)
			return false;
		var bang = s.LastIndexOf('!');
		if (bang >= 0) {
			if (!ushort.TryParse(s.AsSpan(bang + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port == 0)
				return false;
			s = s[..bang];
		}
		return IPAddress.TryParse(s, out _);
	}
}
