namespace Upas;

/// <summary>
/// The one gate an envelope address passes before it may reach an SMTP command line, a program's
/// argument vector or a queue control file (decisions #22): no control byte, no DEL, no angle bracket,
/// never an option.
/// </summary>
public static class EnvAddr
{
	/// <summary>Why the address may not be used as an envelope address; null when it may.</summary>
	public static string? Refusal(string a)
	{
		foreach (var c in a) {
			if (c < 0x20 || c == 0x7f)
				return "control character in address";
			if (c is '<' or '>')
				return "angle bracket in address";
		}
		return null;
	}

	/// <summary>Whether the address would read as an option to a program (the word starts with '-').</summary>
	public static bool LooksLikeOption(string a) => a.StartsWith('-');

	/// <summary>Printable ASCII only, any other character '?', cut at max characters: text from a peer or from DNS going into a reply or a header field.</summary>
	public static string Ascii(string s, int max) => string.Create(Math.Min(s.Length, max), s, static (span, s) => {
		for (var i = 0; i < span.Length; i++)
			span[i] = s[i] is >= ' ' and <= '~' ? s[i] : '?';
	});

	/// <summary>A printable form for logs and error messages: control bytes, DEL and C1 as \xNN, all else as is (so printing twice changes nothing).</summary>
	public static string Printable(string s)
	{
		var clean = true;
		foreach (var c in s)
			if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
				clean = false;
				break;
			}
		if (clean)
			return s;
		var sb = new System.Text.StringBuilder(s.Length + 8);
		foreach (var c in s) {
			if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
				sb.Append(@"\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
			else
				sb.Append(c);
		}
		return sb.ToString();
	}
}
