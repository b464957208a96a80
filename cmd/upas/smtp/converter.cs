using System.Security.Cryptography;
using System.Text;

namespace Upas.Smtp;

/// <summary>
/// The converted message (smtp.md §8): the header is read (at most <see cref="MaxHeader"/> bytes) and parsed,
/// then Message-ID:, From:, To:, Date: are added when missing, the fields written with their addresses
/// rewritten, and the body streamed through in chunks: memory stays bounded whatever the message size.
/// Input CR LF is taken as LF (the original sent CR CR LF); every LF goes out as CR LF, dot-stuffed.
/// To sign it (dkim(6)) the body is read twice: <see cref="FirstPass"/>, then <see cref="Write"/> again from
/// the input rewound (a file) or from a spool file (a pipe).
/// </summary>
/// <param name="rewind">puts the input back where it was when the converter was made; null: the input's own
/// Seek when it can, else it cannot be rewound</param>
sealed class Converter(Stream input, string hostdomain, string from, Func<bool>? rewind = null)
{
	/// <summary>A header longer than this is cut at a line end; the rest passes through as it is.</summary>
	public const int MaxHeader = 1 << 20;
	const int Chunk = 1 << 16;

	LfReader reader = new(input);
	ParsedHeader? header;
	string text = "";
	byte[]? converted;	// the header as it goes out, LF line ends: made once (its Message-ID is random)
	long convertedCount;	// its bytes as the log line counts them
	readonly Func<bool>? rewind = rewind ?? SeekBack(input);
	Stream? spool;		// the body after the first pass, when the input could not be rewound
	long bodyLength = -1;	// the body's bytes after the header text, once the first pass has read them

	static Func<bool>? SeekBack(Stream s)
	{
		if (!s.CanSeek)
			return null;
		var at = s.Position;
		return () => s.Seek(at, SeekOrigin.Begin) == at;
	}

	/// <summary>The DKIM-Signature fields that go before the header (lines ending in LF); null: none.</summary>
	public string? Signature { get; set; }

	/// <summary>Whether the input can be read again from its start (a regular file, not a pipe).</summary>
	public bool CanRewind => rewind is not null;

	/// <summary>Reads and parses the header; done once, before the first <see cref="Write"/>.</summary>
	public void ReadHeader()
	{
		if (header is not null)
			return;
		var buf = new MemoryStream();
		while (buf.Length < MaxHeader) {
			var line = reader.ReadLine(MaxHeader - (int)buf.Length);
			if (line.Length == 0)
				break;
			buf.Write(line);
			if (line.Length == 1 && line[0] == '\n')
				break;	// the empty line that ends the header
			if (line[^1] != '\n')
				break;	// end of input, or a line longer than what is left of the window
		}
		text = Encoding.Latin1.GetString(buf.GetBuffer(), 0, (int)buf.Length);
		header = Rfc822.Parse(text, (a, bracketed) => Addr.Header(a, bracketed, hostdomain));
	}

	/// <summary>The From: line's value when the header has no originator (smtp.md §8.3 item 2).</summary>
	public string FromLine => from == "/dev/null" ? "Postmaster@" + hostdomain
		: from.Contains('@') ? from
		: FullName(from) is { } name ? $"{name} <{from}@{hostdomain}>"
		: from + "@" + hostdomain;

	/// <summary>
	/// The domain of the address of the first From: field as it goes out (rewritten, or the one added), lower
	/// case; null when there is none (a header with only Sender:, or From: &lt;&gt;): what decides signing.
	/// </summary>
	public string? FromDomain()
	{
		ReadHeader();
		var h = header!;
		string? first;
		if (!h.HasOriginator)
			first = Rfc822.Parse($"From: {FromLine}\n\n", (a, _) => a).Fields.FirstOrDefault()?.FirstAddress;
		else
			first = h.Fields.Find(f => f.Class == FieldClass.Originator && f.Name.Equals("From", StringComparison.OrdinalIgnoreCase))?.FirstAddress;
		if (string.IsNullOrEmpty(first))
			return null;
		var a = Addr.Header(first, true, hostdomain);
		var at = a.LastIndexOf('@');
		return at < 0 || at == a.Length - 1 ? null : a[(at + 1)..].TrimEnd('>').ToLowerInvariant();
	}

