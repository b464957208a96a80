using System.Text;

namespace Upas.Dmarc;

/// <summary>
/// An Authentication-Results field (RFC 8601) being built: our authserv-id, then one resinfo per check
/// ("spf=pass smtp.mailfrom=a@b"), each on a line of its own, folded; only printable ASCII ever goes out.
/// </summary>
public sealed class AuthResults(string authservId)
{
	public const string FieldName = "Authentication-Results";
	const int Width = 78;

	readonly List<string> infos = [];

	/// <summary>method=result, a comment (any text: made safe), then ptype.property=value pairs (values made safe).</summary>
	public AuthResults Add(string method, string result, string? comment, params (string Property, string Value)[] props)
	{
		var sb = new StringBuilder($"{method}={result}");
		if (Comment(comment) is { Length: > 0 } c)
			sb.Append(" (").Append(c).Append(')');
		foreach (var (p, v) in props)
			sb.Append(' ').Append(p).Append('=').Append(Value(v));
		infos.Add(sb.ToString());
		return this;
	}

	public int Count => infos.Count;

	/// <summary>The whole field, each line ending "\n": "none" when nothing was added (RFC 8601 §2.2).</summary>
	public string Field()
	{
		var sb = new StringBuilder($"{FieldName}: {Value(authservId)};");
		if (infos.Count == 0)
			return sb.Append(" none\n").ToString();
		for (var i = 0; i < infos.Count; i++) {
			sb.Append("\n\t");
			// fold a long resinfo before a word, never inside one
			var col = 8;
			var first = true;
			foreach (var w in infos[i].Split(' ')) {
				if (!first) {
					if (col + 1 + w.Length > Width) {
						sb.Append("\n\t  ");
						col = 10;
					} else {
						sb.Append(' ');
						col++;
					}
				}
				sb.Append(w);
				col += w.Length;
				first = false;
			}
			if (i < infos.Count - 1)
				sb.Append(';');
		}
		return sb.Append('\n').ToString();
	}

	const string TSpecials = "()<>@,;:\\\"/[]?=";
	const string AText = "!#$%&'*+-/=?^_`{|}~.";

	/// <summary>
	/// A property value or authserv-id as written: a token, an address local@domain, or else a quoted-string in which
	/// anything but printable ASCII is '?' (a peer's bytes never reach the header raw).
	/// </summary>
	public static string Value(string v)
	{
		if (IsToken(v) || IsAddress(v))
			return v;
		var sb = new StringBuilder("\"");
		foreach (var c in v.Length > 256 ? v[..256] : v) {
			if (c is '"' or '\\')
				sb.Append('\\').Append(c);
			else
				sb.Append(c is >= ' ' and <= '~' ? c : '?');
		}
		return sb.Append('"').ToString();
	}

	static bool IsToken(string v) => v.Length is > 0 and <= 256 && v.All(c => c is > ' ' and <= '~' && !TSpecials.Contains(c));

	static bool IsAddress(string v)
	{
		var at = v.LastIndexOf('@');
		if (at < 0 || v.Length > 256 || at == v.Length - 1)
			return false;
		var local = v[..at];
		var domain = v[(at + 1)..];
		return local.All(c => char.IsAsciiLetterOrDigit(c) || AText.Contains(c)) && !local.StartsWith('.') && !local.EndsWith('.') && !local.Contains("..")
			&& domain.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-');
	}

	/// <summary>A comment's text: printable ASCII without parentheses or backslash, at most 100 characters.</summary>
	static string Comment(string? s)
	{
		if (s is null)
			return "";
		var sb = new StringBuilder();
		foreach (var c in s) {
			if (sb.Length >= 100)
				break;
			sb.Append(c switch {
				'(' => '[',
				')' => ']',
				'\\' => '/',
				>= ' ' and <= '~' => c,
				_ => '?',
			});
		}
		return sb.ToString().Trim();
	}

	/// <summary>
	/// Whether a header field (its whole text, name and colon included, continuation lines too) is an
	/// Authentication-Results field whose authserv-id is dom, compared without case; CFWS and comments before the
	/// id are skipped (RFC 8601 §5: such a field from outside is a forgery and is removed).
	/// </summary>
	public static bool ClaimsDomain(string field, string dom)
	{
		var colon = field.IndexOf(':');
		if (colon < 0 || !field.AsSpan(0, colon).TrimEnd(" \t").Equals(FieldName, StringComparison.OrdinalIgnoreCase))
			return false;
		var id = AuthservId(field, colon + 1);
		return id is not null && id.TrimEnd('.').Equals(dom.TrimEnd('.'), StringComparison.OrdinalIgnoreCase);
	}

	/// <summary>The authserv-id of a field value starting at i: a token or a quoted-string after CFWS; null when there is none.</summary>
	public static string? AuthservId(string s, int i)
	{
		i = SkipCfws(s, i);
		if (i >= s.Length)
			return null;
		if (s[i] == '"') {
			var sb = new StringBuilder();
			for (i++; i < s.Length && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < s.Length)
					i++;
				if (s[i] is not ('\r' or '\n'))
					sb.Append(s[i]);
			}
			return i < s.Length ? sb.ToString() : null;
		}
		var start = i;
		while (i < s.Length && s[i] > ' ' && s[i] != 0x7f && !TSpecials.Contains(s[i]))
			i++;
		return i > start ? s[start..i] : null;
	}

	/// <summary>Skips white space, line folds and (nested, quoted-pair) comments.</summary>
	static int SkipCfws(string s, int i)
	{
		while (i < s.Length) {
			if (s[i] is ' ' or '\t' or '\r' or '\n') {
				i++;
				continue;
			}
			if (s[i] != '(')
				break;
			var depth = 0;
			for (; i < s.Length; i++) {
				if (s[i] == '\\') {
					i++;
					continue;
				}
				if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
		}
		return i;
	}
}
