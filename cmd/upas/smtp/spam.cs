using System.Diagnostics;
using System.Net;
using Mono.Unix.Native;

namespace Upas.Smtpd;

/// <summary>The filter state of a transaction (smtpd.md §10.2).</summary>
public enum Verdict { Accept, Trusted, Denied, Refused, Dialup, Blocked, Delay }

/// <summary>What the recipient checks of §10.3 and §10.4 say.</summary>
public enum RcptCheck { Ok, UserUnknown, SendingSystemNotAllowed, TryLater }

/// <summary>
/// /mail/lib/blocked, read directly as ratfs would serve it (smtpd.md §17): IP blocks and sender
/// patterns per verb, looked up in the fixed order allow, block, deny, dial, delay.
/// </summary>
sealed class Blocked
{
	// ratfs' walk order, not the file's line order: an allow entry beats everything
	static readonly Verdict[] Order = [Verdict.Accept, Verdict.Blocked, Verdict.Denied, Verdict.Dialup, Verdict.Delay];

	static readonly Dictionary<string, Verdict> Verbs = new()
	{
		["allow"] = Verdict.Accept,
		["accept"] = Verdict.Accept,
		["block"] = Verdict.Blocked,
		["deny"] = Verdict.Denied,
		["dial"] = Verdict.Dialup,
		["delay"] = Verdict.Delay,
		["relay"] = Verdict.Delay, // decisions.md #7: relay means delay
	};

	// patterns that would match every sender; ratfs drops them
	static readonly HashSet<string> Dangerous = ["*", "!", "*!", "!*", "*!*"];

	/// <summary>A sender pattern [dom!]user: User null means "any user" (dom, dom!, dom!*).</summary>
	readonly record struct Pattern(string Dom, string? User);

	readonly Dictionary<Verdict, List<IpNet>> ips = new();
	readonly Dictionary<Verdict, List<Pattern>> accounts = new();

	public static Blocked Parse(string text, Action<string>? log = null)
	{
		var b = new Blocked();
		var lines = text.Split('\n');
		for (var i = 0; i < lines.Length; i++) {
			var t = ConfTokens.Split(lines[i]);
			if (t.Count == 0)
				continue;
			var account = t[0].StartsWith('*');
			// "*block x" and "* block x" both name sender patterns
			var verbAt = t[0] == "*" ? 1 : 0;
			var verb = verbAt < t.Count ? t[verbAt] : "";
			if (account && verbAt == 0)
				verb = verb[1..];
			if (!Verbs.TryGetValue(verb, out var v)) {
				log?.Invoke($"blocked:{i + 1}: unknown verb: {lines[i].TrimEnd('\r')}");
				continue;
			}
			foreach (var arg in t.Skip(verbAt + 1)) {
				if (account)
					b.AddPattern(v, arg, i + 1, log);
				else if (IpNet.TryParse(arg, out var net))
					Add(b.ips, v, net);
				else
					log?.Invoke($"blocked:{i + 1}: bad address block {arg}");
			}
		}
		return b;
	}

	void AddPattern(Verdict v, string p, int lineno, Action<string>? log)
	{
		if (Dangerous.Contains(p)) {
			log?.Invoke($"blocked:{lineno}: pattern {p} ignored: matches everyone");
			return;
		}
		var bang = p.IndexOf('!');
		if (bang < 0) {
			Add(accounts, v, new Pattern(p, null));
			return;
		}
		var user = p[(bang + 1)..];
		Add(accounts, v, new Pattern(p[..bang], user is "" or "*" ? null : user));
	}

	static void Add<T>(Dictionary<Verdict, List<T>> d, Verdict v, T x)
	{
		if (!d.TryGetValue(v, out var l))
			d[v] = l = [];
		l.Add(x);
	}

	/// <summary>The verdict for the client's address; Accept when nothing matches.</summary>
	public Verdict IpVerdict(string rsys)
	{
		if (IpNet.Addr(rsys) is not { } a)
			return Verdict.Accept;
		foreach (var v in Order) {
			if (ips.TryGetValue(v, out var l) && l.Exists(n => n.Contains(a)))
				return v;
		}
		return Verdict.Accept;
	}

