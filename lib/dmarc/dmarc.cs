namespace Upas.Dmarc;

public enum DmarcResult { None, Pass, Fail, TempError, PermError }

/// <summary>
/// The outcome for one message: Result for the header; Disposition the policy to apply (p= or sp=, lowered by
/// pct= sampling, None unless Result is Fail); Policy the record's own (null without a record); Detail one line.
/// </summary>
public sealed record DmarcOutcome(DmarcResult Result, string Domain, DmarcPolicy? Policy, DmarcPolicy Disposition, string Detail);

/// <summary>An authenticated identifier: SPF's domain (MAIL FROM's, or HELO's for MAIL FROM:&lt;&gt;) or a DKIM d=, and whether it passed or failed temporarily.</summary>
public readonly record struct AuthId(string Domain, bool Pass, bool TempError);

/// <summary>DMARC (RFC 7489): discovery of the From: domain's policy, identifier alignment, the disposition.</summary>
public static class DmarcCheck
{
	/// <summary>
	/// Evaluates fromDomain (the one domain of the header's From:). spf is SPF's identifier (null when SPF was not
	/// checked), dkim one per signature. roll gives 0..99 for pct= sampling. Never throws for DNS or record errors.
	/// </summary>
	public static async Task<DmarcOutcome> CheckAsync(IDnsQuery dns, PublicSuffixList psl, string fromDomain, AuthId? spf,
		IReadOnlyList<AuthId> dkim, Func<int> roll, CancellationToken ct)
	{
		var from = PublicSuffixList.Ascii(fromDomain);
		var org = psl.OrganizationalDomain(from);
		var (found, where, why) = await Discover(dns, from, org, ct);
		if (found is null) {
			return why switch {
				null => new(DmarcResult.None, from, null, DmarcPolicy.None, $"no DMARC record at _dmarc.{from}{(org != from ? $" or _dmarc.{org}" : "")}"),
				_ when why.StartsWith("temp:", StringComparison.Ordinal) => new(DmarcResult.TempError, from, null, DmarcPolicy.None, why[5..]),
				_ when why.StartsWith("none:", StringComparison.Ordinal) => new(DmarcResult.None, from, null, DmarcPolicy.None, why[5..]),
				_ => new(DmarcResult.PermError, from, null, DmarcPolicy.None, why),
			};
		}
		var rec = found;
		// the org domain's record governs a subdomain by sp= when it has one (§6.6.3 step 5, §6.3 "sp")
		var policy = where != from && rec.Sp is { } sp ? sp : rec.P;
		bool Aligned(string d, bool strict)
		{
			var a = PublicSuffixList.Ascii(d);
			return strict ? a == from : psl.OrganizationalDomain(a) == org;
		}
		var spfAligned = spf is { Pass: true } s && Aligned(s.Domain, rec.StrictSpf);
		var dkimAligned = dkim.FirstOrDefault(k => k.Pass && Aligned(k.Domain, rec.StrictDkim));
		var via = $"record at _dmarc.{where} p={DmarcRecord.Name(policy)}";
		if (spfAligned || dkimAligned.Domain is not null) {
			var how = dkimAligned.Domain is not null ? $"DKIM d={dkimAligned.Domain}" : $"SPF {spf!.Value.Domain}";
			return new(DmarcResult.Pass, from, policy, DmarcPolicy.None, $"{via}: aligned {how}");
		}
		// a temporary failure of an identifier that would have aligned: the result is not known yet (RFC 7489 §6.6.2 lets a receiver defer)
		var spfTemp = spf is { TempError: true } t && Aligned(t.Domain, rec.StrictSpf);
		var dkimTemp = dkim.Any(k => k.TempError && Aligned(k.Domain, rec.StrictDkim));
		if (spfTemp || dkimTemp)
			return new(DmarcResult.TempError, from, policy, DmarcPolicy.None, $"{via}: {(spfTemp ? "SPF" : "DKIM")} failed temporarily for an aligned domain");
		var disposition = policy;
		var sampled = "";
		if (rec.Pct < 100) {
			var r = roll();
			if (r >= rec.Pct) {
				// outside the sample: the next policy down (§6.6.4)
				disposition = policy == DmarcPolicy.Reject ? DmarcPolicy.Quarantine : DmarcPolicy.None;
				sampled = $", pct={rec.Pct} not sampled";
			} else
				sampled = $", pct={rec.Pct} sampled";
		}
		return new(DmarcResult.Fail, from, policy, disposition, $"{via}: no aligned SPF or DKIM pass{sampled}");
	}

	/// <summary>_dmarc.FROM, then _dmarc.ORG (§6.6.3): the record and where it was found; else why not ("temp:…", "none:…", a permerror's reason, or null for none).</summary>
	static async Task<(DmarcRecord? Rec, string Where, string? Why)> Discover(IDnsQuery dns, string from, string org, CancellationToken ct)
	{
		foreach (var d in from == org ? [from] : new[] { from, org }) {
			var a = await dns.TxtAsync("_dmarc." + d, ct);
			if (a.Status == DnsStatus.TempError)
				return (null, d, $"temp:DNS lookup of _dmarc.{d} failed");
			var recs = a.Status == DnsStatus.Ok ? a.Records.Where(DmarcRecord.IsDmarc).ToList() : [];
			if (recs.Count == 0)
				continue;
			if (recs.Count > 1)
				return (null, d, $"none:{recs.Count} DMARC records at _dmarc.{d}"); // §6.6.3 step 4: no policy
			var rec = DmarcRecord.Parse(recs[0], out var why);
			if (rec is null)
				return (null, d, $"bad DMARC record at _dmarc.{d}: {why}");
			return (rec, d, null);
		}
		return (null, from, null);
	}

	public static string Name(DmarcResult r) => r switch {
		DmarcResult.Pass => "pass",
		DmarcResult.Fail => "fail",
		DmarcResult.TempError => "temperror",
		DmarcResult.PermError => "permerror",
		_ => "none",
	};
}
