using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Helpers shared by the DATA and interop tests.</summary>
static class Wire
{
	public const string Helo = "client.9fans.net";

	/// <summary>
	/// Replaces the tree's mailer by the harness's recording mailer that also leaves N.done when it has read its
	/// input to the end: a mailer killed by smtpd (message refused) leaves N.args but never N.done.
	/// </summary>
	public static void MarkDeliveries(Tree tree)
	{
		tree.Write("/mailer", """
			#!/bin/sh
			d=$(dirname "$0")/cap
			n=$(ls "$d" | grep -c 'args$'); n=$((n+1))
			printf '%s\n' "$@" > "$d/$n.args"
			cat > "$d/$n.msg" && touch "$d/$n.done"
			exit 0

			""", 0x1ed);
	}

	/// <summary>How many mailer runs read their message to the end (needs MarkDeliveries).</summary>
	public static int Delivered(Tree tree) => Directory.GetFiles(tree.CapDir, "*.done").Length;

	/// <summary>Splits smtpd's output into reply lines (CR LF ends).</summary>
	public static List<string> Lines(string output)
	{
		var l = output.Split("\r\n").ToList();
		Assert.That(l[^1], Is.Empty, $"output does not end with CR LF: {output}");
		l.RemoveAt(l.Count - 1);
		return l;
	}

	/// <summary>Reads reply lines until smtpd closes the connection.</summary>
	public static List<string> Rest(Client c)
	{
		var l = new List<string>();
		while (c.Line() is { } line)
			l.Add(line);
		return l;
	}

	/// <summary>The replies after the greeting and the EHLO reply.</summary>
	public static List<string> AfterEhlo(List<string> replies)
	{
		var first = replies.FindIndex(r => r.StartsWith("250-", StringComparison.Ordinal));
		var last = first < 0 ? -1 : replies.FindIndex(first, r => r.StartsWith("250 ", StringComparison.Ordinal));
		Assert.That(last, Is.GreaterThan(0), "no EHLO reply in " + string.Join(" | ", replies));
		return replies.Skip(last + 1).ToList();
	}

	public static byte[] Bytes(string s) => Encoding.Latin1.GetBytes(s);

	/// <summary>
	/// smtpd on a real socket with no extra flags. SocketServer joins the flags after "-m mailer " and an empty
	/// list leaves a trailing space that socat turns into an empty argument (smtpd: usage), so the mailer is
	/// named again.
	/// </summary>
	public static SocketServer Serve(Tree tree) => new(tree, ["-m", tree.Mailer]);
}

/// <summary>
/// End of DATA (decisions #2): only CR LF . CR LF ends a message, so no SMTP-smuggling variant can end one and
/// start a second, hidden transaction; content normalisation; the line and message size limits.
/// </summary>
public class SmugglingTests
{
	const string Begin = "EHLO client.9fans.net\r\nMAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n";
	const string Smuggled = "MAIL FROM:<evil@9fans.net>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx";

	static readonly string[] Transaction = [
		"250 2.0.0 sender is 9fans.net!alice",
		"250 2.0.0 receiver is example.com!bob",
		"354 Input message; end with <CRLF>.<CRLF>",
		"250 2.5.0 sent",
		"221 2.0.0 Successful termination",
	];

	// The published end-of-data variants (SEC Consult's SMTP smuggling research, Dec 2023; hannob/smtpsmug and
	// suuhm/smtp_smuggling_checker test lists), each with what the mailer must get in its place: bare CR and bare
	// LF are line ends, NULs are dropped, a dot line that is not "." CR LF stays a line of the message.
	static readonly object[] Variants = [
		new object[] { "lflf", "\n.\n", "\n.\n" },
		new object[] { "crcr", "\r.\r", "\n.\n" },
		new object[] { "crlf", "\r.\n", "\n.\n" },
		new object[] { "lfcr", "\n.\r", "\n.\n" },
		new object[] { "lfcrlf", "\n.\r\n", "\n.\n" },
		new object[] { "crlflf", "\r\n.\n", "\n.\n" },
		new object[] { "crcrlf", "\r.\r\n", "\n.\n" },
		new object[] { "crlfcr", "\r\n.\r", "\n.\n" },
		new object[] { "nullbefore", "\r\n\0.\r\n", "\n.\n" },
		new object[] { "nullafter", "\r\n.\0\r\n", "\n\n" },
		new object[] { "nullbefore-cr", "\r\n\0.\r", "\n.\n" },
		new object[] { "nullbefore-lf", "\r\n\0.\n", "\n.\n" },
		new object[] { "lflf-crlf", "\n\n.\r\n", "\n\n.\n" },
	];

