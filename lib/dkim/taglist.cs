namespace Upas.Dkim;

/// <summary>
/// An RFC 6376 3.2 tag=value list ("v=1; a=rsa-sha256; ..."), parsed strictly: folding white space around
/// names, "=" and values is dropped (inside a value it stays), a repeated tag or a malformed one is an
/// error, a final ";" is allowed. Names are case-sensitive.
/// </summary>
sealed class TagList
{
	readonly List<KeyValuePair<string, string>> tags = new();

	/// <summary>The tags in order (the key record's v= must be first).</summary>
	public IReadOnlyList<KeyValuePair<string, string>> Tags => tags;

	public string? this[string name] => tags.FirstOrDefault(t => t.Key == name).Value;

	/// <summary>The list, or null with why (one printable line).</summary>
	public static TagList? Parse(string text, out string why)
	{
		var l = new TagList();
		var seen = new HashSet<string>(StringComparer.Ordinal);
		var specs = text.Split(';');
		for (var k = 0; k < specs.Length; k++) {
			var spec = specs[k].Trim(Fws);
			if (spec.Length == 0) {
				if (k == specs.Length - 1)
					break;	// the optional final ";"
				why = "empty tag";
				return null;
			}
			var eq = spec.IndexOf('=');
			if (eq <= 0) {
				why = "tag without \"=\"";
				return null;
			}
			var name = spec[..eq].TrimEnd(Fws);
			if (!IsName(name)) {
				why = "bad tag name";
				return null;
			}
			var value = spec[(eq + 1)..].TrimStart(Fws);
			foreach (var c in value) {
				if (!(c is >= '!' and <= '~' || Fws.Contains(c))) {
					why = $"bad character in tag {name}=";
					return null;
				}
			}
			if (!seen.Add(name)) {
				why = $"duplicate tag {name}=";
				return null;
			}
			l.tags.Add(new(name, value));
		}
		why = "";
		return l;
	}

	static readonly char[] Fws = [' ', '\t', '\r', '\n'];

	static bool IsName(string s) =>
		s.Length > 0 && char.IsAsciiLetter(s[0]) && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

	/// <summary>A value with all folding white space removed (base64 of b= and bh=, the h= and q= lists).</summary>
	public static string Squeeze(string v) => string.Concat(v.Where(c => !Fws.Contains(c)));
}
