using System.Globalization;

namespace Upas.Dmarc;

/// <summary>
/// The Public Suffix List (publicsuffix.org's format: one rule a line, "//" comments, "*." wildcards, "!"
/// exceptions), for DMARC's organizational domain (RFC 7489 §3.2). ICANN and private sections alike.
/// </summary>
public sealed class PublicSuffixList
{
	/// <summary>The shipped copy, updatable by hand: /mail/lib/public_suffix_list.dat.</summary>
	public const string Plan9Path = "/mail/lib/public_suffix_list.dat";

	readonly HashSet<string> rules = new(StringComparer.Ordinal);
	readonly HashSet<string> wildcards = new(StringComparer.Ordinal);   // "*.ck" kept as "ck"
	readonly HashSet<string> exceptions = new(StringComparer.Ordinal);  // "!www.ck" kept as "www.ck"

	/// <summary>How many rules were read (0: the file was missing or empty; every name is then its own org domain's child of the TLD).</summary>
	public int Count => rules.Count + wildcards.Count + exceptions.Count;

	public static PublicSuffixList Parse(string text)
	{
		var l = new PublicSuffixList();
		foreach (var raw in text.Split('\n')) {
			// a rule ends at the first white space; the rest of the line is ignored
			var line = raw.Trim();
			var sp = line.IndexOfAny([' ', '\t']);
			if (sp >= 0)
				line = line[..sp];
			if (line.Length == 0 || line.StartsWith("//", StringComparison.Ordinal))
				continue;
			if (line.StartsWith('!'))
				l.exceptions.Add(Ascii(line[1..]));
			else if (line.StartsWith("*.", StringComparison.Ordinal))
				l.wildcards.Add(Ascii(line[2..]));
			else
				l.rules.Add(Ascii(line));
		}
		return l;
	}

	static readonly IdnMapping Idn = new();

	/// <summary>A rule or a name in lower case, its Unicode labels as A-labels (xn--) when they convert.</summary>
	public static string Ascii(string name)
	{
		name = name.Trim().TrimEnd('.').ToLowerInvariant();
		foreach (var c in name) {
			if (c > 0x7f) {
				try {
					return Idn.GetAscii(name).ToLowerInvariant();
				} catch (ArgumentException) {
					return name;
				}
			}
		}
		return name;
	}

	/// <summary>The public suffix of a domain: the longest matching rule, an exception rule winning, the implicit rule "*" for unknown TLDs.</summary>
	public string PublicSuffix(string domain)
	{
		var labels = Ascii(domain).Split('.');
		// from the longest candidate to the shortest: the first match is the longest
		for (var i = 0; i < labels.Length; i++) {
			var name = string.Join('.', labels, i, labels.Length - i);
			if (exceptions.Contains(name))
				return string.Join('.', labels, i + 1, labels.Length - i - 1); // the exception's parent
			if (i > 0 && wildcards.Contains(name)) // "*.name" is one label longer than "name"
				return string.Join('.', labels, i - 1, labels.Length - i + 1);
			if (rules.Contains(name))
				return name;
		}
		return labels[^1];
	}

	/// <summary>The organizational domain: the public suffix and one label more; a public suffix itself is its own.</summary>
	public string OrganizationalDomain(string domain)
	{
		var d = Ascii(domain);
		var suffix = PublicSuffix(d);
		if (d.Length <= suffix.Length)
			return d;
		var rest = d[..(d.Length - suffix.Length - 1)];
		var dot = rest.LastIndexOf('.');
		return (dot < 0 ? rest : rest[(dot + 1)..]) + "." + suffix;
	}

	static readonly Lock CacheLock = new();
	static (FileStamp Key, PublicSuffixList List)? cache;

	/// <summary>
	/// /mail/lib/public_suffix_list.dat under the root, parsed once per change of the file (smtpd -L serves many
	/// sessions). A missing or unreadable file: an empty list, so each name's org domain is its last two labels.
	/// </summary>
	public static PublicSuffixList Load()
	{
		var path = Root.Path9(Plan9Path);
		if (Mono.Unix.Native.Syscall.stat(path, out var st) != 0)
			return new PublicSuffixList();
		var key = FileStamp.From(st);
		lock (CacheLock) {
			if (cache is { } c && c.Key == key)
				return c.List;
		}
		PublicSuffixList l;
		try {
			l = Parse(File.ReadAllText(path));
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return new PublicSuffixList();
		}
		lock (CacheLock)
			cache = (key, l);
		return l;
	}
}
