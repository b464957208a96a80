using System.Net;

namespace Upas.Spf;

/// <summary>RFC 7208's check_host(), over an IDnsQuery.</summary>
public static class SpfCheck
{
	/// <summary>
	/// check_host(): ip = the client's address, domain = the domain checked, sender = "local@domain" (for
	/// MAIL FROM:&lt;&gt; the caller passes "postmaster@" + helo and domain = helo), helo = the HELO/EHLO name,
	/// receiver = our domain (%{r}). Never throws: DNS and record errors are results; cancellation is TempError.
	/// </summary>
	public static Task<SpfOutcome> CheckHostAsync(IDnsQuery dns, IPAddress ip, string domain, string sender, string helo, string receiver, CancellationToken ct) =>
		Task.FromResult(new SpfOutcome(SpfResult.None, domain, null, "not implemented yet"));

	/// <summary>
	/// The check of an SMTP transaction (RFC 7208 §2.3, §2.4): of the MAIL FROM address, or when it is empty (&lt;&gt;)
	/// of "postmaster@" + helo; an address without a local part gets "postmaster". mailFrom is the bare address
	/// (no angle brackets; a source route or an address without "@" is checked as helo's).
	/// </summary>
	public static Task<SpfOutcome> MailFromAsync(IDnsQuery dns, IPAddress ip, string mailFrom, string helo, string receiver, CancellationToken ct)
	{
		var (sender, domain) = Sender(mailFrom, helo);
		return CheckHostAsync(dns, ip, domain, sender, helo, receiver, ct);
	}

	/// <summary>The sender and domain check_host() gets for MAIL FROM:&lt;mailFrom&gt; after HELO helo.</summary>
	public static (string Sender, string Domain) Sender(string mailFrom, string helo)
	{
		var at = mailFrom.LastIndexOf('@');
		if (at < 0 || at == mailFrom.Length - 1)
			return ("postmaster@" + helo, helo);
		var local = mailFrom[..at];
		var domain = mailFrom[(at + 1)..];
		return ((local.Length == 0 ? "postmaster" : local) + "@" + domain, domain);
	}
}
