using System.Diagnostics;
using MailKit.Security;
using MimeKit;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Real SMTP clients against smtpd on a real socket (socat, as listen(8) would run it): each message must reach
/// the mailer byte for byte as expected; pipelining; pipes (-n) and socket give the same session.
/// </summary>
public class InteropTests
{
	const string FromLine = "From 9fans.net!alice DATE remote from \n";
	const string Received = "Received: from client.9fans.net ([127.0.0.1]) by testhost; DATE\n";
	// smtpd's first header field (issue 12): 9fans.net is outside the test DNS's zones, so SPF and DMARC are temperror
	const string AuthRes = "Authentication-Results: example.com;\n\tspf=temperror smtp.mailfrom=alice@9fans.net;\n\tdkim=none;\n\tdmarc=temperror header.from=9fans.net\n";

	static string Need(string tool)
	{
		if (!Repo.Have(tool))
			Assert.Fail($"{tool} is not installed: run sys/lib/upas/prereq");
		return tool;
	}

	/// <summary>Runs a client program to its end; fails the test on a non-zero exit.</summary>
	static string RunClient(string prog, params string[] args)
	{
		var psi = new ProcessStartInfo(Need(prog)) {
			UseShellExecute = false,
			RedirectStandardInput = true,
			RedirectStandardOutput = true,
			RedirectStandardError = true,
		};
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		using var p = Process.Start(psi)!;
		p.StandardInput.Close();
		var o = p.StandardOutput.ReadToEndAsync();
		var e = p.StandardError.ReadToEndAsync();
		if (!p.WaitForExit(60_000)) {
			p.Kill(true);
			Assert.Fail($"{prog} did not finish within 60 s");
		}
		Assert.That(p.ExitCode, Is.EqualTo(0), $"{prog} failed:\n{o.Result}\n{e.Result}");
		return o.Result + e.Result;
	}

	static void CheckOne(Tree tree, string[] args, string expected)
	{
		var caps = tree.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.Multiple(() => {
			Assert.That(caps[0].Args, Is.EqualTo(args));
			Assert.That(Tree.NoDates(caps[0].Text), Is.EqualTo(expected));
			Assert.That(tree.Log().Count(l => l.StartsWith("[client.9fans.net/127.0.0.1] 9fans.net!alice sent ", StringComparison.Ordinal)), Is.EqualTo(1));
		});
	}

	[TestCase(false)]
	[TestCase(true)]
	public void Swaks(bool pipeline)
	{
		Need("swaks");
		using var tree = new Tree();
		using var srv = Wire.Serve(tree);
		var args = new List<string> {
			"--server", $"127.0.0.1:{srv.Endpoint.Port}", "--helo", Wire.Helo,
			"--from", "alice@9fans.net", "--to", "bob@example.com",
			"--header", "Subject: swaks", "--body", "hello from swaks",
			// swaks' own Date:, Message-Id: and X-Mailer: vary: replace them
			"--header", "Date: Thu, 26 Nov 2026 03:00:00 +0000",
			"--header", "Message-Id: <swaks.1@client.9fans.net>",
			"--header", "X-Mailer: swaks",
			"--timeout", "30",
		};
		if (pipeline)
			args.Add("--pipeline");
		var log = RunClient("swaks", [.. args]);
		Assert.That(log, Does.Contain("<-  250 2.5.0 sent").And.Contain("<-  221 2.0.0 Successful termination"));
		CheckOne(tree, ["-r", "--", "example.com!bob"], FromLine + AuthRes + Received + """
			Date: Thu, 26 Nov 2026 03:00:00 +0000
			To: bob@example.com
			From: alice@9fans.net
			Subject: swaks
			Message-Id: <swaks.1@client.9fans.net>
			X-Mailer: swaks

			hello from swaks



			""");
	}

	const string PythonClient = """
		import smtplib, sys
		msg = ("From: Alice <alice@9fans.net>\r\n"
			"To: Bob <bob@example.com>, carol\r\n"
			"Subject: smtplib\r\n"
			"Date: Thu, 26 Nov 2026 03:00:00 +0000\r\n"
			"Message-ID: <py.1@client.9fans.net>\r\n"
			"\r\n"
			"hello from smtplib\n"
			".leading dot\r\n"
			".\r\n"
			"..two\r\n"
			"last line")
		s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname='client.9fans.net', timeout=30)
		refused = s.sendmail('alice@9fans.net', ['bob@example.com', 'carol@example.com'], msg)
		assert refused == {}, refused
		print(s.quit())
		""";

