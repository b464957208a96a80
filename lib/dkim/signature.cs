using System.Text;

namespace Upas.Dkim;

/// <summary>
/// A parsed DKIM-Signature field (RFC 6376 3.5). Parse checks all that can be checked without the body or
/// the key: required tags, v=1, a known a=, c=, h= with From, i= within d=, q=, l=, t= and x=.
/// </summary>
sealed class DkimSignature
{
	public required string Domain, Selector, Algorithm;
	public DkimAlgorithm Alg;
	public bool RelaxedHeader, RelaxedBody;
	public long? Length;
	public required string[] Headers;	// h= names in order
	public required byte[] BodyHash, Signature;
	public string? Identity;	// i=, its domain after "@"
	public required RawField Field;

	/// <summary>The signature, or null with why and a result (PermError, or Fail for an expired one).</summary>
	public static DkimSignature? Parse(RawField field, DateTimeOffset now, out DkimResult result, out string why, out string d, out string s, out string a)
	{
		d = s = a = "";
		result = DkimResult.PermError;
		var f = field.Bytes.Span;
		var text = Encoding.Latin1.GetString(f[(f.IndexOf((byte)':') + 1)..]);
		var tags = TagList.Parse(text, out why);
		if (tags is null)
			return null;
		d = Printable(tags["d"] ?? "");
		s = Printable(tags["s"] ?? "");
		a = Printable(tags["a"] ?? "");
		foreach (var req in (string[])["v", "a", "b", "bh", "d", "h", "s"]) {
			if (tags[req] is null) {
				why = $"missing tag {req}=";
				return null;
			}
		}
		if (tags["v"] != "1") {
			why = "unknown version v=" + Printable(tags["v"]!);
			return null;
		}
		DkimAlgorithm alg;
		switch (tags["a"]) {
		case "rsa-sha256": alg = DkimAlgorithm.RsaSha256; break;
		case "ed25519-sha256": alg = DkimAlgorithm.Ed25519Sha256; break;
		case "rsa-sha1":
			why = "rsa-sha1 is not accepted (RFC 8301)";
			return null;
		default:
			why = "unknown algorithm a=" + a;
			return null;
		}
		if (!IsDomain(d) || !IsSelector(s)) {
			why = !IsDomain(d) ? "bad domain d=" : "bad selector s=";
			return null;
		}
		bool rh = false, rb = false;
		if (tags["c"] is { } c) {
			var parts = c.Split('/');
			if (parts.Length > 2 || !Canon(parts[0], out rh) || (parts.Length == 2 && !Canon(parts[1], out rb))) {
				why = "unknown canonicalization c=" + Printable(c);
				return null;
			}
		}
		if (tags["q"] is { } q && !TagList.Squeeze(q).Split(':').Contains("dns/txt")) {
			why = "unknown query method q=" + Printable(q);
			return null;
		}
		var h = TagList.Squeeze(tags["h"]!).Split(':');
		if (h.Any(n => n.Length == 0 || n.Any(ch => ch <= ' ' || ch >= 127 || ch == ':'))) {
			why = "bad header list h=";
			return null;
		}
		if (!h.Contains("from", StringComparer.OrdinalIgnoreCase)) {
			why = "From is not signed (h=)";
			return null;
		}
		long? l = null;
		if (tags["l"] is { } ls) {
			if (!Number(ls, out var lv)) {
				why = "bad body length l=";
				return null;
			}
			l = lv;
		}
		string? ident = null;
		if (tags["i"] is { } i) {
			var at = i.LastIndexOf('@');
			ident = at < 0 ? null : i[(at + 1)..];
			if (ident is null || !(ident.Equals(d, StringComparison.OrdinalIgnoreCase) || ident.EndsWith("." + d, StringComparison.OrdinalIgnoreCase))) {
				why = "i= is not within d=";
				return null;
			}
		}
		long t = -1;
		if (tags["t"] is { } ts && !Number(ts, out t)) {
			why = "bad timestamp t=";
			return null;
		}
		long x = -1;
		if (tags["x"] is { } xs) {
			if (!Number(xs, out x)) {
				why = "bad expiry x=";
				return null;
			}
			if (t >= 0 && x < t) {
				why = "x= is before t=";
				return null;
			}
		}
		var bh = Base64(tags["bh"]!);
		var b = Base64(tags["b"]!);
		if (bh is null || b is null || bh.Length == 0 || b.Length == 0) {
			why = bh is null || bh.Length == 0 ? "bad base64 in bh=" : "bad base64 in b=";
			return null;
		}
		if (x >= 0 && x < now.ToUnixTimeSeconds()) {
			result = DkimResult.Fail;
			why = "signature expired";
			return null;
		}
		result = DkimResult.None;
		why = "";
		return new DkimSignature {
			Domain = d, Selector = s, Algorithm = a, Alg = alg, RelaxedHeader = rh, RelaxedBody = rb,
			Length = l, Headers = h, BodyHash = bh, Signature = b, Identity = ident, Field = field,
		};
	}

	static bool Canon(string s, out bool relaxed)
	{
		relaxed = s == "relaxed";
		return s is "relaxed" or "simple";
	}

	/// <summary>1 to 76 digits, as RFC 6376 allows, within a long.</summary>
	static bool Number(string s, out long v)
	{
		v = 0;
		return s.Length is > 0 and <= 18 && s.All(char.IsAsciiDigit) && long.TryParse(s, out v);
	}

	/// <summary>Base64 with folding white space; null when malformed.</summary>
	internal static byte[]? Base64(string s)
	{
		s = TagList.Squeeze(s);
		var o = new byte[s.Length * 3 / 4 + 3];
		return Convert.TryFromBase64String(s, o, out var n) ? o[..n] : null;
	}

	static bool IsDomain(string d) =>
		d.Length is > 0 and <= 253 && d.Split('.').All(l => l.Length is > 0 and <= 63 && l.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'));

	static bool IsSelector(string s) => IsDomain(s);

	/// <summary>Peer text fit for a log line: printable ASCII, at most 100 characters.</summary>
	internal static string Printable(string s) => EnvAddr.Ascii(s, 100);

	/// <summary>The field as hashed: b='s value removed (with the white space in it), no final CR LF (3.7).</summary>
	public byte[] WithoutB()
	{
		var f = Field.Bytes.Span;
		var colon = f.IndexOf((byte)':') + 1;
		var o = new List<byte>(f.Length);
		foreach (var c in f[..colon])
			o.Add(c);
		var v = f[colon..];
		while (true) {
			var semi = v.IndexOf((byte)';');
			var spec = semi < 0 ? v : v[..semi];
			var eq = spec.IndexOf((byte)'=');
			var isB = eq > 0 && spec[..eq].Trim(" \t\r\n"u8).SequenceEqual("b"u8);
			foreach (var c in isB ? spec[..(eq + 1)] : spec)
				o.Add(c);
			if (semi < 0)
				break;
			o.Add((byte)';');
			v = v[(semi + 1)..];
		}
		var r = o.ToArray().AsSpan();
		return (r.EndsWith("\r\n"u8) ? r[..^2] : r).ToArray();
	}
}
