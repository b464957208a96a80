using System.Globalization;
using System.Net;
using System.Text;

namespace Upas.Spf;

/// <summary>What the macro letters stand for (RFC 7208 §7.2), for one step of a check.</summary>
public sealed record SpfMacroValues(
	string Sender,          // s
	string Local,           // l
	string SenderDomain,    // o
	string Domain,          // d: the domain being checked now
	IPAddress Ip,           // i, c, v (IPv4-mapped already made IPv4)
	string Helo,            // h
	string Receiver,        // r
	string? Ptr,            // p: the validated name, "unknown", or null when not computed
	long Now)               // t
{
	/// <summary>"192.0.2.1", or the IPv6 address as 32 dot-separated nibbles (upper case, as pyspf and the RFC 7208 test suite).</summary>
	public string IpDotted()
	{
		if (Ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
			return Ip.ToString();
		var sb = new StringBuilder(63);
		foreach (var b in Ip.GetAddressBytes()) {
			if (sb.Length > 0)
				sb.Append('.');
			sb.Append("0123456789ABCDEF"[b >> 4]).Append('.').Append("0123456789ABCDEF"[b & 15]);
		}
		return sb.ToString();
	}
}

/// <summary>
/// RFC 7208 §7 macro strings: checking their syntax (a pure function of the text) and expanding them.
/// A domain-spec may use the letters s l o d i p h v; explanation text also c r t.
/// </summary>
public static class SpfMacro
{
	const string DomainLetters = "slodiphv";
	const string ExpLetters = "slodiphvcrt";
	const string Delimiters = ".-+,/_=";

	/// <summary>Whether s is a macro-string (no characters outside %x21-7E; each '%' starts a valid macro-expand).</summary>
	public static bool Valid(string s, bool explanation) => Scan(s, explanation ? ExpLetters : DomainLetters, explanation, null, null);

	/// <summary>Whether s uses %{p} (so that the caller computes the validated name first).</summary>
	public static bool UsesPtr(string s) => s.Contains("%{p", StringComparison.OrdinalIgnoreCase);

	/// <summary>Whether s ends with a macro-expand ("%{…}", "%%", "%_" or "%-"), assuming Valid(s).</summary>
	public static bool EndsWithMacro(string s)
	{
		var last = false;
		for (var i = 0; i < s.Length; i++) {
			last = s[i] == '%' && i + 1 < s.Length;
			if (!last)
				continue;
			if (s[i + 1] == '{') {
				i = s.IndexOf('}', i);
				if (i < 0)
					return false;
			} else {
				i++;
			}
		}
		return last;
	}

	/// <summary>The expansion of a valid macro string; null if s is not valid. Explanation text keeps spaces and final dots.</summary>
	public static string? Expand(string s, SpfMacroValues v, bool explanation)
	{
		var sb = new StringBuilder(s.Length + 32);
		return Scan(s, explanation ? ExpLetters : DomainLetters, explanation, v, sb) ? sb.ToString() : null;
	}

	/// <summary>Checks s and, given values and a builder, expands it.</summary>
	static bool Scan(string s, string letters, bool spaces, SpfMacroValues? v, StringBuilder? sb)
	{
		for (var i = 0; i < s.Length; i++) {
			var c = s[i];
			if (c == ' ' && spaces) {
				sb?.Append(c);
				continue;
			}
			if (c < 0x21 || c > 0x7e)
				return false;
			if (c != '%') {
				sb?.Append(c);
				continue;
			}
			if (++i >= s.Length)
				return false;
			switch (s[i]) {
			case '%':
				sb?.Append('%');
				continue;
			case '_':
				sb?.Append(' ');
				continue;
			case '-':
				sb?.Append("%20");
				continue;
			case '{':
				break;
			default:
				return false;
			}
			var end = s.IndexOf('}', i);
			if (end < 0 || !Macro(s.AsSpan(i + 1, end - i - 1), letters, v, sb))
				return false;
			i = end;
		}
		return true;
	}

	/// <summary>One "%{…}" body: letter, digits, optional 'r', delimiters.</summary>
	static bool Macro(ReadOnlySpan<char> m, string letters, SpfMacroValues? v, StringBuilder? sb)
	{
		if (m.Length == 0 || !letters.Contains(char.ToLowerInvariant(m[0])))
			return false;
		var letter = m[0];
		var j = 1;
		var digits = 0;
		var count = 0;
		while (j < m.Length && char.IsAsciiDigit(m[j])) {
			count = Math.Min(count * 10 + (m[j] - '0'), 1000);	// more parts than any name has: all of them
			digits++;
			j++;
		}
		if (digits > 0 && count == 0)
			return false;	// "a DIGIT, if given, MUST be nonzero" (§7.3)
		var reverse = false;
		if (j < m.Length && m[j] is 'r' or 'R') {
			reverse = true;
			j++;
		}
		var delims = m[j..];
		foreach (var d in delims) {
			if (!Delimiters.Contains(d))
				return false;
		}
		if (v is null || sb is null)
			return true;
		var value = Value(char.ToLowerInvariant(letter), v);
		if (digits > 0 || reverse || delims.Length > 0)
			value = Transform(value, count, reverse, delims.Length > 0 ? delims.ToString() : ".");
		if (char.IsAsciiLetterUpper(letter))
			value = UrlEscape(value);
		sb.Append(value);
		return true;
	}

	static string Value(char letter, SpfMacroValues v) => letter switch {
		's' => v.Sender,
		'l' => v.Local,
		'o' => v.SenderDomain,
		'd' => v.Domain,
		'i' => v.IpDotted(),
		'p' => v.Ptr ?? "unknown",
		'h' => v.Helo,
		'v' => v.Ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "ip6" : "in-addr",
		'c' => v.Ip.ToString(),
		'r' => v.Receiver.Length > 0 ? v.Receiver : "unknown",
		't' => v.Now.ToString(CultureInfo.InvariantCulture),
		_ => "",
	};

	/// <summary>Split on the delimiters, reverse if asked, keep the rightmost count parts (0: all), join with dots.</summary>
	internal static string Transform(string value, int count, bool reverse, string delims)
	{
		var parts = value.Split(delims.ToCharArray());
		if (reverse)
			Array.Reverse(parts);
		if (count > 0 && count < parts.Length)
			parts = parts[^count..];
		return string.Join('.', parts);
	}

	/// <summary>RFC 3986 percent-encoding of everything but unreserved characters (§7.3, upper-case macro letters).</summary>
	internal static string UrlEscape(string s)
	{
		var sb = new StringBuilder(s.Length * 3);
		foreach (var b in Encoding.UTF8.GetBytes(s)) {
			if (char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'.' or (byte)'_' or (byte)'~')
				sb.Append((char)b);
			else
				sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
		}
		return sb.ToString();
	}
}
