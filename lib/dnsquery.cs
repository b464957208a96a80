using System.Net;
using System.Text;
using DnsClient;
using DnsClient.Protocol;

namespace Upas;

/// <summary>How a DNS question was answered. NoData and NxDomain are "void" answers (RFC 7208 §4.6.4).</summary>
public enum DnsStatus { Ok, NoData, NxDomain, TempError }

/// <summary>An answer: its status and, for Ok, the records of the asked type (never empty then).</summary>
public sealed record DnsAnswer<T>(DnsStatus Status, IReadOnlyList<T> Records);

/// <summary>The DNS questions SPF, DKIM and DMARC ask. Implementations never throw: failures are TempError.</summary>
public interface IDnsQuery
{
	/// <summary>One string per TXT RR, its character-strings concatenated (raw bytes as Latin-1).</summary>
	Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct);

	/// <summary>A (ipv6 false) or AAAA (ipv6 true) addresses.</summary>
	Task<DnsAnswer<IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct);

	/// <summary>The exchange host names of the MX records, without the final dot, in the order served.</summary>
	Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct);

	/// <summary>The PTR names of ip's reverse name, without the final dot.</summary>
	Task<DnsAnswer<string>> PtrAsync(IPAddress ip, CancellationToken ct);
}

/// <summary>
/// IDnsQuery over DnsClient (Upas.Resolver.Client: smtpd.conf dnsserver, else $dnsserver, else resolv.conf).
/// NXDOMAIN → NxDomain; NOERROR without records of the type → NoData; SERVFAIL, REFUSED, a timeout, a failed
/// TCP retry of a truncated answer, an answer that cannot be parsed, or cancellation → TempError. CNAME chains
/// in the answer are followed; a record repeated in an answer is kept once.
/// </summary>
public sealed class DnsQuery(IReadOnlyList<string>? servers) : IDnsQuery
{
	/// <summary>At most this many records of one answer are kept (a DNS message is ≤ 64 KiB anyway).</summary>
	public const int MaxRecords = 100;

	/// <summary>At most this many chained CNAMEs, in one answer or across re-queries.</summary>
	const int MaxCnames = 8;

	/// <summary>How long one question may take, whatever DnsClient's own timeouts and retries do.</summary>
	public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(12);

	readonly LookupClient client = Resolver.Client(servers);

