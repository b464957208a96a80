using System.Net;
using System.Text;
using Upas.Dkim;
using Upas.Dmarc;
using Upas.Spf;

namespace Upas.Smtpd;

/// <summary>SPF at MAIL (RFC 7208) for clients neither trusted nor authenticated; the session's one DNS client.</summary>
sealed partial class Session
{
	// RFC 7208 §4.6.4: at least 20 s for the whole check
	static readonly TimeSpan SpfTimeout = TimeSpan.FromSeconds(20);

	string helo = "";
	string? authUser;
	IDnsQuery? sessionDns;
	SpfOutcome? spf;       // of the transaction, null when not checked
	string spfIdentity = ""; // the address SPF checked (smtp.mailfrom) or the HELO name (smtp.helo)
	bool spfHelo;

	/// <summary>One DnsQuery per session, its answers kept for the session (a client sending ten messages asks once).</summary>
	IDnsQuery Dns => sessionDns ??= new CachingDns(new DnsQuery(conf.DnsServers.Count > 0 ? conf.DnsServers : null));

	/// <summary>Whether this client's mail is checked: neither in ournets (policy.Trusted before AUTH) nor authenticated.</summary>
	bool Checked => !policy.Trusted && !authenticated;

	/// <summary>
	/// SPF of MAIL FROM's domain (of postmaster@HELO for MAIL FROM:&lt;&gt;); false when the command was refused
	/// (spf reject: 550 5.7.23 for fail, 451 4.7.24 for temperror), the reply then sent.
	/// </summary>
	async Task<bool> CheckSpf(string bang)
	{
		spf = null;
		if (!Checked || !IPAddress.TryParse(rsys, out var ip))
			return true;
		var mailFrom = MailFromAddress(bang);
		var (snd, domain) = SpfCheck.Sender(mailFrom, helo);
		spfHelo = !mailFrom.Contains('@');
		spfIdentity = spfHelo ? helo : snd;
		using var cts = new CancellationTokenSource(SpfTimeout);
		var o = await SpfCheck.CheckHostAsync(Dns, ip, domain, snd, helo, dom, cts.Token);
		spf = o;
		trace.Line($"spf: check_host({ip}, {domain}, {snd}, helo {helo}) = {SpfNames.Name(o.Result)}: {o.Detail}");
		if (!conf.SpfReject)
			return true;
		if (o.Result == SpfResult.Fail) {
			Log($"Refused {EnvAddr.Printable(bang)} {Who}: spf=fail {o.Detail}");
			rc++;
			var why = o.Explanation is { } e && Printable(e, 200) is { Length: > 0 } pe ? pe
				: $"SPF of {Printable(domain, 100)} does not allow {rsys} to send its mail";
			Reply($"550 5.7.23 {why}");
			return false;
		}
		if (o.Result == SpfResult.TempError) {
			Log($"Deferred {EnvAddr.Printable(bang)} {Who}: spf=temperror {o.Detail}");
			Reply($"451 4.7.24 Cannot check the SPF of {Printable(domain, 100)} now, try again later");
			return false;
		}
		return true;
	}

	/// <summary>MAIL FROM's address as the client wrote it, from the command's bang value: "dom!user" → "user@dom"; "" for &lt;&gt;.</summary>
	internal static string MailFromAddress(string bang)
	{
		if (bang == "/dev/null")
			return "";
		var parts = bang.Split('!');
		return parts.Length < 2 ? parts[^1] : parts[^1] + "@" + parts[^2];
	}

	/// <summary>Printable ASCII only (a peer's text going into a reply or a header), cut at max.</summary>
	internal static string Printable(string s, int max) => EnvAddr.Ascii(s, max).Trim();

	/// <summary>The checks of one message, made when DATA starts: what SPF said at MAIL, a DKIM verifier fed the message as received.</summary>
	MessageAuth StartMessageAuth() => new(
		authenticated ? AuthMode.Authenticated : policy.Trusted ? AuthMode.Trusted : AuthMode.Checked,
		dom, authUser, spf, spfIdentity, spfHelo, Dns, conf.DmarcReject, trace);
}

enum AuthMode { Trusted, Authenticated, Checked }

/// <summary>What the checks decided: the header lines to add first, a refusal (a whole reply line) or null, the log line.</summary>
sealed record AuthDecision(string Fields, string? Refusal, string LogLine);

