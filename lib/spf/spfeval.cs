using System.Net;
using System.Net.Sockets;

namespace Upas.Spf;

/// <summary>
/// One run of check_host() with its limits (RFC 7208 §4.6.4): at most 10 DNS-querying terms, 2 void lookups,
/// 10 MX names per mx and 10 PTR names per ptr, a bounded number of queries in all, and a deadline.
/// Temporary and permanent errors leave the evaluation as an SpfAbort, whatever the depth of include/redirect.
/// </summary>
sealed class SpfEvaluation(IDnsQuery dns, IPAddress ip, string sender, string helo, string receiver, CancellationToken ct)
{
	public const int MaxDnsTerms = 10;
	public const int MaxVoidLookups = 2;
	public const int MaxNames = 10;

	/// <summary>No check asks more questions than this (the limits above allow about 130; this only guards our own code).</summary>
	public const int MaxQueries = 200;

	readonly bool v6 = ip.AddressFamily == AddressFamily.InterNetworkV6;
	readonly long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
	int terms, voids, queries;
	string? ptrName;

	/// <summary>The result (None, Neutral, Pass, Fail, SoftFail), the detail line, the explanation.</summary>
	public sealed record Outcome(SpfResult Result, string Detail, string? Explanation);

	public Task<Outcome> Run(string domain) => Check(domain, wantExp: true, nested: false);

	async Task<Outcome> Check(string domain, bool wantExp, bool nested)
	{
		var txt = await Ask(t => dns.TxtAsync(domain, t));
		if (txt.Status == DnsStatus.TempError)
			throw new SpfAbort(SpfResult.TempError, $"DNS failure looking up TXT {domain}");
		if (txt.Status != DnsStatus.Ok) {
			if (nested)
				Void(domain);
			return new(SpfResult.None, $"no SPF record at {domain}", null);
		}
		var spf = txt.Records.Where(SpfParser.IsSpf).Take(2).ToList();
		if (spf.Count == 0)
			return new(SpfResult.None, $"no SPF record at {domain}", null);
		if (spf.Count > 1)
			throw new SpfAbort(SpfResult.PermError, $"more than one SPF record at {domain}");
		var rec = SpfParser.Parse(spf[0], out var error)
			?? throw new SpfAbort(SpfResult.PermError, $"{domain}: {error}");
		foreach (var d in rec.Directives) {
			if (d.QueriesDns)
				CountTerm(d.Text);
			if (!await Match(d, domain))
				continue;
			var expl = d.Result == SpfResult.Fail && wantExp && rec.Explanation is { } exp ? await Explain(exp, domain) : null;
			return new(d.Result, $"{domain}: matched {d.Text}", expl);
		}
		if (rec.Redirect is { } redirect) {
			CountTerm("redirect=" + redirect);
			var target = await Target(redirect, domain);
			var r = Queryable(target) ? await Check(target, wantExp, nested: true) : null;
			if (r is null || r.Result == SpfResult.None)
				throw new SpfAbort(SpfResult.PermError, $"{domain}: redirect={target} has no SPF record");
			return r;
		}
		return new(SpfResult.Neutral, $"{domain}: no term matched", null);
	}

