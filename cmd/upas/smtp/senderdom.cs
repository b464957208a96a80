using System.Net;
using System.Net.Sockets;
using DnsClient;

namespace Upas.Smtpd;

enum DomainCheck { Exists, Missing, TryLater }

/// <summary>-r / verifysenderdom: does the sender's domain exist in the DNS (A, AAAA or MX)? (decisions #9)</summary>
static class SenderDomain
{
	public static async Task<DomainCheck> CheckAsync(string domain, IReadOnlyList<string> servers)
	{
		var d = domain.TrimEnd('.');
		// address literals and bare addresses need no lookup
		if (d.StartsWith('[') || d.StartsWith('#') || IsAddress(d))
			return DomainCheck.Exists;
		var client = Resolver.Client(servers);
		var temp = false;
		foreach (var type in new[] { QueryType.MX, QueryType.A, QueryType.AAAA }) {
			try {
				var r = await client.QueryAsync(d, type);
				if (r.HasError) {
					if (r.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain)
						return DomainCheck.Missing;
					temp = true;
					continue;
				}
				if (r.Answers.Count > 0)
					return DomainCheck.Exists;
			} catch (DnsResponseException e) when (e.Code == DnsResponseCode.NotExistentDomain) {
				return DomainCheck.Missing;
			} catch (DnsResponseException) {
				temp = true;
			} catch (ArgumentException) {
				// a name the DNS cannot carry (a label over 63 bytes, over 255 in all): no such domain
				return DomainCheck.Missing;
			}
		}
		return temp ? DomainCheck.TryLater : DomainCheck.Missing;
	}

	/// <summary>a.b.c.d or an IPv6 address; not what else IPAddress.Parse takes ("42" is 0.0.0.42).</summary>
	static bool IsAddress(string d) =>
		IPAddress.TryParse(d, out var a) &&
		(a.AddressFamily == AddressFamily.InterNetworkV6 ||
		 d.Split('.') is { Length: 4 } parts && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit)));
}
