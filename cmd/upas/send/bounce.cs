namespace Upas.Send;

/// <summary>The bounce send -r writes for recipients it cannot deliver to (mailer.md §5).</summary>
static class Bounce
{
	/// <summary>
	/// A message from postmaster (envelope sender /dev/null, so it is never bounced back) to the original
	/// sender: the reasons as text, the original message attached as message/rfc822 (streamed, not copied).
	/// </summary>
	public static Message Make(Message orig, IEnumerable<(string Rcpt, string Reason)> failed, string from, DateTime now, Random? rnd = null)
	{
		var header = $"From: postmaster@{from}\nDate: {PlanTime.Ctime(now)}\nTo: {orig.Sender}\nSubject: bounced mail\n";
		var text = new System.Text.StringBuilder();
		foreach (var (rcpt, reason) in failed)
			text.Append($"The attached mail from '{orig.Sender}'\nto '{EnvAddr.Printable(rcpt)}'\nfailed with error '{reason}'.\n");
		var (head, tail) = MimeBounce.Parts(header, text.ToString(), rnd);
		return new Message("/dev/null", PlanTime.Ctime(now), Content.Concat(head, orig.Body, tail));
	}
}
