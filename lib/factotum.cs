using System.Text;

namespace Upas;

/// <summary>A factotum(4) key: public attributes, and secret ones (written with a leading '!').</summary>
public sealed class FactotumKey
{
	public Dictionary<string, string> Attrs { get; } = new(StringComparer.Ordinal);
	public Dictionary<string, string> Secrets { get; } = new(StringComparer.Ordinal);

	public string? this[string name] => Attrs.TryGetValue(name, out var v) ? v : Secrets.GetValueOrDefault(name);

	/// <summary>True when every attr=value of the query holds (a query value "*" or a missing value matches any).</summary>
	public bool Matches(IEnumerable<(string Name, string? Value)> query) =>
		query.All(q => this[q.Name] is { } v && (q.Value is null or "*" || v == q.Value));
}

/// <summary>The text syntax of factotum keys: "key proto=pass service=smtp user=glenda !password='s3 cret'".</summary>
public static class Factotum
{
	/// <summary>Parses a key file, one key a line; blank lines and # comments are skipped, bad lines ignored.</summary>
	public static List<FactotumKey> ParseKeys(string text)
	{
		var keys = new List<FactotumKey>();
		foreach (var raw in text.Split('\n')) {
			var toks = Tokenize(raw.TrimEnd('\r'));
			if (toks is null || toks.Count == 0 || toks[0] != "key")
				continue;
			var k = new FactotumKey();
			foreach (var t in toks.Skip(1)) {
				var eq = t.IndexOf('=');
				var name = eq < 0 ? t : t[..eq];
				var value = eq < 0 ? "" : t[(eq + 1)..];
				if (name.StartsWith('!'))
					k.Secrets[name[1..]] = value;
				else
					k.Attrs[name] = value;
			}
			keys.Add(k);
		}
		return keys;
	}

	/// <summary>rc-style words: blanks separate, '' quotes (a doubled quote is a quote), # starts a comment. Null when a quote is open.</summary>
	public static List<string>? Tokenize(string line)
	{
		var words = new List<string>();
		var w = new StringBuilder();
		var inWord = false;
		for (var i = 0; i < line.Length; i++) {
			var c = line[i];
			if (c == '\'') {
				inWord = true;
				var closed = false;
				for (i++; i < line.Length; i++) {
					if (line[i] == '\'') {
						if (i + 1 < line.Length && line[i + 1] == '\'') {
							w.Append('\'');
							i++;
							continue;
						}
						closed = true;
						break;
					}
					w.Append(line[i]);
				}
				if (!closed)
					return null;
				continue;
			}
			if (c is ' ' or '\t' || (c == '#' && !inWord)) {
				if (inWord)
					words.Add(w.ToString());
				w.Clear();
				inWord = false;
				if (c == '#')
					break;
				continue;
			}
			w.Append(c);
			inWord = true;
		}
		if (inWord)
			words.Add(w.ToString());
		return words;
	}

	/// <summary>Quotes a value as factotum prints it.</summary>
	public static string Quote(string s) =>
		s.Length > 0 && s.All(c => c > ' ' && c != '\'' && c != '=' && c != '#') ? s : "'" + s.Replace("'", "''") + "'";
}