	/// <summary>
	/// The user's name from the passwd GECOS field (plan9port's choice; Plan 9 read /adm/keys.who) as a
	/// quoted phrase, RFC 2047-encoded when it is not ASCII; null when there is none.
	/// </summary>
	static string? FullName(string user)
	{
		Mono.Unix.Native.Passwd? pw;
		try {
			pw = Mono.Unix.Native.Syscall.getpwnam(user);
		} catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) {
			return null;
		}
		var name = pw?.pw_gecos?.Split(',')[0].Trim();
		if (string.IsNullOrEmpty(name) || name.Any(c => c < ' '))
			return null;
		if (name.All(c => c < 0x7f))
			return "\"" + name.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
		var q = new StringBuilder("=?utf-8?q?");
		foreach (var b in Encoding.UTF8.GetBytes(name))
			q.Append(b is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9' ? ((char)b).ToString() : b == ' ' ? "_" : $"={b:X2}");
		return q.Append("?=").ToString();
	}

	/// <summary>The header fields as they go out (added ones first), LF line ends, without the empty line.
	/// toLine: the RCPT list, for a synthesized To: (never under -f).</summary>
	public byte[] Header(string? toLine)
	{
		if (converted is not null)
			return converted;
		ReadHeader();
		var h = header!;
		var m = new MemoryStream();
		void Add(string line)
		{
			m.Write(Encoding.Latin1.GetBytes(line + "\n"));
			convertedCount += line.Length + 2;
		}
		if (!h.HasMessageId)
			Add($"Message-ID: <{MessageId()}@{hostdomain}>");
		if (!h.HasOriginator)
			Add("From: " + FromLine);
		if (!h.HasDestination && toLine is not null)
			Add(toLine.StartsWith('@') ? $"To: <{toLine}>" : "To: " + toLine);
		if (!h.HasDate && h.EnvelopeDate is not null)
			Add("Date: " + h.EnvelopeDate);
		foreach (var f in h.Fields) {
			var b = Encoding.Latin1.GetBytes(f.Text + "\n");
			m.Write(b);
			convertedCount += b.Length;
		}
		return converted = m.ToArray();
	}

	/// <summary>What follows the header text: the empty line, when there is one, and the start of the body.</summary>
	ReadOnlySpan<char> Rest => text.AsSpan(header!.Consumed);

	/// <summary>
	/// Reads the body to its end once, handing it to body as it goes out after the empty line (LF line ends, not
	/// dot-stuffed), and readies <see cref="Write"/> to read it again: the input rewound, or else spool (an empty
	/// file of the caller's) filled. An IOException when the body cannot be kept or the input changed meanwhile.
	/// </summary>
	public void FirstPass(Stream? spool, Action<ReadOnlySpan<byte>> body, Action? onChunk)
	{
		ReadHeader();
		if (rewind is null && spool is null)
			throw new InvalidOperationException("no way to read the body twice");
		var rest = Rest;
		body(Encoding.Latin1.GetBytes((rest.Length > 0 && rest[0] == '\n' ? rest[1..] : rest).ToString()));
		var chunk = new byte[Chunk];
		long n = 0;
		for (;;) {
			onChunk?.Invoke();
			var k = reader.Read(chunk);
			if (k == 0)
				break;
			body(chunk.AsSpan(0, k));
			if (rewind is null)
				spool!.Write(chunk, 0, k);
			n += k;
		}
		bodyLength = n;
		if (rewind is null) {
			spool!.Flush();
			spool.Seek(0, SeekOrigin.Begin);
			this.spool = spool;
			return;
		}
		if (!rewind())
			throw new IOException("cannot rewind the input");
		// the same LF reader over the same bytes gives the same header text; anything else means the file changed
		reader = new LfReader(input);
		var again = new byte[Encoding.Latin1.GetByteCount(text)];
		var got = 0;
		while (got < again.Length && reader.Read(again.AsSpan(got)) is var r && r > 0)
			got += r;
		if (got != again.Length || Encoding.Latin1.GetString(again) != text)
			throw new IOException("the message changed while it was read");
	}

