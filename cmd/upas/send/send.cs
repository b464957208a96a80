namespace Upas.Send;

/// <summary>
/// upas/send: the mailer smtpd hands messages to (mailer.md §1, §7).
///	send -r rcpt…	deliver the message on stdin: local users to /mail/box/user/mbox, others queued
///			for runq; undeliverable recipients are bounced to the sender, exit 0.
///	send rcpt…	the same, but failures are reported on stderr with exit 1 instead of bounced.
///	send -x addr…	print what each address resolves to: local!user, host!user, or "unknown user: addr".
/// A mailbox is a directory: mkdir $PLAN9/mail/box/ken && touch $PLAN9/mail/box/ken/mbox
/// In it, a forward file redirects the user's mail, a pipeto program takes it instead of mbox (mailer.md §3).
/// The delivery itself is Delivery (delivery.cs), which smtpd -L runs in its own process.
/// </summary>
static class Program
{
	static int Main(string[] argv)
	{
		try {
			return Run(argv);
		} catch (TempFail e) {
			Console.Error.WriteLine("Mail " + e.Message);
			return 1;
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException) {
			Console.Error.WriteLine("Mail " + e.Message);
			return 1;
		}
	}

	static int Usage()
	{
		Console.Error.WriteLine("usage: send [-r] rcpt... | send -x addr...");
		return 1;
	}

	static int Run(string[] argv)
	{
		bool rflag = false, xflag = false;
		var a = new Args("send", argv);
		for (char c; (c = a.Next()) != '\0';) {
			switch (c) {
			case 'r': rflag = true; break;
			case 'x': xflag = true; break;
			default: return Usage();
			}
		}
		var rcpts = a.Rest;
		if (rcpts.Length == 0)
			return Usage();
		var delivery = new Delivery(DefaultSender());
		if (xflag) {
			var x = delivery.Expand(rcpts);
			Print(Console.Out, x.Out);
			Print(Console.Error, x.Err);
			return x.Status;
		}

		var feeder = Feeder.Of();
		using var input = ReadInput();
		// the end of input may be the death of smtpd, not the end of the message: deliver no half
		if (rflag && feeder.Died()) {
			Console.Error.WriteLine("send: the sender died before the end of the message; nothing delivered");
			return 1;
		}
		var r = delivery.Deliver(input, rcpts, rflag);
		Print(Console.Error, r.Err);
		return r.Status;
	}

	static void Print(TextWriter w, IReadOnlyList<string> lines)
	{
		var o = new System.Text.StringBuilder();
		foreach (var l in lines)
			o.Append(l).Append('\n');
		w.Write(o.ToString());
	}

	/// <summary>The sender of a message without an envelope line: $upasname, else the invoking user.</summary>
	static string DefaultSender() =>
		Environment.GetEnvironmentVariable("upasname") is { Length: > 0 } un ? un : Posix.UserName();

	/// <summary>The message on stdin, kept as the spec says: the first 64 KB in memory, the rest in a spool file.</summary>
	static Content ReadInput()
	{
		using var stdin = Console.OpenStandardInput();
		if (Content.Read(stdin, Message.MaxSize) is { } c)
			return c;
		Console.Error.WriteLine("mail refused: message too long");
		Environment.Exit(1);
		return null!;
	}
}
