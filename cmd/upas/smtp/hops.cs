namespace Upas.Smtpd;

/// <summary>
/// Counts the Received: fields of what the mailer reads, exactly as send does (decisions #23): header
/// lines up to the first empty one, after the From_ line, within the first 64 KB, case-insensitive
/// "received:" at the start of a line. send refuses a message with more than MaxReceived after
/// smtpd's 250; smtpd refuses it at the end of DATA instead, so no bounce goes to a forged sender.
/// </summary>
sealed class HopCounter
{
	/// <summary>send's Message.MaxReceived: more Received: fields than this is a forwarding loop.</summary>
	public const int MaxReceived = 32;
	const int Window = 64 * 1024; // send looks no further
	static readonly byte[] Field = "received:"u8.ToArray();

	bool fromLine = true, done;
	long seen;
	readonly List<byte> line = [];

	public int Count { get; private set; }
	public bool TooMany => Count > MaxReceived;

	/// <summary>Feeds the next bytes given to the mailer.</summary>
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
