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
	public Content Body { get; }

	public Message(string sender, string date, Content body)
	{
		Sender = sender;
		Date = date;
		Body = body;
	}

	// the sender: a run of non-blanks in which a double-quoted part ("john doe", "a\"b") may hold blanks
	[GeneratedRegex(@"^>?From[ \t]+((?:""(?:[^""\\]|\\.)*""|[^ \t])+)[ \t]+(.*?)(?:[ \t]+remote[ \t]+from[ \t]*([^ \t]*))?[ \t]*$")]
	private static partial Regex Envelope();

	/// <summary>Splits the input into envelope and body (mailer.md §2 step 1); no envelope line: the invoking user, now.</summary>
	public static Message Parse(Content input, string defaultSender, DateTime now)
	{
		var head = input.Head(64 * 1024);
		var lf = Array.IndexOf(head, (byte)'\n');
		var first = Encoding.Latin1.GetString(head, 0, lf < 0 ? head.Length : lf);
		var m = Envelope().Match(first);
		string sender, date;
		Content rest;
		if ((lf >= 0 || input.Length == head.Length) && m.Success && m.Groups[2].Length > 0) {
			sender = m.Groups[1].Value;
			if (m.Groups[3].Success && m.Groups[3].Length > 0)
				sender = m.Groups[3].Value + "!" + sender;
			date = m.Groups[2].Value;
			rest = lf < 0 ? Content.Of([]) : input.From(lf + 1);
		} else {
			sender = defaultSender;
			date = PlanTime.Ctime(now);
			rest = input;
		}
		if (rest.Length > 0 && rest.Last() != '\n')
			rest = Content.Concat(rest, "\n"u8.ToArray());
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

	/// <summary>Whether the header has more Received: fields than HopCounter.MaxReceived: a possible forward loop.</summary>
	public bool TooManyHops
	{
		get {
			var h = new HopCounter(afterFromLine: false);
			h.Feed(Body.Head(65536));
			return h.TooMany;
		}
	}

	IEnumerable<string> HeaderLines()
	{
		var text = Encoding.Latin1.GetString(Body.Head(65536));
		foreach (var l in text.Split('\n')) {
			if (l.Length == 0 || l == "\r")
				yield break;
			yield return l;
		}
	}

	/// <summary>The mailbox entry's first line: "From sender date" (mailer.md §3).</summary>
	byte[] MboxLine => Encoding.Latin1.GetBytes($"From {Sender} {Date}\n");

	/// <summary>The mailbox entry's length: its first line, the body with lines starting "From " given one leading space, an empty line.</summary>
	public long MboxLength() => MboxLine.Length + Body.EscapedLength() + 1;

	/// <summary>Writes the mailbox entry (mailer.md §3) to sink; false when sink said stop.</summary>
	public bool MboxEntry(Sink sink) => sink(MboxLine) && Body.CopyEscaped(sink) && sink("\n"u8);

	/// <summary>The queue's data file: "From sender date remote from sys", then the body unchanged (mailer.md §4.1).</summary>
	public Content QueueData(string sysname) =>
		Content.Concat(Encoding.Latin1.GetBytes($"From {Sender} {Date} remote from {sysname}\n"), Body);
}