	/// <summary>The verdict for a lower-cased sender path in bang form; Accept when nothing matches.</summary>
	public Verdict AccountVerdict(string lowerSenderBangPath)
	{
		if (lowerSenderBangPath.Length == 0)
			return Verdict.Accept;
		// ratfs splits off at most 10 domains; whatever is left is the user
		var parts = lowerSenderBangPath.Split('!', 11);
		var doms = parts[..^1];
		var user = parts[^1];
		foreach (var v in Order) {
			if (accounts.TryGetValue(v, out var l) && l.Exists(p => Matches(p, doms, user)))
				return v;
		}
		return Verdict.Accept;
	}

	static bool Matches(Pattern p, string[] doms, string user)
	{
		if (p.User is null)
			return Array.Exists(doms, d => DomMatch(d, p.Dom));
		if (!UserMatch(user, p.User))
			return false;
		return p.Dom is "" or "*" || (doms.Length > 0 && DomMatch(doms[^1], p.Dom));
	}

	// only a trailing * is special: "name*" is a prefix, "*" alone anything
	static bool UserMatch(string user, string spec) =>
		spec.EndsWith('*') ? user.StartsWith(spec[..^1], StringComparison.Ordinal) : user == spec;

	/// <summary>"*.dom" matches dom and any subdomain of it; anything else matches exactly.</summary>
	internal static bool DomMatch(string dom, string spec)
	{
		if (spec.Length > 2 && spec.StartsWith("*.", StringComparison.Ordinal)) {
			var s = spec[2..];
			return dom == s || dom.EndsWith(spec[1..], StringComparison.Ordinal);
		}
		return dom == spec;
	}
}

/// <summary>
/// One connection's sender, recipient and relay policy (smtpd.md §8, §10). It decides and logs
/// what the spec assigns to these checks; the caller writes the replies.
/// </summary>
sealed class Policy
{
	static readonly TimeSpan ValidateAddressLimit = TimeSpan.FromSeconds(60);
	// the client waits for our answer to DATA; RFC 5321 §4.5.3.2 lets it give up after 2 minutes
	static readonly TimeSpan ValidateSenderLimit = TimeSpan.FromSeconds(120);

	readonly Conf conf;
	readonly Action<string> log;
	readonly Blocked blocked;
	List<(string Rcpt, string Domain)>? senders; // /mail/lib/senders, read at the first RCPT

	public string Rsys { get; }
	public string Lsys { get; }

	/// <summary>The client is trusted: ournets of smtpd.conf or smtpd.conf.ext; a successful AUTH sets it.</summary>
	public bool Trusted { get; set; }

	/// <summary>The ratify verdict for the client's address, fixed for the connection.</summary>
	public Verdict IpVerdict { get; }

	/// <summary>Resolves a /mail/lib/senders domain to its addresses; the caller may point it at its own DNS.</summary>
	public Func<string, IEnumerable<IPAddress>> ResolveHost { get; set; } = Dns.GetHostAddresses;

	public Policy(Conf conf, string rsys, string lsys, Action<string> log)
	{
		this.conf = conf;
		this.log = log;
		Rsys = rsys;
		Lsys = lsys;
		blocked = Blocked.Parse(ReadLib("/mail/lib/blocked") ?? "", log);
		Trusted = conf.OurNets.Exists(n => n.Contains(rsys)) || ExtNets().Exists(n => n.Contains(rsys));
		AddOurName(Syslog.SysName);
		AddOurName(conf.DefaultDomain);
		IpVerdict = blocked.IpVerdict(rsys);
	}

	static string? ReadLib(string plan9path)
	{
		var path = Root.Path9(plan9path);
		if (!File.Exists(path))
			return null; // most sites have none of these files: one stat, not an exception per connection
		try {
			return FileText.Read(path);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return null;
		}
	}

	/// <summary>ratfs' trusted set: the ournets lines of /mail/lib/smtpd.conf.ext, nothing else of that file.</summary>
	static List<IpNet> ExtNets()
	{
		var nets = new List<IpNet>();
		foreach (var line in (ReadLib("/mail/lib/smtpd.conf.ext") ?? "").Split('\n')) {
			var t = ConfTokens.Split(line);
			if (t.Count == 0 || t[0] != "ournets")
				continue;
			foreach (var a in t.Skip(1)) {
				if (IpNet.TryParse(a, out var n))
					nets.Add(n);
			}
		}
		return nets;
	}

