using System.Security.Cryptography;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 12 with issue 11's bound: a DKIM-signed message must be held until its body hash is known, and smtpd
/// holds it in a spool (64 KB in memory, the rest in an unlinked file), so a 100 MiB signed message through
/// smtpd -L still stays under 32 MiB of RSS and reaches the mailbox byte-exact after the added header lines.
/// </summary>
[TestFixture]
public class AuthStreamingTests
{
	const long MaxRssKb = 32 * 1024;

	[Test]
	public void HundredMiBSignedMessageThroughSmtpdL()
	{
		using var rsa = RSA.Create(2048);
		using var dns = new Dnsmasq(AuthDns.Txt("s1._domainkey.signer.test", "v=DKIM1; k=rsa; p=" + Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo())));
		using var t = new Tree($"defaultdomain example.com\ngreetdelay 0\nmaxmsgsize 200000000\ndnsserver {dns.Server}\n");
		t.Write("/sys/log/mail", "");
		t.Write("/mail/box/glenda/mbox", "", 0x1b6);
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));

		using var escaped = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		long escapedLength = 0;
		using (var l = new Listening(t, "127.0.0.1", "-m", t.P("/bin/upas/send"))) {
			using var c = l.Connect();
			c.Reply();
			Assert.That(c.Ask("HELO client.9fans.net"), Does.StartWith("250"));
			Assert.That(c.Ask("MAIL FROM:<alice@signer.test>"), Does.StartWith("250"));
			Assert.That(c.Ask("RCPT TO:<glenda>"), Does.StartWith("250"));
			Assert.That(c.Ask("DATA"), Does.StartWith("354"));
			// a signature whose body hash is wrong: the whole body is hashed all the same, then it fails
			c.Send(Encoding.ASCII.GetBytes(
				"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=signer.test; s=s1;\r\n" +
				"\th=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n" +
				"From: alice@signer.test\r\nSubject: big\r\n\r\n"));
			var x = new string('x', 70);
			var chunk = new StringBuilder();
			long sent = 0;
			for (var i = 0; sent < 100L << 20; i++) {
				var from = i % 1000 == 0; // the mailbox escapes these
				var line = (from ? "From " : "line ") + x;
				chunk.Append(line).Append("\r\n");
				var lf = Encoding.ASCII.GetBytes(line + "\n");
				if (from) {
					escaped.AppendData(" "u8);
					escapedLength++;
				}
				escaped.AppendData(lf);
				escapedLength += lf.Length;
				sent += lf.Length;
				if (chunk.Length > 1 << 20) {
					c.Send(Encoding.ASCII.GetBytes(chunk.ToString()));
					chunk.Clear();
				}
			}
			c.Send(Encoding.ASCII.GetBytes(chunk.Append(".\r\n").ToString()));
			Assert.That(c.Line(180_000), Is.EqualTo("250 2.5.0 sent"));
			var hwm = File.ReadLines($"/proc/{l.P.Id}/status").First(s => s.StartsWith("VmHWM:"));
			var rss = long.Parse(hwm.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
			TestContext.Out.WriteLine($"smtpd -L peak RSS {rss} KB");
			Assert.That(rss, Is.LessThan(MaxRssKb), $"smtpd -L peak RSS {rss} KB for a 100 MiB signed message");
			c.Ask("QUIT");
		}
		var box = t.P("/mail/box/glenda/mbox");
		byte[] head;
		using (var f = File.OpenRead(box)) {
			head = new byte[64 * 1024];
			head = head[..f.Read(head)];
		}
		var text = Encoding.Latin1.GetString(head);
		Assert.That(text, Does.Match("^From signer\\.test!alice .*\nAuthentication-Results: example\\.com;\n\tspf=none smtp\\.mailfrom=alice@signer\\.test;\n\tdkim=[a-z]+ .*header\\.d=signer\\.test header\\.s=s1;\n\tdmarc=none header\\.from=signer\\.test\nReceived: from client\\.9fans\\.net "));
		Assert.That(text, Does.Contain("\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=signer.test; s=s1;\n\th=from:subject;"));
		var bodyAt = text.IndexOf("\n\n", StringComparison.Ordinal) + 2;
		using var got = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		using (var f = File.OpenRead(box)) {
			f.Position = bodyAt;
			var buf = new byte[1 << 20];
			for (long left = escapedLength; left > 0;) {
				var n = f.Read(buf, 0, (int)Math.Min(buf.Length, left));
				Assert.That(n, Is.GreaterThan(0), "mailbox too short");
				got.AppendData(buf, 0, n);
				left -= n;
			}
		}
		Assert.That(got.GetHashAndReset(), Is.EqualTo(escaped.GetHashAndReset()), "the body as sent, byte for byte");
	}
}
