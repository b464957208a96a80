using System.Text;
using System.Text.RegularExpressions;

namespace Upas.Send;

/// <summary>
/// /mail/lib/rewrite (rewrite(6), mailer.md §2 step 4): lines "pattern type repl1 [repl2]"; the first rule
/// whose pattern (a Plan 9 regular expression, case-insensitive) matches the whole address decides.
/// </summary>
sealed class Rewrite
{
	public enum Kind { Cat, Pipe, Alias, Translate }

	public sealed record Rule(Regex Pattern, Kind Type, string? Repl1, string? Repl2, string Text);

	/// <summary>What an address rewrites to: the rule's type and its two replacements, as pieces.</summary>
	public sealed record Result(Rule Rule, Template? Repl1, Template? Repl2);

	/// <summary>How long one match may take: the file is the administrator's, the address may be anybody's.</summary>
	static readonly TimeSpan MatchLimit = TimeSpan.FromSeconds(1);

	public readonly List<Rule> Rules = [];

	/// <summary>The rules of ROOT/mail/lib/rewrite; null when there is no such file (send routes as built in).</summary>
	public static Rewrite? Load(string sysname, Action<string> log)
	{
		string text;
		try {
			text = File.ReadAllText(Root.Path9("/mail/lib/rewrite"));
		} catch (FileNotFoundException) {
			return null;
		} catch (DirectoryNotFoundException) {
			return null;
		}
		return Parse(text, sysname, log);
	}

	/// <summary>The rules of a rewrite file's text; a line that is no rule is logged and skipped, as Plan 9 does.</summary>
	public static Rewrite Parse(string text, string sysname, Action<string> log)
	{
		var rw = new Rewrite();
		foreach (var line in Lines(text)) {
			var t = Tokens(line, sysname);
			if (t.Count == 0)
				continue;
			if (t.Count < 2) {
				log($"illegal rewrite rule: {line}");
				continue;
			}
			Kind? type = t[1] switch {
				"|" => Kind.Pipe,
				">>" => Kind.Cat,
				"alias" => Kind.Alias,
				"translate" => Kind.Translate,
				_ => null,
			};
			if (type is not { } k) {
				log($"illegal rewrite rule: {line}");
				continue;
			}
			Regex re;
			try {
				re = new Regex("^(?:" + PlanRegex.ToDotNet(t[0]) + ")$",
					RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.NonBacktracking, MatchLimit);
			} catch (ArgumentException e) {
				log($"rewrite: bad pattern {t[0]}: {e.Message}");
				continue;
			}
			rw.Rules.Add(new Rule(re, k, t.Count > 2 ? t[2] : null, t.Count > 3 ? t[3] : null, line));
		}
		return rw;
	}

	/// <summary>The logical lines: a trailing backslash joins the next line; blank lines and # comments dropped.</summary>
	static IEnumerable<string> Lines(string text)
	{
		var cur = new StringBuilder();
		foreach (var raw in text.Replace("\r\n", "\n").Split('\n')) {
			if (raw.EndsWith('\\') && !raw.EndsWith("\\\\", StringComparison.Ordinal)) {
				cur.Append(raw, 0, raw.Length - 1).Append(' ');
				continue;
			}
			cur.Append(raw);
			var l = cur.ToString();
			cur.Clear();
			var trimmed = l.TrimStart(' ', '\t');
			if (trimmed.Length == 0 || trimmed[0] == '#')
				continue;
			yield return l;
		}
		if (cur.Length > 0 && cur.ToString().TrimStart(' ', '\t') is { Length: > 0 } last && last[0] != '#')
			yield return cur.ToString();
	}

