using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Upas.Spf;

/// <summary>The mechanisms of RFC 7208 §5.</summary>
public enum SpfMechanism { All, Include, A, Mx, Ptr, Ip4, Ip6, Exists }

/// <summary>
/// One directive: qualifier ('+' '-' '~' '?'), mechanism, its domain-spec (unexpanded; null = the current
/// domain), its network (ip4/ip6) and the CIDR lengths (a, mx: both; ip4: Cidr4; ip6: Cidr6). Text is the term
/// as written.
/// </summary>
public sealed record SpfDirective(char Qualifier, SpfMechanism Mechanism, string? DomainSpec, IPAddress? Network, int Cidr4, int Cidr6, string Text)
{
	/// <summary>Whether evaluating it counts against the limit of 10 DNS-querying terms (§4.6.4).</summary>
	public bool QueriesDns => Mechanism is SpfMechanism.Include or SpfMechanism.A or SpfMechanism.Mx or SpfMechanism.Ptr or SpfMechanism.Exists;

	public SpfResult Result => Qualifier switch {
		'-' => SpfResult.Fail,
		'~' => SpfResult.SoftFail,
		'?' => SpfResult.Neutral,
		_ => SpfResult.Pass,
	};
}

/// <summary>A parsed SPF record: its directives in order, redirect= and exp= (unexpanded domain-specs).</summary>
public sealed record SpfRecord(IReadOnlyList<SpfDirective> Directives, string? Redirect, string? Explanation);

/// <summary>Record selection (§4.5) and the record grammar (§4.6, §5, §6, §7.1, §12), as pure functions.</summary>
public static class SpfParser
{
	/// <summary>Whether a TXT string is an SPF record: "v=spf1" (any case) alone or followed by a space.</summary>
	public static bool IsSpf(string txt) =>
		txt.StartsWith("v=spf1", StringComparison.OrdinalIgnoreCase) && (txt.Length == 6 || txt[6] == ' ');

	/// <summary>The record, or null with a one-line reason (the term is in it, possibly unprintable: escape before logging).</summary>
	public static SpfRecord? Parse(string txt, out string? error)
	{
		error = null;
		if (!IsSpf(txt)) {
			error = "not an SPF record";
			return null;
		}
		var directives = new List<SpfDirective>();
		string? redirect = null, exp = null;
		foreach (var term in txt[6..].Split(' ', StringSplitOptions.RemoveEmptyEntries)) {
			if (ModifierName(term) is { } name) {
				var value = term[(name.Length + 1)..];
				if (name.Equals("redirect", StringComparison.OrdinalIgnoreCase) || name.Equals("exp", StringComparison.OrdinalIgnoreCase)) {
					ref var slot = ref name.Length == 3 ? ref exp : ref redirect;
					if (slot is not null) {
						error = $"{name.ToLowerInvariant()}= given twice";
						return null;
					}
					if (!DomainSpec(value)) {
						error = $"bad domain in {term}";
						return null;
					}
					slot = value;
				} else if (!SpfMacro.Valid(value, false)) {
					error = $"bad macro in {term}";	// unknown modifiers are ignored, but must be well formed
					return null;
				}
				continue;
			}
			if (Directive(term) is not { } d) {
				error = $"bad term {term}";
				return null;
			}
			directives.Add(d);
		}
		return new SpfRecord(directives, redirect, exp);
	}

	/// <summary>name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) followed by "=", or null.</summary>
	static string? ModifierName(string term)
	{
		if (term.Length == 0 || !char.IsAsciiLetter(term[0]))
			return null;
		for (var i = 1; i < term.Length; i++) {
			var c = term[i];
			if (c == '=')
				return term[..i];
			if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.'))
				return null;
		}
		return null;
	}

