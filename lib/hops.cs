namespace Upas;

/// <summary>
/// Counts the Received: fields of a message's header, the one count send and smtpd share (decisions #23):
/// header lines up to the first empty one, within the first 64 KB, case-insensitive "received:" at the
/// start of a line. send refuses a message with more than MaxReceived (mailer.md §2 step 3); smtpd, fed
/// what it gives the mailer (From_ line first), refuses it at the end of DATA, so no bounce goes to a
/// forged sender.
/// </summary>
public sealed class HopCounter(bool afterFromLine)
{
	/// <summary>More Received: fields than this is a forwarding loop.</summary>
	public const int MaxReceived = 32;
	const int Window = 64 * 1024; // send looks no further
	static readonly byte[] Field = "received:"u8.ToArray();

	bool fromLine = afterFromLine, done;
	long seen;
	readonly List<byte> line = [];

	public int Count { get; private set; }
	public bool TooMany => Count > MaxReceived;

	/// <summary>Feeds the next bytes of the message.</summary>
	public void Feed(ReadOnlySpan<byte> b)
	{
		foreach (var c in b) {
			if (done)
				return;
			if (fromLine) {
				if (c == '\n')
					fromLine = false; // the From_ line is not part of send's message
				continue;
			}
			if (seen++ >= Window) {
				done = true;
				return;
			}
			if (c == '\n')
				EndLine();
			else if (line.Count < Field.Length)
				line.Add(c); // the start of a line is all that matters
		}
	}

	void EndLine()
	{
		if (line.Count == 0 || line is [(byte)'\r']) {
			done = true; // the empty line ends the header
			return;
		}
		if (line.Count == Field.Length && System.Text.Ascii.EqualsIgnoreCase(Field, line.ToArray()))
			Count++;
		line.Clear();
	}
}
