using System.Text;

namespace Upas;

/// <summary>The tokeniser of /mail/lib/smtpd.conf and /mail/lib/blocked (Bell Labs smtpd(6)).</summary>
public static class ConfTokens
{
	/// <summary>
	/// Splits one line: cut at the first unescaped '#', '\' makes the next character literal, tokens are
	/// separated by runs of spaces, tabs or commas, and everything is lower-cased.
	/// </summary>
	public static List<string> Split(string line)
	{
		var toks = new List<string>();
		var cur = new StringBuilder();
		var have = false;
		for (var i = 0; i < line.Length; i++) {
			var c = line[i];
			if (c == '\\' && i + 1 < line.Length) {
				cur.Append(char.ToLowerInvariant(line[++i]));
				have = true;
				continue;
			}
			if (c == '#')
				break;
			if (c is ' ' or '\t' or ',' or '\r' or '\n') {
				if (have)
					toks.Add(cur.ToString());
				cur.Clear();
				have = false;
				continue;
			}
			cur.Append(char.ToLowerInvariant(c));
			have = true;
		}
		if (have)
			toks.Add(cur.ToString());
		return toks;
	}
}