	/// <summary>Writes the converted message to out (CR LF, dot-stuffed, no final dot), the signature first when
	/// there is one. onChunk runs before each chunk of the body is read (the alarm is re-armed).
	/// Returns the byte count of the success log line.</summary>
	public long Write(Stream output, string? toLine, Action? onChunk)
	{
		var hdr = Header(toLine);
		var w = new DataWriter(output);
		long n = 0;
		if (Signature is { } sig) {
			var sb = Encoding.Latin1.GetBytes(sig);
			w.Write(sb);
			n += sb.Length;
		}
		w.Write(hdr);
		n += convertedCount;
		var rest = Rest;
		if (rest.Length == 0 || rest[0] != '\n')
			w.Write("\n"u8);
		var rb = Encoding.Latin1.GetBytes(rest.ToString());
		w.Write(rb);
		n += rb.Length;
		var chunk = new byte[Chunk];
		// after a first pass, exactly the bytes it signed: a file that grows meanwhile adds nothing unsigned
		var left = bodyLength < 0 ? long.MaxValue : bodyLength;
		while (left > 0) {
			onChunk?.Invoke();
			var want = (int)Math.Min(chunk.Length, left);
			var k = spool is { } s ? s.Read(chunk, 0, want) : reader.Read(chunk.AsSpan(0, want));
			if (k == 0)
				break;
			w.Write(chunk.AsSpan(0, k));
			n += k;
			left -= k;
		}
		if (bodyLength >= 0 && left > 0)
			throw new IOException("the message changed while it was read");
		LastWasLf = w.LastWasLf;
		return n;
	}

	/// <summary>Whether the last byte written was an LF (decides how the final dot is sent).</summary>
	public bool LastWasLf { get; private set; } = true;

	/// <summary>32 lower-case hex digits from a strong random source.</summary>
	static string MessageId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}

/// <summary>LF → CR LF and a doubled '.' at the start of every line; the header's and the body's bytes alike.</summary>
sealed class DataWriter(Stream output)
{
	public bool LastWasLf { get; private set; } = true;

	public void Write(ReadOnlySpan<byte> b)
	{
		var start = 0;
		for (var i = 0; i < b.Length; i++) {
			var c = b[i];
			if (c == '\n') {
				output.Write(b[start..i]);
				output.Write("\r\n"u8);
				start = i + 1;
				LastWasLf = true;
				continue;
			}
			if (LastWasLf && c == '.') {
				output.Write(b[start..i]);
				output.Write("."u8);	// and the dot itself goes out with the rest
				start = i;
			}
			LastWasLf = false;
		}
		output.Write(b[start..]);
	}
}

/// <summary>Standard input with CR LF read as LF (a lone CR stays), by lines for the header, by chunks for the body.</summary>
sealed class LfReader(Stream s)
{
	readonly byte[] buf = new byte[1 << 16];
	int pos, len;
	bool eof;

	bool Fill()
	{
		if (pos < len)
			return true;
		if (eof)
			return false;
		pos = len = 0;
		var n = s.Read(buf, 0, buf.Length);
		if (n == 0) {
			eof = true;
			return false;
		}
		len = n;
		return true;
	}

	// The next byte, CR LF folded into LF; -1 at the end.
	int Next()
	{
		if (!Fill())
			return -1;
		var c = buf[pos++];
		if (c == '\r' && Fill() && buf[pos] == '\n') {
			pos++;
			return '\n';
		}
		return c;
	}

	/// <summary>A line with its LF, or what is left before the end of input, at most max bytes; empty at the end.</summary>
	public byte[] ReadLine(int max)
	{
		var m = new MemoryStream();
		while (m.Length < max) {
			var c = Next();
			if (c < 0)
				break;
			m.WriteByte((byte)c);
			if (c == '\n')
				break;
		}
		return m.ToArray();
	}

	/// <summary>Up to dst.Length bytes; 0 at the end.</summary>
	public int Read(Span<byte> dst)
	{
		var n = 0;
		while (n < dst.Length) {
			if (n > 0 && pos >= len)
				break;	// hand over what we have rather than wait for more
			var c = Next();
			if (c < 0)
				break;
			dst[n++] = (byte)c;
		}
		return n;
	}
}
