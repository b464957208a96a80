using System.Net;
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
		if (d.StartsWith('[') || d.StartsWith('#') || IPAddress.TryParse(d, out _))
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
			}
		}
		return temp ? DomainCheck.TryLater : DomainCheck.Missing;
	}
}