/// <summary>
/// DKIM (RFC 6376) over the message as received and DMARC (RFC 7489) of its From: domain; the
/// Authentication-Results field (RFC 8601) and the dmarc reject policy.
/// </summary>
sealed class MessageAuth(AuthMode mode, string dom, string? authUser, SpfOutcome? spf, string spfIdentity, bool spfHelo,
	IDnsQuery dns, bool dmarcReject, Trace trace)
{
	static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(30);

	readonly DkimVerifier? dkim = mode == AuthMode.Checked ? new DkimVerifier() : null;

	public AuthMode Mode => mode;

	/// <summary>Whether Authentication-Results fields claiming our domain (and X-upas-quarantine) are removed from the client's header.</summary>
	public bool StripsOurs => mode != AuthMode.Trusted;

	/// <summary>The message as received (dot-unstuffed), in any chunks.</summary>
	public void Feed(ReadOnlySpan<byte> b) => dkim?.Feed(b);

	/// <summary>
	/// Whether the header must wait for the end of the body: DKIM signatures are there (their body hashes are
	/// known only at the end), or the header window ended before the verifier saw the header's end.
	/// </summary>
	public bool MustWait => dkim is not null && (!dkim.HeaderDone || dkim.Signatures > 0);

	/// <summary>Runs DKIM (on what was fed) and DMARC on From: as the client wrote it; never throws for DNS or record trouble.</summary>
	public async Task<AuthDecision> DecideAsync()
	{
		if (mode == AuthMode.Trusted)
			return new("", null, "trusted client: not checked");
		var ar = new AuthResults(dom);
		if (mode == AuthMode.Authenticated) {
			ar.Add("auth", "pass", null, ("smtp.auth", authUser ?? ""));
			return new(ar.Field(), null, $"auth=pass({authUser})");
		}
		using var cts = new CancellationTokenSource(CheckTimeout);
		var log = new StringBuilder();

		// SPF: decided at MAIL
		if (spf is { } s) {
			ar.Add("spf", SpfNames.Name(s.Result), null, (spfHelo ? "smtp.helo" : "smtp.mailfrom", spfIdentity));
			log.Append($"spf={SpfNames.Name(s.Result)}({spfIdentity})");
		} else {
			ar.Add("spf", "none", "not checked", ("smtp.mailfrom", spfIdentity));
			log.Append("spf=none");
		}

		// DKIM: one result per signature
		var verifier = dkim!; // made for every checked client
		var sigs = await verifier.FinishAsync(dns, cts.Token);
		if (sigs.Count == 0) {
			ar.Add("dkim", "none", null);
			log.Append(" dkim=none");
		}
		for (var i = 0; i < sigs.Count; i++) {
			var o = sigs[i];
			var comment = o.Result == DkimResult.Pass ? (o.Length is { } l ? $"l={l}" : null) : o.Detail;
			ar.Add("dkim", DkimNames.Name(o.Result), comment, ("header.d", o.Domain), ("header.s", o.Selector));
			log.Append(i == 0 ? " dkim=" : ",").Append($"{DkimNames.Name(o.Result)}({o.Domain}/{o.Selector})");
			trace.Line($"dkim: d={o.Domain} s={o.Selector} a={o.Algorithm} = {DkimNames.Name(o.Result)}: {o.Detail}");
		}
		if (sigs.Count == 0)
			trace.Line("dkim: no signature");

		// DMARC: on the one domain of From:
		// From: as the verifier kept it (the whole header, up to 256 KiB), not only smtpd's 16 KB window: padding cannot hide it
		var (fromDomain, why) = verifier.HeaderTooLarge ? (null, "header too large") : FromDomain(verifier.FieldsNamed("From").ToList());
		DmarcOutcome d;
		if (fromDomain is null)
			d = new(why.StartsWith("several", StringComparison.Ordinal) || why == "header too large" ? DmarcResult.PermError : DmarcResult.None, "", null, DmarcPolicy.None, why);
		else {
			AuthId? spfId = spf is { } sp ? new AuthId(sp.Domain, sp.Result == SpfResult.Pass, sp.Result == SpfResult.TempError) : null;
			var dkimIds = sigs.Select(o => new AuthId(o.Domain, o.Result == DkimResult.Pass, o.Result == DkimResult.TempError)).ToList();
			d = await DmarcCheck.CheckAsync(dns, PublicSuffixList.Load(), fromDomain, spfId, dkimIds, () => Random.Shared.Next(100), cts.Token);
		}
		trace.Line($"dmarc: header.from={d.Domain} = {DmarcCheck.Name(d.Result)}: {d.Detail}");
		string? policyComment = d.Policy is { } p ? $"p={DmarcRecord.Name(p)} dis={DmarcRecord.Name(d.Disposition)}" : null;
		var dmarcProps = d.Domain.Length > 0 ? new[] { ("header.from", d.Domain) } : [];
		ar.Add("dmarc", DmarcCheck.Name(d.Result), policyComment ?? (d.Result == DmarcResult.Fail || d.Domain.Length == 0 ? d.Detail : null), dmarcProps);
		var what = string.Join(' ', new[] { d.Domain, policyComment ?? "" }.Where(w => w.Length > 0));
		log.Append($" dmarc={DmarcCheck.Name(d.Result)}{(what.Length > 0 ? $"({what})" : "")}");

		var fields = ar.Field();
		string? refusal = null;
		if (dmarcReject && why == "header too large")
			refusal = "550 5.7.1 Header too large for a DMARC check"; // else padding would be a way around dmarc reject
		else if (dmarcReject && d.Result == DmarcResult.Fail && d.Disposition == DmarcPolicy.Reject)
			refusal = $"550 5.7.1 Rejected by the DMARC policy of {d.Domain}";
		else if (dmarcReject && d.Result == DmarcResult.TempError)
			refusal = $"451 4.7.1 Cannot check the DMARC policy of {d.Domain} now, try again later";
		else if (dmarcReject && d.Result == DmarcResult.Fail && d.Disposition == DmarcPolicy.Quarantine)
			fields += $"X-upas-quarantine: dmarc=fail policy=quarantine header.from={AuthResults.Value(d.Domain)}\n";
		if (refusal is not null)
			log.Append($" action={refusal[..3]}");
		else if (fields.Contains("X-upas-quarantine", StringComparison.Ordinal))
			log.Append(" action=quarantine");
		return new(fields, refusal, log.ToString());
	}

	/// <summary>The one domain of the header's From: (RFC 7489 §6.6.1); else null and why (several From: fields or domains, none, no domain).</summary>
	static (string? Domain, string Why) FromDomain(List<string> froms)
	{
		if (froms.Count == 0)
			return (null, "no From: field");
		if (froms.Count > 1)
			return (null, "several From: fields");
		var domains = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
		// the field alone through the header parser: its every address, as written
		Rfc822.Parse(froms[0].Replace("\r\n", "\n").TrimEnd('\n') + "\n\n", a => {
			var at = a.LastIndexOf('@');
			if (at >= 0 && at < a.Length - 1)
				domains.Add(a[(at + 1)..].Trim().TrimEnd('>', '.'));
			else
				domains.Add("");
			return a;
		});
		if (domains.Count == 0)
			return (null, "no address in From:");
		if (domains.Count > 1)
			return (null, "several domains in From:");
		var dom = domains.First();
		if (dom.Length == 0 || dom.StartsWith('['))
			return (null, "From: address without a domain");
		return (dom, "");
	}
}

