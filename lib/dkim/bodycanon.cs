using System.Security.Cryptography;

namespace Upas.Dkim;

/// <summary>
/// The body canonicalization of RFC 6376 3.4.3 and 3.4.4, incremental over chunks cut anywhere and
/// feeding SHA-256 as it goes (nothing kept but the count of trailing empty lines). A lone LF ends a line
/// as CR LF does; a lone CR is an ordinary byte. At most Limit canonical bytes are hashed (l=).
/// </summary>
sealed class BodyCanon : IDisposable
{
	static readonly byte[] Crlf = "\r\n"u8.ToArray();
	readonly bool relaxed;
	readonly long limit;	// -1: the whole body
	readonly IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
	readonly byte[] buf = new byte[8192];
	int n;
	long emptyLines;	// empty lines not yet written: written only when a line with content follows
	bool content;	// the current line has written something
	bool wsp;	// relaxed: white space seen and not yet written
	bool cr;	// the last byte was a CR, its meaning depends on the next

	/// <summary>Canonical bytes made so far, hashed or not (the body's length for l=).</summary>
	public long Length { get; private set; }

	public bool Relaxed => relaxed;
	public long Limit => limit;

	public BodyCanon(bool relaxed, long limit = -1)
	{
		this.relaxed = relaxed;
		this.limit = limit;
	}

	public void Feed(ReadOnlySpan<byte> d)
	{
		var i = 0;
		while (i < d.Length) {
			if (cr) {
				cr = false;
				if (d[i] == '\n') {
					EndLine();
					i++;
					continue;
				}
				Content("\r"u8);
			}
			var b = d[i];
			if (b == '\r') {
				cr = true;
				i++;
			} else if (b == '\n') {
				EndLine();
				i++;
			} else if (relaxed && (b == ' ' || b == '\t')) {
				wsp = true;
				i++;
			} else {
				// a run of ordinary bytes goes out at once
				var rest = d[i..];
				var end = relaxed ? rest.IndexOfAny("\r\n\t"u8) : rest.IndexOfAny((byte)'\r', (byte)'\n');
				if (end < 0)
					end = rest.Length;
				if (relaxed) {
					// single spaces between words are already canonical: stop at a run of two, and leave a final one
					var two = rest[..end].IndexOf("  "u8);
					if (two >= 0)
						end = two;
					if (end > 1 && rest[end - 1] == ' ')
						end--;
				}
				Content(rest[..end]);
				i += end;
			}
		}
	}

	void Content(ReadOnlySpan<byte> s)
	{
		if (!content) {
			for (; emptyLines > 0; emptyLines--)
				Emit(Crlf);
			content = true;
		}
		if (wsp) {
			Emit(" "u8);
			wsp = false;
		}
		Emit(s);
	}

	void EndLine()
	{
		wsp = false;
		if (content) {
			Emit(Crlf);
			content = false;
		} else
			emptyLines++;
	}

	void Emit(ReadOnlySpan<byte> s)
	{
		var take = s.Length;
		if (limit >= 0)
			take = (int)Math.Min(take, Math.Max(0, limit - Length));
		Length += s.Length;
		s = s[..take];
		if (s.Length > buf.Length - n)
			Flush();
		if (s.Length >= buf.Length) {
			hash.AppendData(s);
			return;
		}
		s.CopyTo(buf.AsSpan(n));
		n += s.Length;
	}

	void Flush()
	{
		hash.AppendData(buf, 0, n);
		n = 0;
	}

	/// <summary>Ends the body: the SHA-256 of its canonical form (up to the limit).</summary>
	public byte[] Finish()
	{
		if (cr) {
			cr = false;
			Content("\r"u8);
		}
		if (content)
			EndLine();
		if (!relaxed && Length == 0)
			Emit(Crlf);	// simple: an empty body is one CRLF
		Flush();
		return hash.GetHashAndReset();
	}

	public void Dispose() => hash.Dispose();
}
