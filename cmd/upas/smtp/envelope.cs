namespace Upas.Smtp;

/// <summary>
/// The envelope as it will be sent: the arguments decoded from upas's %%XX form (<see cref="QueueWord"/>),
/// bang paths in @ form (smtp.md §6). Checked before any connection (decisions #22): an address with a
/// control byte, DEL or an angle bracket would become more than one SMTP command.
/// </summary>
sealed record Envelope(string From, string[] Rcpts)
{
	public static Envelope Decode(Options o) =>
		new(Addr.BangToAt(QueueWord.Unescape(o.Sender)), [.. o.Rcpts.Select(r => Addr.BangToAt(QueueWord.Unescape(r)))]);

	/// <summary>Why the envelope cannot be sent, naming the address in printable form; null when it can.</summary>
	public string? Refusal()
	{
		if (EnvAddr.Refusal(From) is { } why)
			return $"illegal sender address {EnvAddr.Printable(From)}: {why}";
		foreach (var r in Rcpts)
			if (EnvAddr.Refusal(r) is { } rwhy)
				return $"illegal recipient address {EnvAddr.Printable(r)}: {rwhy}";
		return null;
	}
}
