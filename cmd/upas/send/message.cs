using System.Text;
using System.Text.RegularExpressions;

namespace Upas.Send;

/// <summary>The message read from standard input: envelope sender and date, and the rest, byte for byte.</summary>
sealed partial class Message
{
	public const long MaxSize = 128L << 20; // "message too long" beyond this (mailer.md §2 step 2)

	public string Sender { get; }
	public string Date { get; }
	/// <summary>Everything after the envelope line (header and body), ending in LF.</summary>
	public byte[] Body { get; }

	public Message(string sender, string date, byte[] body)
	{
		Sender = sender;
		Date = date;
		Body = body;
	}

	[GeneratedRegex(@"^>?From[ \t]+(""[^""]*""|[^ \t]+)[ \t]+(.*?)(?:[ \t]+remote[ \t]+from[ \t]*([^ \t]*))?[ \t]*$")]
	private static partial Regex Envelope();

	/// <summary>Splits the input into envelope and body (mailer.md §2 step 1); no envelope line: the invoking user, now.</summary>
	public static Message Parse(byte[] input, string defaultSender, DateTime now)
	{
		var lf = Array.IndexOf(input, (byte)'\n');
		var first = Encoding.Latin1.GetString(input, 0, lf < 0 ? input.Length : lf);
		var m = Envelope().Match(first);
		string sender, date;
		byte[] rest;
		if (m.Success && m.Groups[2].Length > 0) {
			sender = m.Groups[1].Value;
			if (m.Groups[3].Success && m.Groups[3].Length > 0)
				sender = m.Groups[3].Value + "!" + sender;
			date = m.Groups[2].Value;
			rest = lf < 0 ? [] : input[(lf + 1)..];
		} else {
			sender = defaultSender;
			date = PlanTime.Ctime(now);
			rest = input;
		}
		if (rest.Length > 0 && rest[^1] != '\n')
			rest = [.. rest, (byte)'\n'];
		return new Message(sender, date, rest);
	}

	/// <summary>Precedence: bulk in the header, or an unreturnable sender: never bounced (mailer.md §2 step 3).</summary>
	public bool Bulk
	{
		get {
			if (Sender is "/dev/null" or "" or "<>")
				return true;
			foreach (var line in HeaderLines()) {
				if (line.StartsWith("precedence:", StringComparison.OrdinalIgnoreCase)
					&& line["precedence:".Length..].Trim().StartsWith("bulk", StringComparison.OrdinalIgnoreCase))
					return true;
			}
			return false;
		}
	}

	/// <summary>More Received: fields than this: refused as "possible forward loop" (mailer.md §2 step 3).</summary>
	public const int MaxReceived = 32;

	/// <summary>The number of Received: fields in the header.</summary>
	public int Received => HeaderLines().Count(l => l.StartsWith("received:", StringComparison.OrdinalIgnoreCase));

	IEnumerable<string> HeaderLines()
	{
		var text = Encoding.Latin1.GetString(Body, 0, Math.Min(Body.Length, 65536));
		foreach (var l in text.Split('\n')) {
			if (l.Length == 0 || l == "\r")
				yield break;
			yield return l;
		}
	}

	/// <summary>The mailbox entry: "From sender date", the body with lines starting "From " given one leading space, an empty line (mailer.md §3).</summary>
	public byte[] MboxEntry()
	{
		var o = new MemoryStream(Body.Length + 256);
		o.Write(Encoding.Latin1.GetBytes($"From {Sender} {Date}\n"));
		ReadOnlySpan<byte> from = "From "u8;
		var b = Body.AsSpan();
		while (b.Length > 0) {
			var lf = b.IndexOf((byte)'\n');
			var line = lf < 0 ? b : b[..(lf + 1)];
			if (line.StartsWith(from))
				o.WriteByte((byte)' ');
			o.Write(line);
			b = b[line.Length..];
		}
		o.WriteByte((byte)'\n');
		return o.ToArray();
	}

	/// <summary>The queue's data file: "From sender date remote from sys", then the body unchanged (mailer.md §4.1).</summary>
	public byte[] QueueData(string sysname)
	{
		var head = Encoding.Latin1.GetBytes($"From {Sender} {Date} remote from {sysname}\n");
		return [.. head, .. Body];
	}
}
