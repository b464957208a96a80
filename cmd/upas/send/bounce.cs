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
		rnd ??= Random.Shared;
		var b = new StringBuilder("upas-");
		for (var i = 0; i < 26; i++)
			b.Append((char)('a' + rnd.Next(26)));
		var boundary = b.ToString();
		var t = new StringBuilder();
		t.Append($"From: postmaster@{from}\n");
		t.Append($"Date: {PlanTime.Ctime(now)}\n");
		t.Append($"To: {orig.Sender}\n");
		t.Append("Subject: bounced mail\n");
		t.Append("MIME-Version: 1.0\n");
		t.Append("Content-Type: multipart/mixed;\n");
		t.Append($"\tboundary=\"{boundary}\"\n");
		t.Append("Content-Disposition: inline\n");
		t.Append('\n');
		t.Append("This is a multi-part message in MIME format.\n");
		t.Append($"--{boundary}\n");
		t.Append("Content-Disposition: inline\n");
		t.Append("Content-Type: text/plain; charset=\"US-ASCII\"\n");
		t.Append("Content-Transfer-Encoding: 7bit\n");
		t.Append('\n');
		foreach (var (rcpt, reason) in failed) {
			t.Append($"The attached mail from '{orig.Sender}'\n");
			t.Append($"to '{rcpt}'\n");
			t.Append($"failed with error '{reason}'.\n");
		}
		t.Append($"--{boundary}\n");
		t.Append("Content-Type: message/rfc822\n");
		t.Append("Content-Disposition: inline\n");
		t.Append('\n');
		var head = Encoding.Latin1.GetBytes(t.ToString());
		var tail = Encoding.Latin1.GetBytes($"--{boundary}--\n");
		return new Message("/dev/null", PlanTime.Ctime(now), [.. head, .. orig.Body, .. tail]);
	}
}