	/// <summary>
	/// A line's fields: blank-separated, or a whole field in '…' or "…" (the quotes dropped). In each, \l is the
	/// system name (quoted for a pattern) and \\ a backslash; other escapes are kept for the substitution.
	/// </summary>
	static List<string> Tokens(string line, string sysname)
	{
		var list = new List<string>();
		var i = 0;
		while (true) {
			while (i < line.Length && line[i] is ' ' or '\t')
				i++;
			if (i >= line.Length)
				return list;
			string tok;
			if (line[i] is '\'' or '"') {
				var q = line[i];
				var end = line.IndexOf(q, i + 1);
				if (end < 0)
					end = line.Length;
				tok = line[(i + 1)..end];
				i = Math.Min(end + 1, line.Length);
			} else {
				var start = i;
				while (i < line.Length && line[i] is not (' ' or '\t'))
					i++;
				tok = line[start..i];
			}
			list.Add(Expand(tok, list.Count == 0 ? PlanRegex.Quote(sysname) : sysname));
		}
	}

	static string Expand(string tok, string sys)
	{
		if (!tok.Contains('\\'))
			return tok;
		var sb = new StringBuilder();
		for (var i = 0; i < tok.Length; i++) {
			if (tok[i] != '\\' || i + 1 >= tok.Length) {
				sb.Append(tok[i]);
				continue;
			}
			var c = tok[++i];
			if (c == 'l')
				sb.Append(sys);
			else if (c == '\\')
				sb.Append('\\');
			else
				sb.Append('\\').Append(c);
		}
		return sb.ToString();
	}

	/// <summary>The first rule matching all of addr, its replacements filled in; null when none matches.</summary>
	public Result? Apply(string addr, string sender, bool bulk)
	{
		foreach (var r in Rules) {
			Match m;
			try {
				m = r.Pattern.Match(addr);
			} catch (RegexMatchTimeoutException) {
				continue; // a pattern too slow for this address is as one that does not match
			}
			if (!m.Success)
				continue;
			return new Result(r, Template.Fill(r.Repl1, m, sender, bulk), Template.Fill(r.Repl2, m, sender, bulk));
		}
		return null;
	}
}

/// <summary>
/// A replacement string with its escapes filled in, kept as pieces: the rule's own text, and what came from the
/// address or the sender (\1…, &amp;, \s), which the shell must never read as syntax.
/// </summary>
sealed class Template
{
	public readonly record struct Piece(string Text, bool FromAddress);

	public readonly List<Piece> Pieces = [];

	public string Plain => string.Concat(Pieces.Select(p => p.Text));

	public static Template? Fill(string? source, Match m, string sender, bool bulk)
	{
		if (source is null)
			return null;
		var t = new Template();
		var lit = new StringBuilder();
		void Flush()
		{
			if (lit.Length > 0)
				t.Pieces.Add(new Piece(lit.ToString(), false));
			lit.Clear();
		}
		void Addr(string s)
		{
			Flush();
			t.Pieces.Add(new Piece(s, true));
		}
		for (var i = 0; i < source.Length; i++) {
			var c = source[i];
			if (c == '\\') {
				if (i + 1 >= source.Length)
					break;
				var e = source[++i];
				if (e is >= '0' and <= '9') {
					var g = m.Groups[e - '0'];
					Addr(g.Success ? g.Value : "");
				} else if (e == 's') {
					Addr(sender);
				} else if (e == 'p') {
					lit.Append(bulk ? "bulk" : "normal");
				} else {
					lit.Append(e);
				}
			} else if (c == '&') {
				Addr(m.Value);
			} else if (c == '$') {
				var j = i + 1;
				while (j < source.Length && j - i <= 127 && IdChar(source[j]))
					j++;
				lit.Append(Variable(source[(i + 1)..j]));
				i = j - 1;
			} else {
				lit.Append(c);
			}
		}
		Flush();
		return t;
	}

	/// <summary>A character of an rc variable name.</summary>
	static bool IdChar(char c) => c > ' ' && "!\"#$%&'()+,-./:;<=>?@[\\]^`{|}~".IndexOf(c) < 0;

	/// <summary>$name from send's environment; $PLAN9 is always the tree send works on.</summary>
	static string Variable(string name) =>
		name == "PLAN9" ? Root.Dir : Environment.GetEnvironmentVariable(name) ?? "";

