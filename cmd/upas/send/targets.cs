namespace Upas.Send;

/// <summary>
/// Where a message goes, once the recipients are routed (by /mail/lib/rewrite when there is one, else as built
/// in) and the local users' forward and pipeto files looked at (mailer.md §2 step 4, §3): mailboxes, pipeto
/// programs, rewrite commands, remote hosts' jobs, and the failures. Each destination once; Origin is the
/// address given to send when the destination came from a forward, an alias or a translation.
/// </summary>
sealed class Targets(Route.LocalNames local, Action<string, string> logFailure, Rewrite? rules = null, string sender = "", bool bulk = false)
{
	/// <summary>Path: the mailbox file on the host.</summary>
	public readonly record struct Box(string User, string Path, string? Origin);
	/// <summary>Given: the address given to send that led here.</summary>
	public readonly record struct Pipe(string User, string Program, string Mbox, string? Origin, string Given);

	public readonly List<Box> Boxes = [];
	public readonly List<Pipe> Pipes = [];
	public readonly List<Command> Commands = [];
	/// <summary>Remote recipients by host, hosts in the order first seen: one queue job per host.</summary>
	public readonly Dictionary<string, List<(Route Rt, string? Origin)>> Hosts = new(StringComparer.OrdinalIgnoreCase);
	public readonly List<string> HostOrder = [];
	/// <summary>(the recipient as a bounce names it, the reason).</summary>
	public readonly List<(string Rcpt, string Why)> Failed = [];

	/// <summary>How deep alias, translate and forward may lead (Plan 9: 32 rounds); deeper is a forwarding loop.</summary>
	public const int MaxDepth = 32;

	/// <summary>Adds one recipient given to send.</summary>
	public void Add(string addr) => Add(addr, null, false, 0);

	void Add(string addr, string? origin, bool viaForward, int depth)
	{
		if (Refusal(addr) is { } bad) {
			Fail(addr, origin, bad);
			return;
		}
		if (depth > MaxDepth) {
			Fail(addr, origin, "forwarding loop");
			return;
		}
		if (rules is not null) {
			AddRewritten(addr, origin, viaForward, depth);
			return;
		}
		var rt = Route.Of(addr, local);
		switch (rt.What) {
		case Route.Kind.Local:
			AddLocal(rt.User, Route.BoxDir(rt.User), origin ?? addr, origin, !viaForward, depth);
			break;
		case Route.Kind.Remote:
			if (!Hosts.TryGetValue(rt.Host, out var l)) {
				Hosts[rt.Host] = l = [];
				HostOrder.Add(rt.Host);
			}
			if (!l.Any(x => x.Rt.User == rt.User))
				l.Add((rt, origin));
			break;
		default:
			Fail(addr, origin, "unknown user");
			break;
		}
	}

	/// <summary>Routes addr by the first rewrite rule that matches it (mailer.md §2 step 4).</summary>
	void AddRewritten(string addr, string? origin, bool viaForward, int depth)
	{
		if (rules!.Apply(Unhop(addr), sender, bulk) is not { } r) {
			Fail(addr, origin, "Invalid address");
			return;
		}
		var top = origin ?? addr;
		switch (r.Rule.Type) {
		case Rewrite.Kind.Cat:
			AddCat(addr, r, origin, viaForward, depth);
			break;
		case Rewrite.Kind.Alias: {
			var list = r.Repl1 is null ? [] : AddrList.Split(r.Repl1.Plain);
			if (list.Count == 0) {
				Fail(addr, origin, "broken alias");
				return;
			}
			foreach (var a in list)
				Add(a, top, viaForward, depth + 1);
			break;
		}
		case Rewrite.Kind.Translate: {
			var why = "name translation failed";
			var cmd = r.Repl1?.Shell(out why);
			if (cmd is null) {
				Fail(addr, origin, why);
				return;
			}
			var (list, err) = Command.Translate(cmd);
			if (list is null || list.Count == 0) {
				Fail(addr, origin, err is { Length: > 0 } ? err : "name translation failed");
				return;
			}
			foreach (var a in list)
				Add(a, top, viaForward, depth + 1);
			break;
		}
		case Rewrite.Kind.Pipe: {
			var why = "broken pipe";
			var line = r.Repl1?.Shell(out why);
			string? arg = "";
			if (line is not null && r.Repl2 is not null)
				arg = r.Repl2.Shell(out why);
			if (line is null || arg is null) {
				Fail(addr, origin, why);
				return;
			}
			Command.Merge(Commands, line, arg, addr, origin);
			break;
		}
		}
	}