	static string FirstMessage(string variant) => "Subject: first\r\n\r\nhello" + variant + Smuggled + "\r\n.\r\nQUIT\r\n";

	// the envelope line ends in "remote from " and a space (smtpd.md §13.3); then smtpd's Authentication-Results
	// (issue 12): 9fans.net is outside the test DNS's zones (REFUSED), and the messages have no From:
	const string FromLine = "From 9fans.net!alice DATE remote from \n" +
		"Authentication-Results: example.com;\n\tspf=temperror smtp.mailfrom=alice@9fans.net;\n\tdkim=none;\n\tdmarc=none (no From: field)\n";

	static string Expected(string rsys, string normalised) => FromLine + $"""
		Received: from client.9fans.net ([{rsys}]) by testhost; DATE
		From: 9fans.net!alice
		To: example.com!bob
		Subject: first

		hello{normalised}MAIL FROM:<evil@9fans.net>
		RCPT TO:<victim@example.com>
		DATA
		Subject: smuggled

		x

		""";

	static void CheckOneMessage(Tree tree, List<string> replies, string rsys, string normalised)
	{
		Assert.Multiple(() => {
			Assert.That(Wire.AfterEhlo(replies), Is.EqualTo(Transaction));
			Assert.That(replies.Count(r => r.StartsWith("354", StringComparison.Ordinal)), Is.EqualTo(1));
			Assert.That(replies.Count(r => r == "250 2.5.0 sent"), Is.EqualTo(1));
			Assert.That(replies.Where(r => r.Contains("evil", StringComparison.Ordinal)), Is.Empty);
		});
		var caps = tree.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.Multiple(() => {
			Assert.That(caps[0].Args, Is.EqualTo(new[] { "-r", "--", "example.com!bob" }));
			Assert.That(Tree.NoDates(caps[0].Text), Is.EqualTo(Expected(rsys, normalised)));
			Assert.That(caps[0].Msg, Has.No.Member((byte)'\r').And.No.Member((byte)0));
			Assert.That(tree.Log().Where(l => l.Contains(" sent ", StringComparison.Ordinal)), Has.Exactly(1).Items);
		});
	}

	[TestCaseSource(nameof(Variants))]
	public void VariantOverPipes(string name, string variant, string normalised)
	{
		using var tree = new Tree();
		var r = tree.Run(Wire.Bytes(Begin + FirstMessage(variant)), [], null);
		Assert.That(r.Exit, Is.EqualTo(0), r.Out + r.Err);
		CheckOneMessage(tree, Wire.Lines(r.Out), "127.0.0.2", normalised);
	}

	[TestCaseSource(nameof(Variants))]
	public void VariantOverSocket(string name, string variant, string normalised)
	{
		using var tree = new Tree();
		using var srv = Wire.Serve(tree);
		using var c = srv.Connect();
		var replies = c.Reply();
		foreach (var cmd in Begin.Split("\r\n", StringSplitOptions.RemoveEmptyEntries)) {
			c.Send(cmd + "\r\n");
			replies.AddRange(c.Reply());
		}
		Assert.That(replies[^1], Does.StartWith("354 "));
		c.Send(FirstMessage(variant)); // the message, the smuggled transaction, the real end and QUIT: one write
		replies.AddRange(Wire.Rest(c));
		CheckOneMessage(tree, replies, "127.0.0.1", normalised);
	}

	[Test]
	public void EverythingInOneWriteOverSocket()
	{
		using var tree = new Tree();
		using var srv = Wire.Serve(tree);
		using var c = srv.Connect();
		var replies = c.Reply();
		c.Send(Begin + FirstMessage("\n.\r\n"));
		replies.AddRange(Wire.Rest(c));
		CheckOneMessage(tree, replies, "127.0.0.1", "\n.\n");
	}

