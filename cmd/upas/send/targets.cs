namespace Upas.Send;

/// <summary>
/// Where a message goes, once the recipients are classified and the local users' forward and pipeto
/// files looked at (mailer.md §3): mailboxes, pipeto programs, remote hosts' jobs, and the failures.
/// Each destination once; Origin is the address given to send when the destination came from a forward.
/// </summary>
sealed class Targets(Route.LocalNames local, Action<string, string> logFailure)
{
	public readonly record struct Box(string User, string? Origin);
	/// <summary>Given: the address given to send that led here.</summary>
	public readonly record struct Pipe(string User, string Program, string? Origin, string Given);

	public readonly List<Box> Boxes = [];
	public readonly List<Pipe> Pipes = [];
	/// <summary>Remote recipients by host, hosts in the order first seen: one queue job per host.</summary>
	public readonly Dictionary<string, List<(Route Rt, string? Origin)>> Hosts = new(StringComparer.OrdinalIgnoreCase);
	public readonly List<string> HostOrder = [];
	/// <summary>(the recipient as a bounce names it, the reason).</summary>
	public readonly List<(string Rcpt, string Why)> Failed = [];

	/// <summary>Adds one recipient given to send.</summary>
	public void Add(string addr) => Add(addr, null);

	void Add(string addr, string? origin)
	{
		if (Refusal(addr) is { } bad) {
			Fail(addr, origin, bad);
			return;
		}
		var rt = Route.Of(addr, local);
		switch (rt.What) {
		case Route.Kind.Local:
			AddLocal(rt.User, origin ?? addr, origin is null);
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

	/// <summary>Why an address can never be an envelope address (decisions #22): empty, a control byte or angle bracket, or an option's look; else null.</summary>
	public static string? Refusal(string addr) =>
		addr.Length == 0 ? "empty address"
		: EnvAddr.Refusal(addr) is { } why ? why
		: EnvAddr.LooksLikeOption(addr) ? "address begins with -"
		: null;

	/// <summary>A local user: the forward (only for an address given to send: no forwarding of forwarded mail), else the pipeto, else the mailbox.</summary>
	void AddLocal(string user, string from, bool forwardOk)
	{
		if (forwardOk && Forward.Read(user) is { } fwd) {
			foreach (var a in fwd)
				Add(a, from);
			return;
		}
		var origin = forwardOk ? null : from;
		if (Pipeto.Find(user) is { } prog) {
			if (!Pipes.Any(p => p.User == user))
				Pipes.Add(new Pipe(user, prog, origin, from));
		} else if (!Boxes.Any(b => b.User == user)) {
			Boxes.Add(new Box(user, origin));
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
