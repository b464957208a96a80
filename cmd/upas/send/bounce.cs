using System.Text;

namespace Upas.Send;

/// <summary>The bounce send -r writes for recipients it cannot deliver to (mailer.md §5).</summary>
static class Bounce
{
	/// <summary>
	/// A message from postmaster (envelope sender /dev/null, so it is never bounced back) to the original
	/// sender: the reasons as text, the original message attached as message/rfc822.
	/// </summary>
	public static Message Make(Message orig, IEnumerable<(string Rcpt, string Reason)> failed, string from, DateTime now, Random? rnd = null)
	{
		var header = $"From: postmaster@{from}\nDate: {PlanTime.Ctime(now)}\nTo: {orig.Sender}\nSubject: bounced mail\n";
		var text = new StringBuilder();
		foreach (var (rcpt, reason) in failed)
			text.Append($"The attached mail from '{orig.Sender}'\nto '{rcpt}'\nfailed with error '{reason}'.\n");
		var bounce = MimeBounce.Compose(header, text.ToString(), orig.Body, rnd);
		return new Message("/dev/null", PlanTime.Ctime(now), bounce);
	}
}