	/// <summary>
	/// The address without leading hops that name this system (its name, localhost, smtpd.conf's ourdomains and
	/// defaultdomain): what the rules see, so that mail for our domains stays here. local! is kept: it is the
	/// rules' own word for a mailbox.
	/// </summary>
	string Unhop(string addr)
	{
		int bang;
		while ((bang = addr.IndexOf('!')) > 0 && bang < addr.Length - 1
			&& !addr.AsSpan(0, bang).Equals("local", StringComparison.OrdinalIgnoreCase) && local.Has(addr[..bang]))
			addr = addr[(bang + 1)..];
		return addr;
	}

	/// <summary>
	/// A >> rule: the file named (a Plan 9 path under the tree; a relative one is in /mail/box/user/), whose
	/// directory must exist; the pieces of the name that came from the address may not climb out of it.
	/// </summary>
	void AddCat(string addr, Rewrite.Result r, string? origin, bool viaForward, int depth)
	{
		var user = addr[(addr.LastIndexOf('!') + 1)..];
		if (r.Repl1 is null) {
			if (!Route.ValidUser(user)) {
				Fail(addr, origin, "unknown user");
				return;
			}
			AddLocal(user, Route.BoxDir(user), origin ?? addr, origin, !viaForward, depth);
			return;
		}
		foreach (var p in r.Repl1.Pieces) {
			if (p.FromAddress && (p.Text.Length == 0 || p.Text.Contains('/') || p.Text.StartsWith('.') || p.Text.Any(c => c < 0x20 || c == 0x7f))) {
				Fail(addr, origin, "unknown user");
				return;
			}
		}
		var path = r.Repl1.Plain;
		if (!path.StartsWith('/'))
			path = "/mail/box/" + user + "/" + path;
		if (path.Split('/').Any(e => e is ".." or ".") || path.EndsWith('/')) {
			Fail(addr, origin, "unknown user");
			return;
		}
		var host = Root.Path9(path);
		var dir = Path.GetDirectoryName(host)!;
		if (!Route.IsDir(dir)) {
			Fail(addr, origin, "unknown user");
			return;
		}
		// the mailbox's owner as Plan 9 names it: what follows the last ! of the address
		AddLocal(Route.ValidUser(user) ? user : Path.GetFileName(dir), dir, origin ?? addr, origin, !viaForward, depth, host);
	}

	/// <summary>Why an address can never be an envelope address (decisions #22): empty, a control byte or angle bracket, or an option's look; else null.</summary>
	public static string? Refusal(string addr) =>
		addr.Length == 0 ? "empty address"
		: EnvAddr.Refusal(addr) is { } why ? why
		: EnvAddr.LooksLikeOption(addr) ? "address begins with -"
		: null;

	/// <summary>A local mailbox: the forward (not for mail that came through a forward: no forwarding of forwarded mail), else the pipeto, else the mailbox.</summary>
	void AddLocal(string user, string dir, string from, string? origin, bool forwardOk, int depth, string? mbox = null)
	{
		mbox ??= Path.Join(dir, "mbox");
		if (forwardOk && Forward.Read(dir) is { } fwd) {
			foreach (var a in fwd)
				Add(a, from, true, depth + 1);
			return;
		}
		// Plan 9 names a forwarded destination by where the forward started; so does a mailbox reached by it
		var o = forwardOk ? origin : from;
		if (Pipeto.Find(dir) is { } prog) {
			if (!Pipes.Any(p => p.Program == prog))
				Pipes.Add(new Pipe(user, prog, mbox, o, from));
		} else if (!Boxes.Any(b => b.Path == mbox)) {
			Boxes.Add(new Box(user, mbox, o));
		}
	}

	/// <summary>A failed destination, logged at once; one reached through a forward is named as Plan 9 does: "origin' alias `addr".</summary>
	public void Fail(string addr, string? origin, string why)
	{
		logFailure(addr, why);
		Failed.Add((origin is null ? addr : $"{origin}' alias `{addr}", why));
	}

	/// <summary>" (origin)" for a log line of a destination reached through a forward, as Plan 9 logs aliases.</summary>
	public static string Via(string? origin, string name) => origin is null || origin == name ? "" : $" ({origin})";
}

/// <summary>A list of addresses (an alias's replacement, a translation's output, as Plan 9 splits them): blank-separated, a "…" part kept whole.</summary>
static class AddrList
{
	public static List<string> Split(string s)
	{
		var list = new List<string>();
		var i = 0;
		while (true) {
			while (i < s.Length && s[i] is ' ' or '\t' or '\n' or '\r')
				i++;
			if (i >= s.Length)
				return list;
			var start = i;
			while (i < s.Length && s[i] is not (' ' or '\t' or '\n' or '\r')) {
				if (s[i] == '"') {
					var end = s.IndexOf('"', i + 1);
					i = end < 0 ? s.Length : end + 1;
				} else {
					i++;
				}
			}
			var a = s[start..i];
			if (!list.Contains(a))
				list.Add(a);
		}
	}
}