	async Task<bool> Match(SpfDirective d, string domain)
	{
		switch (d.Mechanism) {
		case SpfMechanism.All:
			return true;
		case SpfMechanism.Ip4:
		case SpfMechanism.Ip6:
			return (d.Mechanism == SpfMechanism.Ip6) == v6 && InNet(d.Network!, v6 ? d.Cidr6 : d.Cidr4);
		case SpfMechanism.Include: {
			var target = await Target(d.DomainSpec!, domain);
			var r = Queryable(target) ? await Check(target, wantExp: false, nested: true) : null;
			if (r is null || r.Result == SpfResult.None)
				throw new SpfAbort(SpfResult.PermError, $"{domain}: include:{target} has no SPF record");
			return r.Result == SpfResult.Pass;
		}
		case SpfMechanism.A: {
			var addrs = await Addresses(await Target(d.DomainSpec ?? domain, domain), v6);
			return addrs.Any(a => Same(a, v6 ? d.Cidr6 : d.Cidr4));
		}
		case SpfMechanism.Mx: {
			var name = await Target(d.DomainSpec ?? domain, domain);
			if (!Queryable(name)) {
				Void(name);
				return false;
			}
			var mx = await Ask(t => dns.MxAsync(name, t));
			if (mx.Status == DnsStatus.TempError)
				throw new SpfAbort(SpfResult.TempError, $"DNS failure looking up MX {name}");
			if (mx.Status != DnsStatus.Ok) {
				Void(name);
				return false;
			}
			if (mx.Records.Count > MaxNames)
				throw new SpfAbort(SpfResult.PermError, $"{domain}: {name} has more than {MaxNames} MX records");
			// every exchange is looked up before matching, as pyspf does: the void count does not depend on the order
			var all = new List<IPAddress>();
			foreach (var host in mx.Records) {
				if (host.Length > 0)	// a null MX (RFC 7505) names no host
					all.AddRange(await Addresses(host, v6));
			}
			return all.Any(a => Same(a, v6 ? d.Cidr6 : d.Cidr4));
		}
		case SpfMechanism.Ptr: {
			var target = await Target(d.DomainSpec ?? domain, domain);
			foreach (var name in await ValidatedNames(countVoids: true)) {
				if (name.Equals(target, StringComparison.OrdinalIgnoreCase) || name.EndsWith("." + target, StringComparison.OrdinalIgnoreCase))
					return true;
			}
			return false;
		}
		case SpfMechanism.Exists: {
			var name = await Target(d.DomainSpec!, domain);
			return (await Addresses(name, ipv6: false)).Count > 0;
		}
		default:
			return false;
		}
	}

	/// <summary>The addresses of name (A or AAAA); a void answer counts, a failure is a temperror.</summary>
	async Task<IReadOnlyList<IPAddress>> Addresses(string name, bool ipv6)
	{
		if (!Queryable(name)) {
			Void(name);
			return [];
		}
		var a = await Ask(t => dns.AddressAsync(name, ipv6, t));
		if (a.Status == DnsStatus.TempError)
			throw new SpfAbort(SpfResult.TempError, $"DNS failure looking up {(ipv6 ? "AAAA" : "A")} {name}");
		if (a.Status != DnsStatus.Ok) {
			Void(name);
			return [];
		}
		return a.Records;
	}

	/// <summary>
	/// The client's validated names (§5.5): of its first 10 PTR names, those with an address equal to the client's.
	/// A failed PTR query matches nothing; a failed address query skips that name.
	/// </summary>
	async Task<List<string>> ValidatedNames(bool countVoids)
	{
		var ptr = await Ask(t => dns.PtrAsync(ip, t));
		var names = new List<string>();
		if (ptr.Status != DnsStatus.Ok) {
			if (countVoids && ptr.Status != DnsStatus.TempError)
				Void("the client's PTR");
			return names;
		}
		foreach (var name in ptr.Records.Take(MaxNames)) {
			if (!Queryable(name))
				continue;
			var a = await Ask(t => dns.AddressAsync(name, v6, t));
			if (a.Status is DnsStatus.NoData or DnsStatus.NxDomain && countVoids)
				Void(name);
			if (a.Status == DnsStatus.Ok && a.Records.Any(x => Same(x, v6 ? 128 : 32)))
				names.Add(name);
		}
		return names;
	}

