using System.Text;

namespace Upas;

/// <summary>
/// Words of a queue control file (C.id): upas's escapespecial form, so that every word survives a
/// blank-separated line exactly. A byte that is blank, shell-special, a quote, '%', a control byte or
/// not ASCII is written %%XX (two upper-case hex digits), which plan9port's runq and smtp also decode.
/// </summary>
public static class QueueWord
{
	const string Special = " ()<>{};=\\'`^&|\"%";

	static bool NeedsEscape(byte b) => b <= 0x20 || b >= 0x7f || Special.IndexOf((char)b) >= 0;

	/// <summary>The word as written into a control file (pure ASCII, no blank).</summary>
	public static string Escape(string word)
	{
		var bytes = Encoding.UTF8.GetBytes(word);
		var plain = true;
		foreach (var b in bytes)
			if (NeedsEscape(b)) {
				plain = false;
				break;
			}
		if (plain)
			return word;
		var sb = new StringBuilder(bytes.Length * 2);
		foreach (var b in bytes) {
			if (NeedsEscape(b))
				sb.Append("%%").Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
			else
				sb.Append((char)b);
		}
		return sb.ToString();
	}

	/// <summary>Decodes %%XX (either case of hex) back to the byte; anything else is kept; the bytes are read as UTF-8.</summary>
	public static string Unescape(string s)
	{
		if (!s.Contains("%%", StringComparison.Ordinal))
			return s;
		var bytes = new List<byte>(s.Length);
		for (var i = 0; i < s.Length; i++) {
			if (s[i] == '%' && i + 3 < s.Length && s[i + 1] == '%' && char.IsAsciiHexDigit(s[i + 2]) && char.IsAsciiHexDigit(s[i + 3])) {
				bytes.Add(Convert.ToByte(s.Substring(i + 2, 2), 16));
				i += 3;
			} else if (s[i] < 0x80) {
				bytes.Add((byte)s[i]);
			} else {
				bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
			}
		}
		return Encoding.UTF8.GetString(bytes.ToArray());
	}

	/// <summary>A control file's line as written: each word escaped and followed by a blank, then a newline (qer's layout).</summary>
	public static string Line(IEnumerable<string> words)
	{
		var sb = new StringBuilder();
		foreach (var w in words)
			sb.Append(Escape(w)).Append(' ');
		return sb.Append('\n').ToString();
	}

	/// <summary>
	/// The words of a control file, still escaped: split at blanks, tabs and line ends only (a VT or FF is
	/// part of a word); a double-quoted part may hold blanks and its quotes are dropped, as Plan 9's runq.
	/// </summary>
	public static List<string> Split(string s)
	{
		static bool Sep(char c) => c is ' ' or '\t' or '\n' or '\r';
		var words = new List<string>();
		var i = 0;
		while (true) {
			while (i < s.Length && Sep(s[i]))
				i++;
			if (i >= s.Length)
				return words;
			var w = new StringBuilder();
			while (i < s.Length && !Sep(s[i])) {
				if (s[i] == '"') {
					var end = s.IndexOf('"', i + 1);
					if (end < 0)
						end = s.Length;
					w.Append(s, i + 1, end - i - 1);
					i = Math.Min(end + 1, s.Length);
				} else {
					w.Append(s[i++]);
				}
			}
			words.Add(w.ToString());
		}
	}
}
