using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;

namespace Upas.Smtp;

/// <summary>
/// Connecting to a destination (smtp.md §3, BL algorithm on Unix): MX records in preference order (ties in
/// random order, RFC 5321 §5.1), at most 16; no MX → the host itself; each candidate's A and AAAA records;
/// this host refused on port 25 (<see cref="DialGuard"/>); -b names skipped; the first TCP connection wins. When nothing can be translated,
/// the name is dialled through the system's resolver, then the -g gateway.
/// </summary>
sealed class MxDial(Options o, Action<string> trace)
{
	public const int MaxMx = 16;
	public static readonly TimeSpan DialLimit = TimeSpan.FromSeconds(60);

	/// <summary>The MX host (or the name dialled) that answered.</summary>
	public string? Reached { get; private set; }

	/// <summary>A failed dial; Illegal ones end the whole attempt (no other candidate is tried).</summary>
	sealed class DialError(string msg) : Exception(msg)
	{
		public bool Illegal => Message.StartsWith("illegal", StringComparison.Ordinal);
	}

	/// <summary>A connected socket, or null and the error text (Plan 9 style: "illegal", "unknown" and
	/// "can't translate" mean a permanent failure). ddomain may become the owner name of the MX answer.</summary>
	public Socket? Dial(DialString ds, ref string ddomain, out string err)
	{
		err = "";
		try {
			return DialMx(ds, ref ddomain);
		} catch (DialError e) {
			err = e.Message;
		}
		if (o.Gateway is not null && err.Contains("can't translate", StringComparison.Ordinal)) {
			var gw = DialString.Parse(o.Gateway);
			trace($"mxdial: trying gateway {o.Gateway}");
			try {
				if (gw is null)
					throw new DialError("can't translate address");
				if (DialGuard.HostRefusal(gw.Host) is { } why)
					throw new DialError($"{why} (gateway)");
				return Direct(gw, Timeout.InfiniteTimeSpan);
			} catch (DialError e) {
				err = e.Message;
			}
		}
		return null;
	}

	Socket DialMx(DialString ds, ref string ddomain)
	{
		if (!ds.IsTcp)
			throw new DialError($"unknown network {ds.Net}");
		if (ds.Port is null)
			throw new DialError($"can't translate service {ds.Service}");
		if (IPAddress.TryParse(ds.Host, out var literal)) {
			trace($"mxdial trying {ds}");
			return Connect(ds.Host, [literal], ds.Port.Value, DialLimit);
		}
		var dns = Resolver.Client();
		var mx = Lookup(dns, ds.Host, ref ddomain);
		var candidates = new List<(string Name, IPAddress[] Addrs)>();
		foreach (var name in mx.Count > 0 ? mx : [ds.Host]) {
			var addrs = Addresses(dns, name);
			if (addrs.Length == 0) {
				trace($"dns: no address for {name}");
				continue;
			}
			// a domain sending our mail back to us: refused, unless the dial string names another port than smtp's
			foreach (var a in addrs)
				if (DialGuard.Refusal(a, ds.Port.Value) is not null)
					throw new DialError($"illegal: domain lists {a} as mail server");
			candidates.Add((name, addrs));
		}
		if (candidates.Count == 0)
			return Direct(ds, DialLimit);
		var last = "";
		var tried = 0;
		foreach (var (name, addrs) in candidates) {
			if (o.Busted.Contains(name)) {
				trace($"mxdial skipping busted mx {name}");
				continue;
			}
			tried++;
			trace($"mxdial trying {ds.WithHost(name)}");
			try {
				return Connect(name, addrs, ds.Port.Value, DialLimit);
			} catch (DialError e) when (!e.Illegal) {
				trace($"dial: {e.Message}");
				last = e.Message;
			}
		}
		throw new DialError(tried == 0 ? "no mail server left: every mx is busted" : last);
	}

