using System.Net;
using DnsClient;

namespace Upas;

/// <summary>
/// The DNS client of smtp and smtpd. The servers come from the caller (smtpd.conf dnsserver), else the
/// environment variable $dnsserver (ADDR[!PORT], several separated by spaces or commas), else /etc/resolv.conf.
/// </summary>
public static class Resolver
{
	public static LookupClient Client(IReadOnlyList<string>? servers = null)
	{
		var list = servers is { Count: > 0 } ? servers : FromEnv();
		var eps = list.Select(Endpoint).OfType<IPEndPoint>().ToArray();
		if (eps.Length == 0)
			eps = System();
		var opts = new LookupClientOptions(eps);
		opts.UseCache = false;
		opts.Timeout = TimeSpan.FromSeconds(5);
		opts.Retries = 1;
		opts.ThrowDnsErrors = false;
		opts.ContinueOnDnsError = false;
		opts.UseTcpFallback = true;
		return new LookupClient(opts);
	}

	/// <summary>A host's A and AAAA addresses (an address is itself); empty when it has none or DNS fails.</summary>
	public static IEnumerable<IPAddress> Addresses(string host, IReadOnlyList<string>? servers = null)
	{
		if (IPAddress.TryParse(host.Trim('[', ']'), out var a))
			return [a];
		var c = Client(servers);
		var list = new List<IPAddress>();
		foreach (var t in new[] { QueryType.A, QueryType.AAAA }) {
			try {
				var r = c.Query(host, t);
				list.AddRange(r.Answers.ARecords().Select(x => x.Address));
				list.AddRange(r.Answers.AaaaRecords().Select(x => x.Address));
			} catch (DnsResponseException) {
			}
		}
		return list;
	}

	/// <summary>/etc/resolv.conf's servers; never a public resolver (DnsClient's default falls back to one).</summary>
	static IPEndPoint[] System()
	{
		var ns = NameServer.ResolveNameServers(skipIPv6SiteLocal: true, fallbackToGooglePublicDns: false)
			.Select(n => new IPEndPoint(IPAddress.Parse(n.Address), n.Port)).ToArray();
		return ns.Length > 0 ? ns : [new IPEndPoint(IPAddress.Loopback, 53)];
	}

	static string[] FromEnv() =>
		(Environment.GetEnvironmentVariable("dnsserver") ?? "").Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries);

	/// <summary>"127.0.0.1!5353", "::1", "[::1]!53" or "127.0.0.1:5353".</summary>
	public static IPEndPoint? Endpoint(string s)
	{
		var port = 53;
		var host = s;
		var bang = s.LastIndexOf('!');
		if (bang >= 0) {
			host = s[..bang];
			if (!int.TryParse(s.AsSpan(bang + 1), out port))
				return null;
		} else if (s.Count(c => c == ':') == 1) {
			var colon = s.IndexOf(':');
			host = s[..colon];
			if (!int.TryParse(s.AsSpan(colon + 1), out port))
				return null;
		}
		host = host.Trim('[', ']');
		return IPAddress.TryParse(host, out var a) && port is > 0 and < 65536 ? new IPEndPoint(a, port) : null;
	}
}