/// <summary>
/// An IDnsQuery that asks each question once per session (SPF at MAIL, then DKIM and DMARC at DATA, message after
/// message). What it keeps is bounded in entries and in characters: a client naming domains whose zones serve
/// huge records, MAIL after MAIL, cannot make a session hold more than that.
/// </summary>
sealed class CachingDns(IDnsQuery inner) : IDnsQuery
{
	internal const int MaxEntries = 512, MaxChars = 256 * 1024;
	readonly Dictionary<string, object> cache = new(StringComparer.OrdinalIgnoreCase);
	long chars;

	(Task<DnsAnswer<T>> Answer, bool Asked) Once<T>(string key, Func<Task<DnsAnswer<T>>> ask)
	{
		lock (cache) {
			if (cache.TryGetValue(key, out var c))
				return ((Task<DnsAnswer<T>>)c, false);
			var t = ask();
			if (cache.Count < MaxEntries)
				cache[key] = t;
			return (t, true);
		}
	}

	// a temporary failure is not kept (the next message asks again), nor an answer past the budget
	async Task<DnsAnswer<T>> Fresh<T>(string key, Func<Task<DnsAnswer<T>>> ask)
	{
		var (t, asked) = Once(key, ask);
		var a = await t;
		if (!asked)
			return a;
		var size = key.Length + a.Records.Sum(r => r is string s ? s.Length : 16);
		lock (cache) {
			if (a.Status == DnsStatus.TempError || chars + size > MaxChars)
				cache.Remove(key);
			else if (cache.ContainsKey(key))
				chars += size;
		}
		return a;
	}

	public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct) => Fresh("txt " + name, () => inner.TxtAsync(name, ct));
	public Task<DnsAnswer<IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct) => Fresh((ipv6 ? "aaaa " : "a ") + name, () => inner.AddressAsync(name, ipv6, ct));
	public Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct) => Fresh("mx " + name, () => inner.MxAsync(name, ct));
	public Task<DnsAnswer<string>> PtrAsync(IPAddress ip, CancellationToken ct) => Fresh("ptr " + ip, () => inner.PtrAsync(ip, ct));
}
