namespace Upas.Smtp;

/// <summary>One signing line of /mail/lib/dkim: the domain (lower case, d=), the selector (s=), the key file as written.</summary>
sealed record DkimEntry(string Domain, string Selector, string KeyFile, int Line);

/// <summary>
/// The signing table /mail/lib/dkim (dkim(6)): lines of <c>domain selector keyfile</c>, blank-separated;
/// <c>#</c> starts a comment; blank lines are skipped. A bad line is reported with its number and ignored.
/// Pure: parsing reads no file, so the table's rules are tested line by line.
/// </summary>
sealed class DkimTable
{
	public const string File9 = "/mail/lib/dkim";
	const int MaxName = 253;	// a DNS name
	const int MaxLabel = 63;
	const int MaxPath = 4096;

	public List<DkimEntry> Entries { get; } = [];
	public List<(int Line, string Why)> Errors { get; } = [];

	public static DkimTable Parse(string text)
	{
		var t = new DkimTable();
		var n = 0;
		foreach (var raw in text.Split('\n')) {
			n++;
			var line = raw.TrimEnd('\r');
			var hash = line.IndexOf('#');
			if (hash >= 0)
				line = line[..hash];
			var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
			if (f.Length == 0)
				continue;
			if (Refusal(f) is { } why) {
				t.Errors.Add((n, why));
				continue;
			}
			var e = new DkimEntry(f[0].TrimEnd('.').ToLowerInvariant(), f[1].ToLowerInvariant(), f[2], n);
			if (t.Entries.Find(x => x.Domain == e.Domain && x.Selector == e.Selector) is { } dup) {
				t.Errors.Add((n, $"selector {e.Selector} of {e.Domain} again (first on line {dup.Line})"));
				continue;
			}
			t.Entries.Add(e);
		}
		return t;
	}

	/// <summary>Why the fields are not a signing line; null when they are.</summary>
	static string? Refusal(string[] f)
	{
		if (f.Length != 3)
			return $"{f.Length} field{(f.Length == 1 ? "" : "s")}, not 3 (domain selector keyfile)";
		var (domain, selector, key) = (f[0].TrimEnd('.'), f[1], f[2]);
		if (!IsName(domain))
			return $"bad domain {domain}";
		if (!IsName(selector))
			return $"bad selector {selector}";
		if ($"{selector}._domainkey.{domain}".Length > MaxName)
			return $"{selector}._domainkey.{domain} is longer than {MaxName} characters";
		if (key.Length > MaxPath || key.Any(c => char.IsControl(c)))
			return "bad key file name";
		return null;
	}

	/// <summary>A DNS name of letters, digits and inner hyphens (RFC 6376's sub-domain): what d= and s= may hold.</summary>
	public static bool IsName(string s)
	{
		if (s.Length == 0 || s.Length > MaxName)
			return false;
		foreach (var label in s.Split('.')) {
			if (label.Length == 0 || label.Length > MaxLabel || label[0] == '-' || label[^1] == '-')
				return false;
			if (!label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
				return false;
		}
		return true;
	}

	/// <summary>
	/// The lines that sign for a From: domain: those of the most specific listed domain that is the domain or a
	/// parent of it (mail.example.org signs as example.org unless mail.example.org is listed); none when none is.
	/// </summary>
	public List<DkimEntry> For(string fromDomain)
	{
		var d = fromDomain.TrimEnd('.').ToLowerInvariant();
		string? best = null;
		foreach (var e in Entries)
			if ((d == e.Domain || d.EndsWith("." + e.Domain, StringComparison.Ordinal)) && (best is null || e.Domain.Length > best.Length))
				best = e.Domain;
		return best is null ? [] : Entries.FindAll(e => e.Domain == best);
	}

	/// <summary>The key file as a host path: a path beginning with / is a Plan 9 path under the root, any other is relative to /mail/lib.</summary>
	public static string HostPath(string keyfile) => keyfile.StartsWith('/') ? Root.Path9(keyfile) : Root.Path9("/mail/lib/" + keyfile);
}
