namespace Upas.Smtpd;

/// <summary>
/// End of DATA, and only that: the message ends at CR LF . CR LF and nowhere else, so no smuggling
/// variant (LF.LF, CR.CR, LF.CRLF, CRLF.LF ...) ends it (decisions #2). Lines come out with LF ends;
/// a leading dot after CR LF is removed (RFC 5321 4.5.2); bare CR and bare LF become line ends; NULs are
/// dropped as Bell Labs does. Limits are counted, never buffered: the caller decides what to refuse.
/// </summary>
sealed class DotReader(long maxSize, int maxLine)
{
	public const int DefaultMaxLine = 64 * 1024;

	enum State { LineStart, Dot, DotCr, Mid, MidCr }

	// The message starts as if after CR LF: ".\r\n" right after the 354 is an empty message.
	State state = State.LineStart;
	int lineLen;

	public bool Done { get; private set; }
	/// <summary>Bytes of message produced (after unstuffing, LF line ends).</summary>
	public long Size { get; private set; }
	public bool TooBig { get; private set; }
	public bool LineTooLong { get; private set; }

	/// <summary>
	/// Consumes input up to and including the end marker; writes message bytes to outp (nothing once a
	/// limit is passed). Returns the number of input bytes consumed.
	/// </summary>
	public int Feed(ReadOnlySpan<byte> input, Span<byte> outp, out int written)
	{
		written = 0;
		var i = 0;
		while (i < input.Length && !Done) {
			var c = input[i++];
			switch (state) {
			case State.LineStart:
				if (c == '.')
					state = State.Dot;
				else
					Plain(c, outp, ref written);
				break;
			case State.Dot:
				if (c == '\r')
					state = State.DotCr;
				else if (c == '\n') {
					// <CRLF>.<LF> is a line holding a dot, not the end
					Emit((byte)'.', outp, ref written);
					NewLine(outp, ref written, State.Mid);
				} else {
					state = State.Mid;
					Plain(c, outp, ref written); // the stuffed dot is dropped
				}
				break;
			case State.DotCr:
				if (c == '\n') {
					Done = true;
				} else {
					// <CRLF>.<CR>x: a dot line ended by a bare CR
					Emit((byte)'.', outp, ref written);
					NewLine(outp, ref written, State.Mid);
					Plain(c, outp, ref written);
				}
				break;
			case State.Mid:
				Plain(c, outp, ref written);
				break;
			case State.MidCr:
				if (c == '\n')
					NewLine(outp, ref written, State.LineStart);
				else {
					NewLine(outp, ref written, State.Mid); // bare CR is a line end
					Plain(c, outp, ref written);
				}
				break;
			}
		}
		return i;
	}

	/// <summary>The maximum output Feed can produce for n input bytes.</summary>
	public static int MaxOutput(int n) => n * 2 + 2;

	void Plain(byte c, Span<byte> outp, ref int w)
	{
		switch (c) {
		case (byte)'\r':
			state = State.MidCr;
			break;
		case (byte)'\n':
			NewLine(outp, ref w, State.Mid); // bare LF: a line end, but no dot-unstuffing after it
			break;
		case 0:
			state = State.Mid;
			break;
		default:
			state = State.Mid;
			Emit(c, outp, ref w);
			break;
		}
	}

	void NewLine(Span<byte> outp, ref int w, State next)
	{
		Emit((byte)'\n', outp, ref w);
		lineLen = 0;
		state = next;
	}

	void Emit(byte c, Span<byte> outp, ref int w)
	{
		Size++;
		if (c != '\n' && ++lineLen > maxLine)
			LineTooLong = true;
		if (Size > maxSize)
			TooBig = true;
		if (TooBig || LineTooLong)
			return;
		outp[w++] = c;
	}
}
