using System.Security.Cryptography;
using System.Text;

namespace Upas.Dkim;

/// <summary>
/// Makes the DKIM-Signature fields of one message (RFC 6376 5, RFC 8463): c=relaxed/relaxed, one
/// signature per key, the usual header set with From over-signed, t= now. Give it the header, then the
/// body in any chunks, then Finish; the body is hashed as it comes, never kept.
/// </summary>
public sealed class DkimSigner
{
	/// <summary>The fields signed when present, in h= order; From is listed once more than it occurs.</summary>
	internal static readonly string[] SignedFields = [
		"from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
		"reply-to", "in-reply-to", "references",
	];

	const int Width = 76;	// folded lines stay under 78 columns

	readonly IReadOnlyList<DkimSigning> keys;
	readonly DateTimeOffset now;
	readonly BodyCanon body = new(relaxed: true);
	byte[] header = [];
	string? done;

	public DkimSigner(IReadOnlyList<DkimSigning> keys, DateTimeOffset now)
	{
		this.keys = keys;
		this.now = now;
	}

	/// <summary>The whole header as sent (LF or CR LF line ends), without the empty line.</summary>
	public void Header(ReadOnlySpan<byte> h) => header = HeaderCanon.Crlf(h);

	/// <summary>The body as sent, in any chunks (LF or CR LF line ends, not dot-stuffed).</summary>
	public void Body(ReadOnlySpan<byte> chunk)
	{
		if (done is null)
			body.Feed(chunk);
	}

	/// <summary>The DKIM-Signature fields to put before the header, each folded, lines ending "\n".</summary>
	public string Finish() => done ??= Make();

	string Make()
	{
		var bh = Convert.ToBase64String(body.Finish());
		body.Dispose();
		var fields = HeaderCanon.Fields(header);
		var names = new List<string>();
		foreach (var n in SignedFields) {
			var count = fields.Count(f => f.Name.Equals(n, StringComparison.OrdinalIgnoreCase));
			if (n == "from")
				names.AddRange(Enumerable.Repeat(n, Math.Max(count, 1) + (count > 0 ? 1 : 0)));
			else if (count > 0)
				names.Add(n);
		}
		var signed = HeaderCanon.Select(fields, names);
		var o = new StringBuilder();
		foreach (var k in keys)
			o.Append(Sign(k, names, signed, bh));
		return o.ToString();
	}

	string Sign(DkimSigning k, List<string> names, List<RawField?> signed, string bh)
	{
		var f = new Folder("DKIM-Signature:");
		foreach (var w in (string[])["v=1;", $"a={DkimNames.Tag(k.Key.Algorithm)};", "c=relaxed/relaxed;", $"d={k.Domain};", $"s={k.Selector};", $"t={now.ToUnixTimeSeconds()};"])
			f.Word(w);
		for (var i = 0; i < names.Count; i++) {
			var piece = names[i] + (i < names.Count - 1 ? ":" : ";");
			if (i == 0)
				f.Word("h=" + piece);
			else
				f.Piece(piece);	// h= may fold after a colon only
		}
		f.Word("bh=" + bh + ";");
		f.Word("b=");
		using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		foreach (var s in signed) {
			if (s is { } field)
				hash.AppendData(HeaderCanon.Relaxed(field.Bytes.Span));
		}
		hash.AppendData(HeaderCanon.Relaxed(Encoding.Latin1.GetBytes(f.Text), crlf: false));
		var b = Convert.ToBase64String(k.Key.SignHash(hash.GetHashAndReset()));
		for (var i = 0; i < b.Length;) {
			var room = Math.Max(Width - f.Column, 0);
			if (room == 0) {
				f.Break();
				continue;
			}
			var take = Math.Min(room, b.Length - i);
			f.Piece(b.Substring(i, take));
			i += take;
		}
		return f.Text.Replace("\r\n", "\n") + "\n";
	}

	/// <summary>Writes a field folded before Width columns: words separated by a space or a folding line end.</summary>
	sealed class Folder(string start)
	{
		readonly StringBuilder sb = new(start);
		public int Column { get; private set; } = start.Length;
		public string Text => sb.ToString();

		public void Break()
		{
			sb.Append("\r\n ");
			Column = 1;
		}

		public void Word(string w)
		{
			if (Column + 1 + w.Length > Width)
				Break();
			else {
				sb.Append(' ');
				Column++;
			}
			sb.Append(w);
			Column += w.Length;
		}

		public void Piece(string w)
		{
			if (Column + w.Length > Width)
				Break();
			sb.Append(w);
			Column += w.Length;
		}
	}
}