	/// <summary>%{p}: a validated name, preferably the domain or a subdomain of it, else "unknown" (§7.3); looked up once.</summary>
	async Task<string> PtrMacro(string domain)
	{
		if (ptrName is null) {
			var names = await ValidatedNames(countVoids: false);
			ptrName = names.FirstOrDefault(n => n.Equals(domain, StringComparison.OrdinalIgnoreCase))
				?? names.FirstOrDefault(n => n.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase))
				?? names.FirstOrDefault()
				?? "unknown";
		}
		return ptrName;
	}

	SpfMacroValues Values(string domain, string? p)
	{
		var at = sender.LastIndexOf('@');
		var local = at > 0 ? sender[..at] : "postmaster";
		var senderDomain = at >= 0 ? sender[(at + 1)..] : domain;
		return new SpfMacroValues(at > 0 ? sender : local + "@" + senderDomain, local, senderDomain, domain, ip, helo, receiver, p, now);
	}

	/// <summary>A domain-spec expanded into a name to look up: no final dot, cut from the left to 253 bytes (§7.3).</summary>
	async Task<string> Target(string spec, string domain)
	{
		var p = SpfMacro.UsesPtr(spec) ? await PtrMacro(domain) : null;
		var s = SpfMacro.Expand(spec, Values(domain, p), explanation: false)
			?? throw new SpfAbort(SpfResult.PermError, $"{domain}: bad macro in {spec}");
		if (s.EndsWith('.'))
			s = s[..^1];
		while (s.Length > 253 && s.IndexOf('.') is var dot and >= 0)
			s = s[(dot + 1)..];
		return s;
	}

	/// <summary>The exp= text (§6.2), or null on any problem: a bad name, a DNS failure, not exactly one TXT, bad syntax.</summary>
	async Task<string?> Explain(string spec, string domain)
	{
		try {
			var name = await Target(spec, domain);
			if (!Queryable(name))
				return null;
			var txt = await Ask(t => dns.TxtAsync(name, t));
			if (txt.Status != DnsStatus.Ok || txt.Records.Count != 1)
				return null;
			var text = txt.Records[0];
			if (text.Any(c => c < 0x20 || c > 0x7e))
				return null;
			var p = SpfMacro.UsesPtr(text) ? await PtrMacro(domain) : null;
			return SpfMacro.Expand(text, Values(domain, p), explanation: true);
		} catch (SpfAbort) {
			return null;
		}
	}

	/// <summary>Whether a name can be asked for: labels of 1..63 bytes, 253 in all (an empty label makes it "non-existent").</summary>
	internal static bool Queryable(string name)
	{
		if (name.Length is 0 or > 253)
			return false;
		foreach (var label in name.Split('.')) {
			if (label.Length is 0 or > 63)
				return false;
		}
		return true;
	}

	void CountTerm(string term)
	{
		if (++terms > MaxDnsTerms)
			throw new SpfAbort(SpfResult.PermError, $"more than {MaxDnsTerms} DNS-querying terms (at {term})");
	}

	void Void(string name)
	{
		if (++voids > MaxVoidLookups)
			throw new SpfAbort(SpfResult.PermError, $"more than {MaxVoidLookups} void DNS lookups (at {name})");
	}

	/// <summary>One question, within the caps on questions and time.</summary>
	async Task<DnsAnswer<T>> Ask<T>(Func<CancellationToken, Task<DnsAnswer<T>>> q)
	{
		if (++queries > MaxQueries)
			throw new SpfAbort(SpfResult.PermError, $"more than {MaxQueries} DNS questions");
		ct.ThrowIfCancellationRequested();
		var a = await q(ct).ConfigureAwait(false);
		ct.ThrowIfCancellationRequested();
		return a;
	}

	bool InNet(IPAddress net, int bits) => Prefix(net.GetAddressBytes(), Client, bits);

	/// <summary>Whether a (of the client's family, or not at all) is in the client's network of length bits.</summary>
	bool Same(IPAddress a, int bits)
	{
		if (a.IsIPv4MappedToIPv6 && !v6)
			a = a.MapToIPv4();
		var b = a.GetAddressBytes();
		return b.Length == Client.Length && Prefix(b, Client, bits);
	}

	byte[] Client => field ??= ip.GetAddressBytes();

	static bool Prefix(byte[] a, byte[] b, int bits)
	{
		if (a.Length != b.Length)
			return false;
		for (var i = 0; bits > 0; i++, bits -= 8) {
			var mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
			if (((a[i] ^ b[i]) & mask) != 0)
				return false;
		}
		return true;
	}
}

/// <summary>A temperror or permerror: ends the whole check.</summary>
sealed class SpfAbort(SpfResult result, string detail) : Exception(detail)
{
	public SpfResult Result { get; } = result;
	public string Detail { get; } = detail;
}