	public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct) =>
		Ask(name, QueryType.TXT, r => r is TxtRecord t ? Txt(t) : null, ct);

	public Task<DnsAnswer<IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct) => ipv6
		? Ask(name, QueryType.AAAA, r => (r as AaaaRecord)?.Address, ct)
		: Ask(name, QueryType.A, r => (r as ARecord)?.Address, ct);

	public Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct) =>
		Ask(name, QueryType.MX, r => r is MxRecord m ? Bare(m.Exchange.Original) : null, ct);

	public Task<DnsAnswer<string>> PtrAsync(IPAddress ip, CancellationToken ct) =>
		Ask(ReverseName(ip), QueryType.PTR, r => r is PtrRecord p ? Bare(p.PtrDomainName.Original) : null, ct);

	/// <summary>"4.3.2.1.in-addr.arpa" or the ip6.arpa nibble name; an IPv4-mapped address is its IPv4 one.</summary>
	public static string ReverseName(IPAddress ip)
	{
		if (ip.IsIPv4MappedToIPv6)
			ip = ip.MapToIPv4();
		var b = ip.GetAddressBytes();
		var sb = new StringBuilder();
		if (b.Length == 4) {
			for (var i = 3; i >= 0; i--)
				sb.Append(b[i]).Append('.');
			return sb.Append("in-addr.arpa").ToString();
		}
		for (var i = 15; i >= 0; i--)
			sb.Append("0123456789abcdef"[b[i] & 15]).Append('.').Append("0123456789abcdef"[b[i] >> 4]).Append('.');
		return sb.Append("ip6.arpa").ToString();
	}

	static string Bare(string name) => name.EndsWith('.') ? name[..^1] : name;

	async Task<DnsAnswer<T>> Ask<T>(string name, QueryType type, Func<DnsResourceRecord, T?> pick, CancellationToken ct)
	{
		name = Bare(name);
		if (!Askable(name))
			return new(DnsStatus.NxDomain, []);
		var visited = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { name };
		for (var hop = 0; hop <= MaxCnames; hop++) {
			var r = await Query(name, type, ct);
			if (r is null)
				return new(DnsStatus.TempError, []);
			switch (r.Header.ResponseCode) {
			case DnsHeaderResponseCode.NoError:
				break;
			case DnsHeaderResponseCode.NotExistentDomain:
				return new(DnsStatus.NxDomain, []);
			default:
				return new(DnsStatus.TempError, []);
			}
			// the records owned by the name or by the end of its CNAME chain inside this answer
			var owner = name;
			var seen = 0;
			while (seen++ < MaxCnames && r.Answers.OfType<CNameRecord>().FirstOrDefault(c => Same(c.DomainName.Original, owner)) is { } cn)
				owner = Bare(cn.CanonicalName.Original);
			var list = new List<T>();
			var seenData = new HashSet<string>(StringComparer.Ordinal);
			foreach (var rr in r.Answers) {
				if (list.Count >= MaxRecords)
					break;
				// an RRset is a set (RFC 2181 §5): a repeated record once (MX records differ by preference too)
				if (Same(rr.DomainName.Original, owner) && pick(rr) is { } v && seenData.Add(rr is MxRecord m ? $"{m.Preference} {v}" : v.ToString()!))
					list.Add(v);
			}
			if (list.Count > 0)
				return new(DnsStatus.Ok, list);
			if (Same(owner, name))
				return new(DnsStatus.NoData, []);
			name = owner;	// a CNAME whose target the server did not resolve: ask for the target
			if (!visited.Add(name))
				return new(DnsStatus.NoData, []);	// a CNAME loop: a broken name, which has no data (as pyspf has it)
			if (!Askable(name))
				return new(DnsStatus.NxDomain, []);
		}
		return new(DnsStatus.TempError, []);	// an overlong chain
	}

	static bool Same(string a, string b) => string.Equals(Bare(a), Bare(b), StringComparison.OrdinalIgnoreCase);

	/// <summary>Whether name can be put in a question: printable ASCII (SPF's %_ makes spaces), labels of 1..63 bytes, 253 in all.</summary>
	static bool Askable(string name)
	{
		if (name.Length is 0 or > 253)
			return false;
		foreach (var label in name.Split('.')) {
			if (label.Length is 0 or > 63)
				return false;
		}
		foreach (var c in name) {
			if (c < ' ' || c >= 127)
				return false;
		}
		return true;
	}

	async Task<IDnsQueryResponse?> Query(string name, QueryType type, CancellationToken ct)
	{
		using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
		cts.CancelAfter(Timeout);
		try {
			var q = client.QueryAsync(name, type, QueryClass.IN, cts.Token);
			// the token is not always noticed while DnsClient waits on a socket: bound the wait ourselves too
			var done = await Task.WhenAny(q, Task.Delay(System.Threading.Timeout.Infinite, cts.Token)).ConfigureAwait(false);
			if (done != q) {
				_ = q.ContinueWith(static t => t.Exception, TaskScheduler.Default);	// observe its late failure
				return null;
			}
			return await q.ConfigureAwait(false);
		} catch (Exception e) when (e is not OutOfMemoryException) {
			return null;	// a timeout, a socket error, an answer DnsClient cannot parse (DnsResponseParseException), a name it refuses
		}
	}

	/// <summary>
	/// The RR's character-strings concatenated, each byte one Latin-1 char. DnsClient gives each string decoded as
	/// UTF-8 (exact when valid) and escaped ("\ddd" for odd bytes, but a backslash left as is): the first when it
	/// decoded cleanly, else the second undone.
	/// </summary>
	static string Txt(TxtRecord t)
	{
		var sb = new StringBuilder();
		var utf8 = t.Text.ToArray();
		var escaped = t.EscapedText.ToArray();
		for (var i = 0; i < escaped.Length; i++) {
			if (i < utf8.Length && !utf8[i].Contains('\uFFFD'))
				sb.Append(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(utf8[i])));
			else
				Unescape(escaped[i], sb);
		}
		return sb.ToString();
	}

	/// <summary>
	/// Undoes DnsClient's escaping: "\ddd" is a byte, "\"" a quote, any other backslash itself. (Only used for a string
	/// that is not valid UTF-8, so has a byte over 127 anyway: a literal backslash and three digits in it is misread.)
	/// </summary>
	internal static void Unescape(string s, StringBuilder sb)
	{
		for (var i = 0; i < s.Length; i++) {
			var c = s[i];
			if (c == '\\' && i + 3 < s.Length && char.IsAsciiDigit(s[i + 1]) && char.IsAsciiDigit(s[i + 2]) && char.IsAsciiDigit(s[i + 3])
				&& (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0') is var b and <= 255) {
				sb.Append((char)b);
				i += 3;
			} else if (c == '\\' && i + 1 < s.Length && s[i + 1] == '"') {
				sb.Append('"');
				i++;
			} else {
				sb.Append(c);
			}
		}
	}
}
