using System.Text;

namespace Upas;

/// <summary>
/// The MIME shape of Plan 9's returned mail (mailer.md §5), shared by send's bounces and runq's: the caller's
/// header fields, a text/plain part with the reasons, the original message attached as message/rfc822.
/// </summary>
public static class MimeBounce
{
	/// <summary>header: complete field lines, each ending in LF; text: the reasons (an LF is added if it lacks one); message: as attached.</summary>
	public static byte[] Compose(string header, string text, ReadOnlySpan<byte> message, Random? rnd = null)
	{
		var (head, tail) = Parts(header, text, rnd);
		return [.. head, .. message, .. tail];
	}

	/// <summary>What goes before and after the attached message, for a caller that streams the message in between.</summary>
	public static (byte[] Head, byte[] Tail) Parts(string header, string text, Random? rnd = null)
	{
		rnd ??= Random.Shared;
		var b = new StringBuilder("upas-");
		for (var i = 0; i < 26; i++)
			b.Append((char)('a' + rnd.Next(26)));
		var boundary = b.ToString();
		if (!text.EndsWith('\n'))
			text += "\n";
		var head = header +
			$"MIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"{boundary}\"\nContent-Disposition: inline\n\n" +
			$"This is a multi-part message in MIME format.\n--{boundary}\n" +
			"Content-Disposition: inline\nContent-Type: text/plain; charset=\"US-ASCII\"\nContent-Transfer-Encoding: 7bit\n\n" +
			text +
			$"--{boundary}\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n";
		return (Encoding.Latin1.GetBytes(head), Encoding.Latin1.GetBytes($"--{boundary}--\n"));
	}
}