	/// <summary>The filter state at MAIL (§10.2): trust first, then the IP verdict, then the sender's own.</summary>
	public Verdict SenderVerdict(string senderBangPath)
	{
		if (Trusted)
			return Verdict.Trusted;
		if (IpVerdict != Verdict.Accept)
			return IpVerdict;
		return blocked.AccountVerdict(senderBangPath.ToLowerInvariant());
	}

	/// <summary>This system's names besides ourdomains: sysname, localhost, the default domain (decisions #21).</summary>
	readonly HashSet<string> ourNames = new(StringComparer.OrdinalIgnoreCase) { "localhost" };

	/// <summary>Adds a name that is ours (the session's domain, as -h may set it).</summary>
	public void AddOurName(string? name)
	{
		if (!string.IsNullOrEmpty(name))
			ourNames.Add(name);
	}

	/// <summary>
	/// Whether a domain component is ours for relaying and X-warnings (decisions #21): this system's names,
	/// localhost, the default domain, an ourdomains entry or our own [address]; never a number in any
	/// notation nor a #name, whatever the lists say, since smtp would dial it as an address.
	/// </summary>
	public bool IsOurDomain(string component)
	{
		var c = component.ToLowerInvariant();
		if (c.StartsWith('['))
			return c.EndsWith(']') && IpNet.Addr(StripV6Tag(c[1..^1])) is { } a && IpNet.Addr(Lsys) is { } l && a.Equals(l);
		if (c.Length == 0 || c.StartsWith('#') || IsNumeric(c))
			return false;
		if (ourNames.Contains(c))
			return true;
		return conf.OurDomains.Exists(d => Blocked.DomMatch(c, d));
	}

	static string StripV6Tag(string lit) => lit.StartsWith("ipv6:", StringComparison.OrdinalIgnoreCase) ? lit[5..] : lit;

	/// <summary>A name inet_aton would read as an address: dotted decimal, octal or hex parts (127.1, 0x7f000001, 2130706435).</summary>
	internal static bool IsNumeric(string name)
	{
		foreach (var label in name.TrimEnd('.').Split('.')) {
			var hex = label.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
			var digits = hex ? label.AsSpan(2) : label.AsSpan();
			if (!hex && digits.Length == 0)
				return false;
			foreach (var ch in digits) {
				if (!(char.IsAsciiDigit(ch) || hex && char.IsAsciiHexDigit(ch)))
					return false;
			}
		}
		return true;
	}

	/// <summary>
	/// The relay test (§10.5 step 3): some hop before the final user is not ours. A local part that itself
	/// routes (user@dom, user%dom, quoted or escaped) is judged by where it finally goes: each of its domains is a hop.
	/// </summary>
	public bool IsForeign(string rcpt) => Hops(rcpt).Any(h => !IsOurDomain(h));

	/// <summary>Every hop a recipient names: its bang components, then the @ and % domains hidden in its local part.</summary>
	internal static List<string> Hops(string rcpt)
	{
		// quotes do not hide routing from send: judge the bare text
		var parts = rcpt.Replace("\"", "").Split('!');
		var hops = parts[..^1].ToList();
		var sub = parts[^1].Split(['@', '%']);
		hops.AddRange(sub[1..]);
		return hops;
	}

	/// <summary>The [] loopback (§10.5 step 1): []!rest or dom![]!rest becomes [rsys]!rest; null when not asked for.</summary>
	public string? Loopback(string rcpt)
	{
		const string lb = "[]!";
		if (Rsys.Length == 0)
			return null;
		int at;
		if (rcpt.StartsWith(lb, StringComparison.Ordinal))
			at = 0;
		else if (rcpt.IndexOf('!') is var bang and >= 0 && rcpt.AsSpan(bang + 1).StartsWith(lb, StringComparison.Ordinal))
			at = bang + 1;
		else
			return null;
		return $"[{Rsys}]!{rcpt[(at + lb.Length)..]}";
	}