	[Test]
	public void SmuggledTransactionEndedTheSameWay()
	{
		// the attacker's usual shape: the hidden message also ends with the bogus marker, then the real end
		using var tree = new Tree();
		var r = tree.Run(Begin + "Subject: first\r\n\r\nhello\n.\n" + Smuggled + "\n.\n\r\n.\r\nQUIT\r\n");
		var replies = Wire.Lines(r.Out);
		Assert.That(Wire.AfterEhlo(replies), Is.EqualTo(Transaction));
		var caps = tree.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.That(caps[0].Text, Does.EndWith("hello\n.\nMAIL FROM:<evil@9fans.net>\nRCPT TO:<victim@example.com>\nDATA\nSubject: smuggled\n\nx\n.\n\n"));
	}

	/// <summary>One transaction over pipes with the given content (after the 354, up to and including the end marker).</summary>
	static (List<string> replies, List<Capture> caps) Send(Tree tree, string content)
	{
		var r = tree.Run(Begin + content + "QUIT\r\n");
		Assert.That(r.Exit, Is.EqualTo(0), r.Out + r.Err);
		return (Wire.AfterEhlo(Wire.Lines(r.Out)), tree.Captures());
	}

	const string Head = FromLine + """
		Received: from client.9fans.net ([127.0.0.2]) by testhost; DATE
		From: 9fans.net!alice
		To: example.com!bob

		""";