	/// <summary>A directive, or null if the term is not one.</summary>
	public static SpfDirective? Directive(string term)
	{
		var q = '+';
		var rest = term;
		if (rest.Length > 0 && rest[0] is '+' or '-' or '~' or '?') {
			q = rest[0];
			rest = rest[1..];
		}
		var nameEnd = rest.IndexOfAny([':', '/']);
		var name = (nameEnd < 0 ? rest : rest[..nameEnd]).ToLowerInvariant();
		var arg = nameEnd < 0 ? "" : rest[nameEnd..];
		switch (name) {
		case "all":
			return arg.Length == 0 ? new(q, SpfMechanism.All, null, null, 32, 128, term) : null;
		case "include":
		case "exists":
			return arg.Length > 1 && arg[0] == ':' && DomainSpec(arg[1..])
				? new(q, name == "include" ? SpfMechanism.Include : SpfMechanism.Exists, arg[1..], null, 32, 128, term)
				: null;
		case "ptr":
			if (arg.Length == 0)
				return new(q, SpfMechanism.Ptr, null, null, 32, 128, term);
			return arg.Length > 1 && arg[0] == ':' && DomainSpec(arg[1..]) ? new(q, SpfMechanism.Ptr, arg[1..], null, 32, 128, term) : null;
		case "a":
		case "mx": {
			var kind = name == "a" ? SpfMechanism.A : SpfMechanism.Mx;
			var cidr6 = 128;
			var cidr4 = 32;
			if (TrailingCidr(ref arg, "//", 128) is { } c6) {
				if (c6 < 0)
					return null;
				cidr6 = c6;
			}
			if (TrailingCidr(ref arg, "/", 32) is { } c4) {
				if (c4 < 0)
					return null;
				cidr4 = c4;
			}
			if (arg.Length == 0)
				return new(q, kind, null, null, cidr4, cidr6, term);
			return arg.Length > 1 && arg[0] == ':' && DomainSpec(arg[1..]) ? new(q, kind, arg[1..], null, cidr4, cidr6, term) : null;
		}
		case "ip4":
		case "ip6": {
			var v6 = name == "ip6";
			if (arg.Length < 2 || arg[0] != ':')
				return null;
			arg = arg[1..];
			var max = v6 ? 128 : 32;
			var len = max;
			if (TrailingCidr(ref arg, "/", max) is { } c) {
				if (c < 0)
					return null;
				len = c;
			}
			var net = v6 ? Ip6(arg) : Ip4(arg);
			return net is null ? null : new(q, v6 ? SpfMechanism.Ip6 : SpfMechanism.Ip4, null, net, v6 ? 32 : len, v6 ? len : 128, term);
		}
		default:
			return null;
		}
	}

	/// <summary>
	/// Takes a final prefix + ("0" / %x31-39 *DIGIT) off s: its value, -1 when it is over max (a syntax error),
	/// null when s does not end so (a leading zero is no length: the text stays and fails elsewhere).
	/// </summary>
	static int? TrailingCidr(ref string s, string prefix, int max)
	{
		var i = s.Length;
		while (i > 0 && char.IsAsciiDigit(s[i - 1]))
			i--;
		if (i == s.Length || i < prefix.Length || string.CompareOrdinal(s, i - prefix.Length, prefix, 0, prefix.Length) != 0)
			return null;
		if (prefix == "/" && i >= 2 && s[i - 2] == '/')
			return null;	// "//n" is the IPv6 length of a dual-cidr, not an IPv4 one
		var digits = s[i..];
		if (digits.Length > 1 && digits[0] == '0')
			return null;
		s = s[..(i - prefix.Length)];
		return digits.Length <= 3 && int.Parse(digits, CultureInfo.InvariantCulture) is var n && n <= max ? n : -1;
	}

	/// <summary>ip4-network: four qnums without leading zeros.</summary>
	static IPAddress? Ip4(string s)
	{
		var parts = s.Split('.');
		if (parts.Length != 4)
			return null;
		var b = new byte[4];
		for (var i = 0; i < 4; i++) {
			var p = parts[i];
			if (p.Length is 0 or > 3 || (p.Length > 1 && p[0] == '0') || !p.All(char.IsAsciiDigit))
				return null;
			var n = int.Parse(p, CultureInfo.InvariantCulture);
			if (n > 255)
				return null;
			b[i] = (byte)n;
		}
		return new IPAddress(b);
	}

	/// <summary>ip6-network: an RFC 4291 text address (no zone, no brackets, no prefix).</summary>
	static IPAddress? Ip6(string s)
	{
		if (!s.Contains(':') || !s.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.'))
			return null;
		return IPAddress.TryParse(s, out var a) && a.AddressFamily == AddressFamily.InterNetworkV6 ? a : null;
	}

	/// <summary>
	/// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand (§7.1),
	/// without c, r, t (those are for explanations only).
	/// </summary>
	public static bool DomainSpec(string s)
	{
		if (s.Length == 0 || !SpfMacro.Valid(s, false))
			return false;
		if (SpfMacro.EndsWithMacro(s))
			return true;
		var t = s.EndsWith('.') ? s[..^1] : s;
		var dot = t.LastIndexOf('.');
		return dot >= 0 && TopLabel(t[(dot + 1)..]);
	}

	/// <summary>toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ).</summary>
	public static bool TopLabel(string s)
	{
		if (s.Length == 0 || !s.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
			return false;
		if (!s.Contains('-'))
			return s.Any(char.IsAsciiLetter);
		return char.IsAsciiLetterOrDigit(s[0]) && char.IsAsciiLetterOrDigit(s[^1]);
	}
}