	/// <summary>The RCPT checks of §10.3 and §10.4, in the original's order.</summary>
	public RcptCheck CheckRecipient(string rcpt)
	{
		if (rcpt.Contains('\r') || rcpt.Contains('\n')) {
			log("shellchars in user name");
			return RcptCheck.UserUnknown;
		}
		switch (ValidateAddress(rcpt)) {
		case false:
			return RcptCheck.UserUnknown;
		case null:
			return RcptCheck.TryLater;
		}
		if (NamesBlocked(rcpt)) {
			log($"names.blocked blocks {rcpt}");
			return RcptCheck.UserUnknown;
		}
		return SenderAllowed(rcpt) ? RcptCheck.Ok : RcptCheck.SendingSystemNotAllowed;
	}

	/// <summary>send's delivery code when the mailer is the default one: recipients are then checked in process.</summary>
	public Upas.Send.Delivery? Mailer { get; init; }

	/// <summary>
	/// /mail/lib/validateaddress: true when it says yes, false when it says no, null when it is there but
	/// cannot answer (not executable, cannot start, timed out): the recipient is deferred, never accepted
	/// unchecked (decisions #23: what the mailer cannot deliver is refused at RCPT). Without the script, the
	/// default mailer is asked in process what send -x would say (Expands); another mailer: true.
	/// </summary>
	bool? ValidateAddress(string rcpt)
	{
		var prog = Root.Path9("/mail/lib/validateaddress");
		if (!Path.Exists(prog))
			return Mailer is null || Expands(Mailer, rcpt);
		if (!IsExecutable(prog)) {
			log($"validateaddress {rcpt}: not executable");
			return null;
		}
		try {
			var r = Run(prog, [rcpt], ValidateAddressLimit);
			if (r.Exit is null) {
				log($"validateaddress {rcpt}: timed out");
				return null;
			}
			return r.Exit == 0;
		} catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException) {
			log($"validateaddress {rcpt}: {e.Message}");
			return null;
		}
	}

	/// <summary>
	/// What the stock validateaddress script said, asked of send's code in process: send -x finds a destination
	/// for rcpt (exit 0, an answer that is not "unknown user", "invalid address" or "Invalid address").
	/// </summary>
	static bool Expands(Upas.Send.Delivery d, string rcpt)
	{
		var r = d.Expand([rcpt]);
		if (r.Status != 0 || r.Out.Count == 0)
			return false;
		var first = r.Out[0];
		return !(first.Length == 0 || first.StartsWith("unknown user", StringComparison.Ordinal)
			|| first.StartsWith("invalid address", StringComparison.Ordinal) || first.StartsWith("Invalid address", StringComparison.Ordinal));
	}

	static bool NamesBlocked(string rcpt)
	{
		foreach (var line in (ReadLib("/mail/lib/names.blocked") ?? "").Split('\n')) {
			var s = line.AsSpan().TrimStart(" \t");
			var end = s.IndexOfAny(" \t#\r");
			var word = end < 0 ? s : s[..end];
			if (word.Length > 0 && word.Equals(rcpt, StringComparison.OrdinalIgnoreCase))
				return true;
		}
		return false;
	}

	bool SenderAllowed(string rcpt)
	{
		senders ??= ReadSenders();
		var mentioned = false;
		var me = IpNet.Addr(Rsys);
		foreach (var (r, dom) in senders) {
			if (r != rcpt)
				continue;
			mentioned = true;
			if (me is null)
				continue;
			if (IpNet.Addr(dom) is { } ip) {
				if (ip.Equals(me))
					return true;
				continue;
			}
			if (Resolve(dom).Any(a => (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Equals(me)))
				return true;
		}
		return !mentioned;
	}

	IEnumerable<IPAddress> Resolve(string host)
	{
		try {
			return ResolveHost(host).ToList();
		} catch (Exception e) when (e is System.Net.Sockets.SocketException or ArgumentException or IOException) {
			return []; // an unresolvable domain grants nothing; a later line may
		}
	}

	static List<(string, string)> ReadSenders()
	{
		var l = new List<(string, string)>();
		foreach (var line in (ReadLib("/mail/lib/senders") ?? "").Split('\n')) {
			if (line.StartsWith('#'))
				continue;
			var f = line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
			if (f.Length == 2) // anything else is malformed and skipped, as the original does
				l.Add((f[0], f[1]));
		}
		return l;
	}

	/// <summary>
	/// The sender check at DATA for untrusted clients (§10.6): null when the sender is fine, else the
	/// reason; a reason starting "rejected:" is permanent (554), any other temporary (450).
	/// </summary>
	public string? ValidateSender(string firstSender, int rcptCount, string netroot)
	{
		if (firstSender == "/dev/null")
			return rcptCount > 1 ? "rejected: /dev/null sending to multiple recipients" : null;
		var prog = Root.Path9("/mail/lib/validatesender");
		if (!IsExecutable(prog))
			return null;
		var bang = firstSender.IndexOf('!');
		if (bang < 0)
			return $"rejected: domainless sender {firstSender}";
		(int? Exit, string Err) r;
		try {
			r = Run(prog, ["-n", netroot, firstSender[..bang], firstSender[(bang + 1)..]], ValidateSenderLimit);
		} catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException) {
			return $"deferred: fork: {e.Message}";
		}
		if (r.Exit is null)
			return "deferred: validatesender timed out";
		if (r.Exit == 0)
			return null;
		// Unix has no exit strings: the last line on stderr stands for Plan 9's status text
		var last = r.Err.Split('\n').Select(s => s.Trim()).LastOrDefault(s => s.Length > 0);
		return last is null ? $"deferred: validatesender exit status {r.Exit}" : StripProcPrefix(last);
	}

	/// <summary>Drops a leading "name pid: " as rc puts before an exit status ("validatesender 1234: rejected: …").</summary>
	internal static string StripProcPrefix(string s)
	{
		var sp = s.IndexOf(' ');
		var colon = s.IndexOf(": ", StringComparison.Ordinal);
		if (sp <= 0 || colon <= sp + 1)
			return s;
		var pid = s.AsSpan(sp + 1, colon - sp - 1);
		return pid.ContainsAnyExceptInRange('0', '9') ? s : s[(colon + 2)..];
	}

	/// <summary>
	/// files.md §3.9: every recipient has /mail/box/&lt;name&gt;/nospamfiltering, name = the recipient
	/// after its first '!'. Names that could leave /mail/box never match.
	/// </summary>
	public bool NoSpamFiltering(IReadOnlyList<string> rcpts)
	{
		if (rcpts.Count == 0)
			return false;
		foreach (var r in rcpts) {
			var name = r[(r.IndexOf('!') + 1)..];
			if (name is "" or "." or ".." || name.Contains('/') || name.Contains('\0'))
				return false;
			if (!Path.Exists(Root.Path9($"/mail/box/{name}/nospamfiltering")))
				return false;
		}
		return true;
	}

	/// <summary>-k: the client is banned; IPv4 blocks by the octet-count rule, IPv6 exact or CIDR.</summary>
	public static bool Killed(string rsys, IEnumerable<string> kList)
	{
		if (IpNet.Addr(rsys) is not { } a)
			return false;
		return kList.Any(k => IpNet.TryParse(k, out var n) && n.Contains(a));
	}

	// access(2) as the original's access(AEXEC); a directory is not a program
	static bool IsExecutable(string path) => File.Exists(path) && Syscall.access(path, AccessModes.X_OK) == 0;

	/// <summary>Runs prog without a shell, stdin empty, stdout discarded; Exit is null when it outran the limit and was killed.</summary>
	static (int? Exit, string Err) Run(string prog, IEnumerable<string> args, TimeSpan limit)
	{
		var psi = new ProcessStartInfo(prog) {
			UseShellExecute = false,
			RedirectStandardInput = true,
			RedirectStandardOutput = true, // never let it talk to the SMTP client
			RedirectStandardError = true,
		};
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		ChildEnv.Apply(psi);
		using var p = Process.Start(psi) ?? throw new IOException($"cannot start {prog}");
		// Process.Dispose leaves read pipes open: smtpd -L runs this for every recipient
		using var stdout = p.StandardOutput;
		using var stderr = p.StandardError;
		p.StandardInput.Close();
		var err = p.StandardError.ReadToEndAsync();
		var drain = p.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
		if (!p.WaitForExit(limit)) {
			try {
				p.Kill(entireProcessTree: true);
			} catch (InvalidOperationException) {
				// it exited meanwhile
			}
			p.WaitForExit();
			return (null, "");
		}
		// a grandchild may hold the pipes open: don't wait for it long
		Task.WaitAny([Task.WhenAll(err, drain)], TimeSpan.FromSeconds(5));
		return (p.ExitCode, err.IsCompletedSuccessfully ? err.Result : "");
	}
}
