using System.Text;

namespace Upas.Alias;

/// <summary>
/// Plan 9's names-file text (libString's s_rdinstack and s_parse): blanks and empty lines before a line are
/// skipped, a backslash before a newline joins the next line on, CR is dropped, a line starting with '#' is a
/// comment, "#include file" reads that file in its place; a line's words are split at blanks and tabs, and a
/// word starting with a single or double quote runs to the matching quote.
/// </summary>
static class NamesFile
{
	/// <summary>Nested #include files at most (Plan 9 stops at 32 as well).</summary>
	public const int MaxInclude = 32;

	/// <summary>
	/// The lines of the file at path (with its includes), each as its words. A missing file has no lines; any
	/// other error reading it is reported through warn and the file is skipped.
	/// </summary>
	public static IEnumerable<List<string>> Lines(string path, Func<string, string> resolve, Action<string> warn, int depth = 0)
	{
		string text;
		try {
			text = FileText.Read(path);
		} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
			yield break;
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			warn($"{path}: {e.Message}");
			yield break;
		}
		foreach (var line in RawLines(text)) {
			if (line.StartsWith("#include", StringComparison.Ordinal) && line.Length > 8 && line[8] is ' ' or '\t') {
				if (depth + 1 >= MaxInclude) {
					warn($"{path}: includes too deep");
					continue;
				}
				foreach (var l in Lines(resolve(line[8..].Trim(' ', '\t')), resolve, warn, depth + 1))
					yield return l;
				continue;
			}
			if (line.StartsWith('#'))
				continue;
			yield return Words(line);
		}
	}

	/// <summary>The logical lines of text: leading blanks gone, continuations joined, never empty.</summary>
	public static IEnumerable<string> RawLines(string text)
	{
		var i = 0;
		var sb = new StringBuilder();
		while (true) {
			while (i < text.Length && text[i] is ' ' or '\t' or '\n' or '\r')
				i++;
			if (i >= text.Length)
				yield break;
			sb.Clear();
			for (; i < text.Length; i++) {
				var c = text[i];
				if (c == '\\') {
					if (i + 1 < text.Length && text[i + 1] == '\n') {
						i++; // a continuation: both go, the next line's blanks stay
						continue;
					}
					sb.Append(c);
					if (i + 1 < text.Length)
						sb.Append(text[++i]);
				} else if (c == '\r') {
				} else if (c == '\n') {
					if (sb.Length > 0)
						break;
				} else {
					sb.Append(c);
				}
			}
			yield return sb.ToString();
		}
	}

	/// <summary>A line's words: blank-separated, or quoted ('x y' or "x y", the quotes dropped, no escapes).</summary>
	public static List<string> Words(string line)
	{
		static bool White(char c) => c is ' ' or '\t' or '\n';
		var words = new List<string>();
		var i = 0;
		while (i < line.Length && White(line[i]))
			i++;
		while (i < line.Length) {
			int start, end;
			if (line[i] is '\'' or '"') {
				var q = line[i];
				start = i + 1;
				end = line.IndexOf(q, start);
				if (end < 0)
					end = line.Length;
				i = Math.Min(end + 1, line.Length);
			} else {
				start = i;
				while (i < line.Length && !White(line[i]))
					i++;
				end = i;
			}
			words.Add(line[start..end]);
			while (i < line.Length && White(line[i]))
				i++;
		}
		return words;
	}
}
