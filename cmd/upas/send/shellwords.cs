using System.Text;

namespace Upas.Send;

/// <summary>
/// The words of an sh command line that is only words: blanks between them, '…' quoted, "…" without
/// $ ` or \ in it, and plain characters outside quotes. Anything else (variables, redirections, globs,
/// escapes, several commands) is not simple: null, and the line goes to sh as written.
/// </summary>
static class ShellWords
{
	/// <summary>Characters that mean nothing to sh outside quotes.</summary>
	static bool Plain(char c) => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ',' or ':' or '@' or '%' or '!';

	public static List<string>? Simple(string line)
	{
		var words = new List<string>();
		var w = new StringBuilder();
		var inWord = false;
		for (var i = 0; i < line.Length; i++) {
			var c = line[i];
			if (c is ' ' or '\t') {
				if (inWord)
					words.Add(w.ToString());
				w.Clear();
				inWord = false;
				continue;
			}
			inWord = true;
			if (c == '\'') {
				var end = line.IndexOf('\'', i + 1);
				if (end < 0)
					return null;
				w.Append(line, i + 1, end - i - 1);
				i = end;
			} else if (c == '"') {
				var end = line.IndexOf('"', i + 1);
				if (end < 0 || line.AsSpan(i + 1, end - i - 1).IndexOfAny("$`\\") >= 0)
					return null;
				w.Append(line, i + 1, end - i - 1);
				i = end;
			} else if (Plain(c) && !(w.Length == 0 && c == '%')) {
				w.Append(c);
			} else {
				return null;
			}
		}
		if (inWord)
			words.Add(w.ToString());
		return words;
	}
}