	[Test]
	public void DotRightAfter354IsAnEmptyMessage()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, ".\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.That(Tree.NoDates(caps[0].Text), Is.EqualTo(Head));
	}

	[Test]
	public void DotStuffing()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, "Subject: dots\r\n\r\n..leading dot\r\n.x\r\n...\r\n..\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Is.EqualTo(Head + "Subject: dots\n\n.leading dot\nx\n..\n.\n"));
	}

	[Test]
	public void DotStuffedFirstLine()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, "..x\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Does.EndWith("\n.x\n"));
	}

	[Test]
	public void BareLfAndBareCrBecomeLineEnds()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, "Subject: bare\r\n\r\none\ntwo\rthree\r\r\nfour\n\nfive\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Is.EqualTo(Head + "Subject: bare\n\none\ntwo\nthree\n\nfour\n\nfive\n"));
	}

	[Test]
	public void BareLfInHeader()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, "Subject: lf\nTo: carol@9fans.net\n\nbody\n\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Is.EqualTo(FromLine + """
			Received: from client.9fans.net ([127.0.0.2]) by testhost; DATE
			From: 9fans.net!alice
			Subject: lf
			To: carol@9fans.net

			body


			"""));
	}

	[Test]
	public void NulBytesAreDropped()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, "Subject: n\0ul\r\n\r\na\0b\r\n\0\r\n\0\0.\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Is.EqualTo(Head + "Subject: nul\n\nab\n\n.\n"));
	}

	[Test]
	public void EightBitContentPassesUnchanged()
	{
		using var tree = new Tree();
		var (replies, caps) = Send(tree, "Subject: 8bit\r\n\r\n\u00e9t\u00e9 \u00ff\u0080\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(caps.Single().Msg[^7..], Is.EqualTo(new byte[] { 0xe9, (byte)'t', 0xe9, (byte)' ', 0xff, 0x80, (byte)'\n' }));
	}

	[Test]
	public void A20000ByteLinePasses()
	{
		using var tree = new Tree();
		var line = string.Concat(Enumerable.Range(0, 20000).Select(i => (char)('a' + i % 26)));
		var (replies, caps) = Send(tree, "Subject: long\r\n\r\n" + line + "\r\nend\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Is.EqualTo(Head + "Subject: long\n\n" + line + "\nend\n"));
	}

	[Test]
	public void A64KiBLinePasses()
	{
		using var tree = new Tree();
		var line = new string('y', 65536);
		var (replies, caps) = Send(tree, "Subject: limit\r\n\r\n" + line + "\r\n.\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(Tree.NoDates(caps.Single().Text), Is.EqualTo(Head + "Subject: limit\n\n" + line + "\n"));
	}

	[Test]
	public void ALineOver64KiBIsRefused()
	{
		using var tree = new Tree();
		Wire.MarkDeliveries(tree);
		var r = tree.Run(Begin + "Subject: too long\r\n\r\nstart\r\n" + new string('z', 65537) + "\r\nend\r\n.\r\nNOOP\r\nQUIT\r\n");
		var replies = Wire.AfterEhlo(Wire.Lines(r.Out));
		Assert.Multiple(() => {
			Assert.That(replies, Has.Count.EqualTo(6));
			Assert.That(replies[..3], Is.EqualTo(Transaction[..3]));
			Assert.That(replies[3], Does.StartWith("552 5.3.4 "));
			Assert.That(replies[4..], Is.EqualTo(new[] { "250 2.0.0 Nothing to see here. Move along ...", "221 2.0.0 Successful termination" }));
			Assert.That(Wire.Delivered(tree), Is.EqualTo(0));
			Assert.That(tree.Log().Where(l => l.Contains(" sent ", StringComparison.Ordinal)), Is.Empty);
		});
	}

	[Test]
	public void ALineOver64KiBInTheHeaderIsRefused()
	{
		using var tree = new Tree();
		Wire.MarkDeliveries(tree);
		var r = tree.Run(Begin + "X-Long: " + new string('h', 70000) + "\r\n\r\nbody\r\n.\r\nQUIT\r\n");
		var replies = Wire.AfterEhlo(Wire.Lines(r.Out));
		Assert.That(replies, Has.Count.EqualTo(5));
		Assert.That(replies[3], Does.StartWith("552 5.3.4 "));
		Assert.That(Wire.Delivered(tree), Is.EqualTo(0));
	}

	const string SmallConf = Tree.DefaultConf + "maxmsgsize 1000\n";

	[Test]
	public void EhloAdvertisesTheSizeLimit()
	{
		using var tree = new Tree(SmallConf);
		var lines = Wire.Lines(tree.Run("EHLO client.9fans.net\r\nQUIT\r\n").Out);
		Assert.That(lines, Does.Contain("250-SIZE 1000"));
		using var dflt = new Tree();
		Assert.That(Wire.Lines(dflt.Run("EHLO client.9fans.net\r\nQUIT\r\n").Out), Does.Contain("250-SIZE 67108864"));
	}

	[Test]
	public void MessageOverMaxmsgsizeIsRefusedAndTheSessionGoesOn()
	{
		using var tree = new Tree(SmallConf);
		Wire.MarkDeliveries(tree);
		var body = string.Concat(Enumerable.Repeat("0123456789012345678901234567890123456789012345678\r\n", 40)); // 2000 bytes
		var r = tree.Run(Begin + "Subject: big\r\n\r\n" + body + ".\r\nNOOP\r\n" +
			"MAIL FROM:<alice@9fans.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: small\r\n\r\nsmall\r\n.\r\nQUIT\r\n");
		var replies = Wire.AfterEhlo(Wire.Lines(r.Out));
		Assert.That(replies, Has.Count.EqualTo(10), string.Join("\n", replies));
		Assert.Multiple(() => {
			Assert.That(replies[..3], Is.EqualTo(Transaction[..3]));
			Assert.That(replies[3], Does.StartWith("552 5.3.4 "));
			Assert.That(replies[4], Is.EqualTo("250 2.0.0 Nothing to see here. Move along ..."));
			Assert.That(replies[5..], Is.EqualTo(Transaction));
		});
		Assert.That(Wire.Delivered(tree), Is.EqualTo(1), "only the small message is delivered");
		var caps = tree.Captures();
		Assert.That(Tree.NoDates(caps[^1].Text), Is.EqualTo(Head + "Subject: small\n\nsmall\n"));
	}

	[Test]
	public void MessageJustUnderMaxmsgsizePasses()
	{
		using var tree = new Tree(SmallConf);
		var body = string.Concat(Enumerable.Repeat("012345678901234567890123456789012345678901234567\r\n", 19)); // with the header, 946 bytes as counted
		var (replies, caps) = Send(tree, "Subject: fits\r\n\r\n" + body + ".\r\n");
		Assert.That(replies, Is.EqualTo(Transaction));
		Assert.That(caps.Single().Text, Does.EndWith(body.Replace("\r\n", "\n")));
	}

	[Test]
	public void MailSizeOverTheLimitIsRefused()
	{
		using var tree = new Tree(SmallConf);
		var r = tree.Run("EHLO client.9fans.net\r\nMAIL FROM:<a@9fans.net> SIZE=2000\r\nMAIL FROM:<a@9fans.net> SIZE=1000\r\nQUIT\r\n");
		var replies = Wire.AfterEhlo(Wire.Lines(r.Out));
		Assert.That(replies, Has.Count.EqualTo(3));
		Assert.That(replies[0], Does.StartWith("552 "));
		Assert.That(replies[1..], Is.EqualTo(new[] { "250 2.0.0 sender is 9fans.net!a", "221 2.0.0 Successful termination" }));
		Assert.That(tree.Captures(), Is.Empty);
	}
}
