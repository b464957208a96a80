using System.Text;

namespace Upas.Dkim;

/// <summary>One header field as bytes: its name (as written, without trailing white space) and the whole
/// field, name to final CR LF, continuation lines included.</summary>
readonly record struct RawField(string Name, ReadOnlyMemory<byte> Bytes);

/// <summary>The header side of RFC 6376: fields of a header, their canonical forms (3.4.1, 3.4.2), and
/// the choice of fields an h= list signs (5.4.2).</summary>
static class HeaderCanon
{
	/// <summary>The header with every line ending in CR LF (a lone LF becomes CR LF).</summary>
	public static byte[] Crlf(ReadOnlySpan<byte> header)
	{
		var o = new List<byte>(header.Length + header.Length / 20 + 2);
		for (var i = 0; i < header.Length; i++) {
			if (header[i] == '\n' && (i == 0 || header[i - 1] != '\r'))
				o.Add((byte)'\r');
			o.Add(header[i]);
		}
		// a header given without its last line end
		if (o.Count > 0 && o[^1] != '\n') {
			o.Add((byte)'\r');
			o.Add((byte)'\n');
		}
		return o.ToArray();
	}

	/// <summary>The fields of a CR LF header, top to bottom. A line starting with white space continues the
	/// field before it; text without a colon is a field with an empty name (never signed).</summary>
	public static List<RawField> Fields(ReadOnlyMemory<byte> header)
	{
		var list = new List<RawField>();
		var h = header.Span;
		var start = 0;
		while (start < h.Length) {
			var end = start;
			// the field ends at the CR LF not followed by white space
			while (true) {
				var nl = h[end..].IndexOf("\r\n"u8);
				if (nl < 0) {
					end = h.Length;
					break;
				}
				end += nl + 2;
				if (end >= h.Length || (h[end] != ' ' && h[end] != '\t'))
					break;
			}
			var f = h[start..end];
			var colon = f.IndexOf((byte)':');
			var name = colon < 0 ? "" : Encoding.Latin1.GetString(f[..colon]).TrimEnd(' ', '\t');
			list.Add(new RawField(name, header[start..end]));
			start = end;
		}
		return list;
	}

	static bool Wsp(byte b) => b == ' ' || b == '\t';

	/// <summary>The relaxed form of a field (3.4.2): name in lower case, unfolded, white space runs made one
	/// space, none around the colon or at the end; with CR LF unless crlf is false.</summary>
	public static byte[] Relaxed(ReadOnlySpan<byte> field, bool crlf = true)
	{
		var colon = field.IndexOf((byte)':');
		var o = new List<byte>(field.Length + 2);
		var name = colon < 0 ? field : field[..colon];
		foreach (var b in name.TrimEnd(" \t\r\n"u8))
			o.Add(b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b + 32) : b);
		if (colon >= 0) {
			o.Add((byte)':');
			var wsp = false;
			var any = false;
			foreach (var b in field[(colon + 1)..]) {
				if (b == '\r' || b == '\n')
					continue;	// unfolding; the white space after a folding line end stays
				if (Wsp(b)) {
					wsp = true;
					continue;
				}
				if (wsp && any)
					o.Add((byte)' ');
				wsp = false;
				any = true;
				o.Add(b);
			}
		}
		if (crlf) {
			o.Add((byte)'\r');
			o.Add((byte)'\n');
		}
		return o.ToArray();
	}

	/// <summary>The simple form (3.4.1): the field unchanged, with or without its final CR LF.</summary>
	public static ReadOnlySpan<byte> Simple(ReadOnlySpan<byte> field, bool crlf = true) =>
		crlf || !field.EndsWith("\r\n"u8) ? field : field[..^2];

	/// <summary>
	/// The fields that h= signs, in h= order: for each name the last field of that name not yet taken, from
	/// the bottom up; null for a name listed more often than it occurs (over-signing: nothing is hashed).
	/// </summary>
	public static List<RawField?> Select(IReadOnlyList<RawField> fields, IEnumerable<string> names)
	{
		var taken = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);	// name -> fields of it already used
		var o = new List<RawField?>();
		foreach (var n in names) {
			taken.TryGetValue(n, out var used);
			RawField? pick = null;
			var seen = 0;
			for (var i = fields.Count - 1; i >= 0; i--) {
				if (!fields[i].Name.Equals(n, StringComparison.OrdinalIgnoreCase))
					continue;
				if (seen++ == used) {
					pick = fields[i];
					break;
				}
			}
			taken[n] = used + 1;
			o.Add(pick);
		}
		return o;
	}
}