	/// <summary>
	/// The text for sh -c: the rule's text as written, each piece from an address quoted so that it stays one
	/// inert piece of a word whatever the rule's quotes around it; null (with why) when that cannot be promised:
	/// a control byte in a piece, a piece right after a backslash, or quotes the rule leaves open.
	/// </summary>
	public string? Shell(out string why)
	{
		var sb = new StringBuilder();
		var q = '\0';       // the quote the rule's text is in: ', " or none
		var escaped = false; // the rule's last character was a backslash escaping the next
		foreach (var p in Pieces) {
			if (p.FromAddress) {
				if (p.Text.Any(c => c < 0x20 || c == 0x7f)) {
					why = "control character in address";
					return null;
				}
				if (escaped) {
					why = "rewrite rule escapes an address";
					return null;
				}
				var inner = p.Text.Replace("'", "'\\''");
				sb.Append(q switch {
					'\'' => inner,
					'"' => "\"'" + inner + "'\"",
					_ => "'" + inner + "'",
				});
				continue;
			}
			foreach (var c in p.Text) {
				sb.Append(c);
				if (escaped) {
					escaped = false;
				} else if (q == '\'') {
					if (c == '\'')
						q = '\0';
				} else if (c == '\\') {
					escaped = true;
				} else if (q == '"') {
					if (c == '"')
						q = '\0';
				} else if (c is '\'' or '"') {
					q = c;
				}
			}
		}
		if (q != '\0' || escaped) {
			why = "rewrite rule with unbalanced quotes";
			return null;
		}
		why = "";
		return sb.ToString();
	}
}

/// <summary>Plan 9 regular expressions (regexp(6)) as .NET ones: the same meaning, nothing more.</summary>
static class PlanRegex
{
	/// <summary>
	/// Plan 9's syntax: . * + ? [] [^] | () ^ $ and \c for a literal c. Braces are literal (no counted repeats),
	/// \d \w \b and the like are the letters themselves, and (? is refused.
	/// </summary>
	public static string ToDotNet(string re)
	{
		var sb = new StringBuilder();
		for (var i = 0; i < re.Length; i++) {
			var c = re[i];
			switch (c) {
			case '\\':
				if (i + 1 >= re.Length)
					throw new ArgumentException("trailing backslash");
				Literal(sb, re[++i]);
				break;
			case '{' or '}' or '#' or ' ':
				Literal(sb, c);
				break;
			case '(':
				if (i + 1 < re.Length && re[i + 1] == '?')
					throw new ArgumentException("(? is not Plan 9 syntax");
				sb.Append(c);
				break;
			case '[':
				i = Class(re, i, sb);
				break;
			default:
				sb.Append(c);
				break;
			}
		}
		return sb.ToString();
	}

	static void Literal(StringBuilder sb, char c)
	{
		if (char.IsAsciiLetterOrDigit(c) || c == '_')
			sb.Append(c);
		else if (c == '\n')
			sb.Append(@"\n");
		else
			sb.Append('\\').Append(c);
	}

	/// <summary>A character class from re[i] = '['; where it ends.</summary>
	static int Class(string re, int i, StringBuilder sb)
	{
		sb.Append('[');
		i++;
		if (i < re.Length && re[i] == '^') {
			sb.Append('^');
			i++;
		}
		var first = true;
		for (; i < re.Length; i++) {
			var c = re[i];
			if (c == ']' && !first) {
				sb.Append(']');
				return i;
			}
			first = false;
			var quoted = c == '\\' && i + 1 < re.Length;
			if (quoted)
				c = re[++i];
			if (c == '-' && !quoted)
				sb.Append('-');
			else if (char.IsAsciiLetterOrDigit(c))
				sb.Append(c);
			else
				sb.Append('\\').Append(c);
		}
		throw new ArgumentException("missing ]");
	}

	/// <summary>A literal text (the system name for \l) in Plan 9's syntax.</summary>
	public static string Quote(string s)
	{
		var sb = new StringBuilder();
		foreach (var c in s) {
			if (!char.IsAsciiLetterOrDigit(c))
				sb.Append('\\');
			sb.Append(c);
		}
		return sb.ToString();
	}
}