	/// <summary>The MX hosts of name, best first; empty when it has none. A DNS failure (not "no such name") is an error.</summary>
	List<string> Lookup(LookupClient dns, string name, ref string ddomain)
	{
		trace($"dns query '{name} mx'");
		IDnsQueryResponse r;
		try {
			r = dns.Query(name, QueryType.MX);
		} catch (DnsResponseException e) {
			throw new DialError($"dns failure: {e.Message}");
		} catch (ArgumentException e) {
			// DnsClient refuses what cannot be a domain name (a label over 63 bytes, a bad IDN)
			throw new DialError($"illegal address: {e.Message}");
		}
		if (r.HasError) {
			if (r.Header.ResponseCode is DnsHeaderResponseCode.NotExistentDomain)
				return [];
			throw new DialError($"dns failure: {r.ErrorMessage}");
		}
		var recs = r.Answers.MxRecords().ToList();
		foreach (var m in recs)
			trace($"dns mx: {m.DomainName} mx {m.Preference} {m.Exchange}");
		trace($"dns mx: got {recs.Count} mx servers");
		if (recs.Count > 0 && recs.All(m => m.Exchange.Value is "." or ""))
			throw new DialError($"illegal: domain {name} accepts no mail (null MX)");	// RFC 7505
		if (recs.Count > 0 && !ddomain.Contains('.'))
			ddomain = recs[0].DomainName.Value.TrimEnd('.');
		// sort by preference, equal preferences in random order
		return recs.Select(m => (m.Preference, Key: Random.Shared.Next(), Host: m.Exchange.Value.TrimEnd('.')))
			.Where(m => m.Host.Length > 0)
			.OrderBy(m => m.Preference).ThenBy(m => m.Key)
			.Take(MaxMx).Select(m => m.Host).ToList();
	}

	/// <summary>A name's A and AAAA records (an address literal is itself); empty when the lookup fails or the name is a bare number.</summary>
	IPAddress[] Addresses(LookupClient dns, string name)
	{
		if (DialGuard.HostRefusal(name) is { } why) {
			trace($"dns: mx {name}: {why}");
			return [];
		}
		if (IPAddress.TryParse(name, out var a))
			return [a];
		var list = new List<IPAddress>();
		foreach (var t in new[] { QueryType.A, QueryType.AAAA }) {
			try {
				var r = dns.Query(name, t);
				if (r.HasError)
					continue;
				list.AddRange(r.Answers.OfType<ARecord>().Select(x => x.Address));
				list.AddRange(r.Answers.OfType<AaaaRecord>().Select(x => x.Address));
			} catch (Exception e) when (e is DnsResponseException or ArgumentException) {
			}
		}
		return list.ToArray();
	}

	/// <summary>The dial string itself through the system's name translation (hosts file, resolver), or through
	/// $dnsserver when it is set: those servers replace the system's for every look-up.</summary>
	Socket Direct(DialString ds, TimeSpan limit)
	{
		if (!ds.IsTcp)
			throw new DialError($"unknown network {ds.Net}");
		if (ds.Port is null)
			throw new DialError($"can't translate service {ds.Service}");
		trace($"dial {ds}");
		IPAddress[] addrs;
		try {
			addrs = IPAddress.TryParse(ds.Host, out var a) ? [a]
				: Environment.GetEnvironmentVariable("dnsserver") is { Length: > 0 } ? Resolver.Addresses(ds.Host).ToArray()
				: System.Net.Dns.GetHostAddresses(ds.Host);
		} catch (Exception e) when (e is SocketException or ArgumentException) {
			addrs = [];	// ArgumentException: a name too long or malformed for the resolver
		}
		if (addrs.Length == 0)
			throw new DialError("can't translate address");
		return Connect(ds.Host, addrs, ds.Port.Value, limit);
	}

	/// <summary>The addresses in turn, within the limit for all of them; none at all when one of them is this host on port 25.</summary>
	Socket Connect(string name, IPAddress[] addrs, int port, TimeSpan limit)
	{
		foreach (var a in addrs)
			if (DialGuard.Refusal(a, port) is { } why)
				throw new DialError(why);
		using var cts = limit == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(limit);
		var err = "connection refused";
		foreach (var a in addrs) {
			Socket? s = null;
			try {
				s = new Socket(a.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
				s.ConnectAsync(new IPEndPoint(a, port), cts.Token).AsTask().GetAwaiter().GetResult();
				Reached = name;
				return s;
			} catch (OperationCanceledException) {
				s?.Dispose();
				throw new DialError("connection timed out");
			} catch (SocketException e) {
				// also from new Socket: an address family this host lacks (IPv6 turned off)
				s?.Dispose();
				err = Text(e.SocketErrorCode, e.Message);
				trace($"dial {a}!{port}: {err}");
			}
		}
		throw new DialError(err);
	}

	static string Text(SocketError e, string msg) => e switch {
		SocketError.ConnectionRefused => "connection refused",
		SocketError.TimedOut => "connection timed out",
		SocketError.NetworkUnreachable => "network unreachable",
		SocketError.HostUnreachable => "host unreachable",
		_ => msg.ToLowerInvariant(),
	};
}