	[Test]
	public void PythonSmtplib()
	{
		using var tree = new Tree();
		using var srv = Wire.Serve(tree);
		var log = RunClient("python3", "-c", PythonClient, "127.0.0.1", srv.Endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
		Assert.That(log, Does.Contain("221"));
		// smtplib turns every line end into CR LF, stuffs dots and adds the missing final line end
		CheckOne(tree, ["-r", "--", "example.com!bob", "example.com!carol"], FromLine + AuthRes + Received + """
			From: Alice <alice@9fans.net>
			To: Bob <bob@example.com>, carol@client.9fans.net
			Subject: smtplib
			Date: Thu, 26 Nov 2026 03:00:00 +0000
			Message-ID: <py.1@client.9fans.net>

			hello from smtplib
			.leading dot
			.
			..two
			last line

			""");
	}

	[Test]
	public void MailKitSmtpClient()
	{
		using var tree = new Tree();
		using var srv = Wire.Serve(tree);
		var m = new MimeMessage();
		m.From.Add(new MailboxAddress("Alice", "alice@9fans.net"));
		m.To.Add(new MailboxAddress("Bob", "bob@example.com"));
		m.Subject = "MailKit";
		m.Date = new DateTimeOffset(2026, 11, 26, 3, 0, 0, TimeSpan.Zero);
		m.MessageId = "mailkit.1@client.9fans.net";
		m.Body = new TextPart("plain") { Text = "hello from MailKit\r\n.leading dot\r\n.\r\n" };
		using (var c = new MailKit.Net.Smtp.SmtpClient { LocalDomain = Wire.Helo, Timeout = 30_000 }) {
			c.Connect(srv.Endpoint.Address.ToString(), srv.Endpoint.Port, SecureSocketOptions.None);
			Assert.That(c.Capabilities.HasFlag(MailKit.Net.Smtp.SmtpCapabilities.Pipelining), Is.True);
			Assert.That(c.MaxSize, Is.EqualTo(67108864));
			var reply = c.Send(m);
			Assert.That(reply, Is.EqualTo("2.5.0 sent").Or.EqualTo("sent"));
			c.Disconnect(true);
		}
		CheckOne(tree, ["-r", "--", "example.com!bob"], FromLine + AuthRes + Received + """
			From: Alice <alice@9fans.net>
			Date: Thu, 26 Nov 2026 03:00:00 +0000
			Subject: MailKit
			Message-Id: <mailkit.1@client.9fans.net>
			To: Bob <bob@example.com>
			MIME-Version: 1.0
			Content-Type: text/plain; charset=utf-8

			hello from MailKit
			.leading dot
			.

			""");
	}

	const string PipelinedMessage = "From: Alice <alice@9fans.net>\r\nSubject: pipelined\r\n\r\nline one\r\n..dot\r\n.\r\n";

	[Test]
	public void Pipelining()
	{
		using var tree = new Tree();
		using var srv = Wire.Serve(tree);
		using var c = srv.Connect();
		Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
		c.Send("EHLO client.9fans.net\r\nMAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\n" +
			"RCPT TO:<carol@example.com>\r\nDATA\r\n");
		var ehlo = c.Reply();
		Assert.That(ehlo[0], Is.EqualTo("250-example.com you are client.9fans.net"));
		Assert.That(ehlo, Does.Contain("250-PIPELINING"));
		Assert.That(new[] { c.Line(), c.Line(), c.Line(), c.Line() }, Is.EqualTo(new[] {
			"250 2.0.0 sender is 9fans.net!alice",
			"250 2.0.0 receiver is example.com!bob",
			"250 2.0.0 receiver is example.com!carol",
			"354 Input message; end with <CRLF>.<CRLF>",
		}));
		// the message, a second transaction and QUIT in one write
		c.Send(PipelinedMessage + "RSET\r\nMAIL FROM:<alice@9fans.net>\r\nRCPT TO:<dave@example.com>\r\nNOOP\r\nQUIT\r\n");
		Assert.That(Wire.Rest(c), Is.EqualTo(new[] {
			"250 2.5.0 sent",
			"250 2.0.0 ok",
			"250 2.0.0 sender is 9fans.net!alice",
			"250 2.0.0 receiver is example.com!dave",
			"250 2.0.0 Nothing to see here. Move along ...",
			"221 2.0.0 Successful termination",
		}));
		CheckOne(tree, ["-r", "--", "example.com!bob", "example.com!carol"], FromLine + AuthRes + Received + """
			To: example.com!bob, example.com!carol
			From: Alice <alice@9fans.net>
			Subject: pipelined

			line one
			.dot

			""");
	}

	// a dialogue with errors, two messages, a reset transaction and every kind of reply
	static readonly string[] Dialogue = [
		"EHLO client.9fans.net",
		"HELP",
		"BOGUS command",
		"RCPT TO:<bob@example.com>",
		"MAIL FROM:<alice@9fans.net> SIZE=200 BODY=8BITMIME",
		"MAIL FROM:<again@9fans.net>",
		"RCPT TO:<bob@example.com>",
		"RCPT TO:<carol>",
		"DATA",
		"Subject: one\r\nTo: bob, Carol <carol@example.com>\r\n\r\nfirst\r\n..dot\r\n.",
		"DATA",
		"mail from:<alice@9fans.net>",
		"rcpt to:<bob@example.com>",
		"RSET",
		"MAIL FROM:<>",
		"RCPT TO:<postmaster@example.com>",
		"NOOP",
		"DATA",
		"From: MAILER-DAEMON@9fans.net\r\nSubject: two\r\n\r\nsecond\r\n.",
		"QUIT",
	];

	static (List<string> replies, List<string> mail, string[] log) Converse(Tree tree, Client c)
	{
		var replies = c.Reply();
		foreach (var cmd in Dialogue) {
			c.Send(cmd + "\r\n");
			replies.AddRange(c.Reply());
		}
		Assert.That(c.Line(5000), Is.Null, "smtpd did not hang up after QUIT");
		var mail = tree.Captures().Select(k => string.Join(" ", k.Args) + "\n" + Tree.NoDates(k.Text)).ToList();
		return (replies, mail, tree.Log());
	}

	[Test]
	public void PipesAndSocketAgree()
	{
		using var pt = new Tree(peer: "127.0.0.1");
		var p = Process.Start(pt.Start([]))!;
		_ = p.StandardError.ReadToEndAsync();
		(List<string> replies, List<string> mail, string[] log) pipes;
		using (var c = new Client(p))
			pipes = Converse(pt, c);

		using var st = new Tree();
		(List<string> replies, List<string> mail, string[] log) sock;
		using (var srv = Wire.Serve(st))
		using (var c = srv.Connect())
			sock = Converse(st, c);

		Assert.Multiple(() => {
			Assert.That(sock.replies, Is.EqualTo(pipes.replies));
			Assert.That(sock.mail, Is.EqualTo(pipes.mail));
			Assert.That(sock.log, Is.EqualTo(pipes.log));
		});
		// and what they agree on is right
		Assert.That(Wire.AfterEhlo(pipes.replies), Is.EqualTo(new[] {
			"250 2.0.0 See http://www.ietf.org/rfc/rfc2821",
			"500 5.5.1 illegal command or bad syntax",
			"503 5.5.1 Need MAIL before RCPT",
			"250 2.0.0 sender is 9fans.net!alice",
			"503 5.5.1 Sender already specified",
			"250 2.0.0 receiver is example.com!bob",
			"250 2.0.0 receiver is carol",
			"354 Input message; end with <CRLF>.<CRLF>",
			"250 2.5.0 sent",
			"503 2.5.2 Data without MAIL FROM:",
			"250 2.0.0 sender is 9fans.net!alice",
			"250 2.0.0 receiver is example.com!bob",
			"250 2.0.0 ok",
			"250 2.0.0 sender is /dev/null",
			"250 2.0.0 receiver is example.com!postmaster",
			"250 2.0.0 Nothing to see here. Move along ...",
			"354 Input message; end with <CRLF>.<CRLF>",
			"250 2.5.0 sent",
			"221 2.0.0 Successful termination",
		}));
		Assert.That(pipes.mail, Is.EqualTo(new[] {
			"-r -- example.com!bob carol\n" + FromLine + AuthRes.Replace("temperror header.from=9fans.net", "none (no From: field)") + Received + """
				From: 9fans.net!alice
				Subject: one
				To: bob@client.9fans.net, Carol <carol@example.com>

				first
				.dot

				""",
			"-r -- example.com!postmaster\n" + FromLine.Replace("9fans.net!alice", "/dev/null") + AuthRes.Replace("smtp.mailfrom=alice@9fans.net", "smtp.helo=client.9fans.net") + Received + """
				To: example.com!postmaster
				From: MAILER-DAEMON@9fans.net
				Subject: two

				second

				""",
		}));
	}
}
