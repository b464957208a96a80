using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace Upas.Smtp;

/// <summary>
/// The server's reply lines, read with bounded memory whatever the server sends: a line longer than
/// <see cref="MaxLine"/> bytes is a protocol error (RFC 5321 allows 512; this is generous), and so is a
/// reply of more than <see cref="MaxLines"/> lines (checked by the caller).
/// </summary>
sealed class ReplyReader(Stream s)
{
	public const int MaxLine = 4096;
	public const int MaxLines = 100;

	readonly byte[] buf = new byte[4096];
	int pos, len;
	bool eof;

	public enum End { Line, Eof, TooLong }

	/// <summary>One line without its LF (and CR before it); on Eof the bytes that came before the end, on TooLong nothing.</summary>
	public End Line(out string line)
	{
		var acc = new byte[MaxLine + 1];
		var n = 0;
		line = "";
		for (;;) {
			if (pos >= len && !Fill()) {
				line = Encoding.Latin1.GetString(acc, 0, n);
				return End.Eof;
			}
			var span = buf.AsSpan(pos, len - pos);
			var lf = span.IndexOf((byte)'\n');
			var take = lf < 0 ? span.Length : lf;
			if (n + take > MaxLine + 1)	// the CR before LF may take the byte past MaxLine
				return End.TooLong;
			span[..take].CopyTo(acc.AsSpan(n));
			n += take;
			pos += take;
			if (lf >= 0) {
				pos++;
				if (n > 0 && acc[n - 1] == '\r')
					n--;
				if (n > MaxLine)
					return End.TooLong;
				line = Encoding.Latin1.GetString(acc, 0, n);
				return End.Line;
			}
		}
	}

	// a reset or broken connection (plain or TLS) reads as the end of the connection
	bool Fill()
	{
		if (eof)
			return false;
		try {
			len = s.Read(buf, 0, buf.Length);
		} catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or AuthenticationException or InvalidOperationException) {
			len = 0;
		}
		pos = 0;
		eof = len <= 0;
		return !eof;
	}
}
