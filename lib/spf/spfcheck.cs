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
		CheckHostAsync(dns, ip, domain, sender, helo, receiver, Deadline, ct);

	/// <summary>How long one check may take in all (RFC 7208 §4.6.4 suggests at least 20 s); then it is a temperror.</summary>
	public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

	internal static async Task<SpfOutcome> CheckHostAsync(IDnsQuery dns, IPAddress ip, string domain, string sender, string helo, string receiver, TimeSpan deadline, CancellationToken ct)
	{
		if (ip.IsIPv4MappedToIPv6)
			ip = ip.MapToIPv4();	// §5: an IPv4-mapped client is an IPv4 client
		var d = domain.EndsWith('.') ? domain[..^1] : domain;
		if (!Fqdn(d))
			return new(SpfResult.None, domain, null, $"{Printable(domain)} is not a domain name");
		using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
		cts.CancelAfter(deadline);
		try {
			var o = await new SpfEvaluation(dns, ip, sender, helo, receiver, cts.Token).Run(d).ConfigureAwait(false);
			return new(o.Result, domain, o.Explanation is { } x ? Text(x) : null, Printable(o.Detail));
		} catch (SpfAbort a) {
			return new(a.Result, domain, null, Printable(a.Detail));
		} catch (OperationCanceledException) {
			return new(SpfResult.TempError, domain, null, ct.IsCancellationRequested ? "cancelled" : $"no result within {deadline.TotalSeconds:0} s");
		} catch (Exception e) {
			// an IDnsQuery that throws (ours never does): a DNS failure, not a crash of the caller
			return new(SpfResult.TempError, domain, null, Printable($"DNS error: {e.GetType().Name}: {e.Message}"));
		}
	}

	/// <summary>§4.3: a domain that is not a multi-label name of letters, digits, hyphens and underscores gives "none".</summary>
	internal static bool Fqdn(string d)
	{
		if (d.Length is 0 or > 253)
			return false;
		var labels = d.Split('.');
		if (labels.Length < 2 || labels[^1].All(char.IsAsciiDigit))
			return false;
		foreach (var l in labels) {
			if (l.Length is 0 or > 63 || !l.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
				return false;
		}
		return true;
	}

	/// <summary>An explanation made safe for an SMTP reply: the peer's own values (%{s}, %{h}) may hold any byte.</summary>
	static string Text(string s) => EnvAddr.Ascii(s, 300);

	/// <summary>One line of printable ASCII, at most 300 characters: what DNS data may put in a log or a trace.</summary>
	internal static string Printable(string s)
	{
		var sb = new System.Text.StringBuilder(Math.Min(s.Length, 300) + 8);
		foreach (var c in s) {
			if (sb.Length >= 300) {
				sb.Append("...");
				break;
			}
			if (c is >= ' ' and < (char)0x7f && c != '\\')
				sb.Append(c);
			else
				sb.Append(@"\x").Append(((int)c & 0xff).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
		}
		return sb.ToString();
	}

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
