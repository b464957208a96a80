using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

public class Rfc822Tests
{
	// the product's own rewrites, not copies: smtpd's (smtpd.md §13.3 item 6, every address without '@' gets "@him")
	// and smtp's (smtp.md §8.3 item 5: bang→@, "@hostdomain" when there is no '@', bare source routes in <…>)
	static string Smtpd(string a) => Upas.Smtpd.Session.Qualify(a, "client.example.org");

	static string Smtp(string a, bool bracketed) => Upas.Smtp.Addr.Header(a, bracketed, "testhost.example.com");

	// smtp.md §6.1: the client's own conversion.
	static string BangToAt(string a) => Upas.Smtp.Addr.BangToAt(a);

	// What smtpd writes: the fields, then the rest verbatim.
	static string SmtpdOut(string input)
	{
		var h = Rfc822.Parse(input, Smtpd);
		return string.Concat(h.Fields.Select(f => f.Text + "\n")) + input[h.Consumed..];
	}

	// What smtp writes (items 5–7 of smtp.md §8.3): the fields, an LF unless the rest starts with one, the rest.
	static string SmtpOut(string input)
	{
		var h = Rfc822.Parse(input, Smtp, "GMT", TimeSpan.Zero);
		var rest = input[h.Consumed..];
		return string.Concat(h.Fields.Select(f => f.Text + "\n")) + (rest.StartsWith('\n') ? "" : "\n") + rest;
	}

	[TestCase("a.x.y!b.p.o!c!d", "@a.x.y:c!d@b.p.o")]
	[TestCase("a.com!b.com!c.com!u", "@a.com,@b.com:u@c.com")]
	[TestCase("example.org!kremvax!u", "kremvax!u@example.org")]
	[TestCase("kremvax!alice", "kremvax!alice")]
	[TestCase("alice", "alice")]
	public void TestHelperBangToAt(string a, string want) => Assert.That(BangToAt(a), Is.EqualTo(want));

	// smtpd.md §13.4 and more, smtpd's rewrite.
	[TestCase("From: Alice <alice>\nTo: bob, c!d, e@f.g\nSubject: hi\n\nbody\n",
		"From: Alice <alice@client.example.org>\nTo: bob@client.example.org, c!d@client.example.org, e@f.g\nSubject: hi\n\nbody\n")]
	[TestCase("Subject: no from\nCc: dave\n\nbody\n", "Subject: no from\nCc: dave@client.example.org\n\nbody\n")]
	[TestCase("X-Foo bar\nSubject: hi\n\nbody\n", "BadHeader: X-Foo bar\nSubject: hi\n\nbody\n")]
	[TestCase("To: a,\n  b\n\nbody\n", "To: a@client.example.org,\n  b@client.example.org\n\nbody\n")]
	[TestCase("Return-Path: <x@y>\n\n", "Return-Path: <x@y>\n\n")]
	[TestCase("Return-Path: <x>\n\n", "Return-Path: <x>\n\n")]
	[TestCase("Return_path: x\n\n", "Return_path: x@client.example.org\n\n")]
	[TestCase("From: alice (Alice Liddell)\n\n", "From: alice@client.example.org (Alice Liddell)\n\n")]
	[TestCase("From: \"Doe, John\" <jd>, x\n\n", "From: \"Doe, John\" <jd@client.example.org>, x@client.example.org\n\n")]
	[TestCase("To: friends: a, b;\n\n", "To: friends: a@client.example.org, b@client.example.org;\n\n")]
	[TestCase("To: undisclosed-recipients:;\n\n", "To: undisclosed-recipients:;\n\n")]
	[TestCase("To: <@a.com,@b.com:u@c.com>, @x:y@z\n\n", "To: <@a.com,@b.com:u@c.com>, @x:y@z\n\n")]
	[TestCase("Sender: x@y.z\nReply-To: a\n\n", "Sender: x@y.z\nReply-To: a@client.example.org\n\n")]
	[TestCase("From: <>\n\n", "From: <>\n\n")]
	[TestCase("From bob Mon Nov 23 23:00:00 GMT 2026\nSubject: x\n\nb\n", "Subject: x\n\nb\n")]
	[TestCase("Subject: hi\nbody without a blank line\n", "Subject: hi\nbody without a blank line\n")]
	[TestCase("Subject: caf\u00e9 \u00ff\nFrom: J\u00f6rg <j\u00f6rg>\n\n\u00e9t\u00e9\n", "Subject: caf\u00e9 \u00ff\nFrom: J\u00f6rg <j\u00f6rg@client.example.org>\n\n\u00e9t\u00e9\n")]
	[TestCase("Subject:  a\n\tb (c\n d)  \nCc: x (one (two)\n three), y\n\n", "Subject:  a\n\tb (c\n d)  \nCc: x@client.example.org (one (two)\n three), y@client.example.org\n\n")]
	[TestCase("To: bob @ example.com (Bob) , c\n\n", "To: bob@example.com   (Bob) , c@client.example.org\n\n")]
	public void SmtpdRewrite(string input, string want) => Assert.That(SmtpdOut(input), Is.EqualTo(want));

	// smtp.md §8.4, smtp's rewrite.
	[TestCase("From: Alice <alice>\n\n", "From: Alice <alice@testhost.example.com>\n\n")]
	[TestCase("X-Foo bar\nSubject: s\n\n", "BadHeader: X-Foo bar\nSubject: s\n\n")]
	[TestCase("To: @a.com:u@b.com, a.com!b.com!c\n\n", "To: <@a.com:u@b.com>, <@a.com:c@b.com>\n\n")]
	[TestCase("To: Joe <a.com!b.com!c>, <@a.com:u@b.com>\n\n", "To: Joe <@a.com:c@b.com>, <@a.com:u@b.com>\n\n")]
	[TestCase("From: x!y\n\n", "From: x!y@testhost.example.com\n\n")]
	[TestCase("Sender: x@y.z\nReply-To: a\n\n", "Sender: x@y.z\nReply-To: a@testhost.example.com\n\n")]
	[TestCase("To:\n\n", "To:\n\n")]
	[TestCase("just a body\n", "\njust a body\n")]
	[TestCase("Date: Mon, 23 Nov 2026 23:00:00 +0000\nFrom bob Mon Nov 23 23:00:00 GMT 2026\nmore\n",
		"Date: Mon, 23 Nov 2026 23:00:00 +0000\n\nFrom bob Mon Nov 23 23:00:00 GMT 2026\nmore\n")]
	[TestCase("Return_path: example.org!x\n\n", "Return_path: x@example.org\n\n")]
	[TestCase("Return_path: <x@y>\nSubject: s\n\n", "BadHeader: Return_path: <x@y>\nSubject: s\n\n")]
	[TestCase("Return-Path: <x>\n\n", "Return-Path: <x>\n\n")]
	public void SmtpRewrite(string input, string want) => Assert.That(SmtpOut(input), Is.EqualTo(want));

	// SmtpOut above is checked against smtp's real writer: the converter's output, CR LF and dot-stuffing undone,
	// is the lines it adds (Message-ID:, From:, Date: when missing) followed by exactly SmtpOut's text.
	[TestCase("From: Alice <alice>\nTo: x!y\n\nbody\n.dot\n")]
	[TestCase("To: @a.com:u@b.com, a.com!b.com!c\nX-Foo bar\nSubject: s\n\n")]
	[TestCase("just a body\n")]
	[TestCase("Date: Mon, 23 Nov 2026 23:00:00 +0000\nFrom bob Mon Nov 23 23:00:00 GMT 2026\nmore\n")]
	[TestCase("Return_path: example.org!x\nMessage-ID: <1@x>\n\n")]
	public void SmtpOutIsWhatTheConverterWrites(string input)
	{
		var conv = new Upas.Smtp.Converter(new MemoryStream(Encoding.Latin1.GetBytes(input)), "testhost.example.com", "example.org!alice");
		var outp = new MemoryStream();
		conv.Write(outp, null, null);
		var text = Encoding.Latin1.GetString(outp.ToArray()).Replace("\r\n", "\n");
		text = string.Join('\n', text.Split('\n').Select(l => l.StartsWith("..", StringComparison.Ordinal) ? l[1..] : l));
		var want = SmtpOut(input);
		Assert.That(text, Does.EndWith(want));
		var added = text[..^want.Length].Split('\n', StringSplitOptions.RemoveEmptyEntries);
		Assert.That(added.All(l => l.StartsWith("Message-ID: ") || l.StartsWith("From: ") || l.StartsWith("Date: ")), Is.True, string.Join(" | ", added));
	}

	[Test]
	public void SmtpFullExample()
	{
		var input = "From example.org!alice Mon Nov 23 23:00:00 GMT 2026 remote from sys\n" +
			"Subject: test\nTo: bob, example.com!carol, dave@example.net\nCc: Eve <eve>\n\nbody line\n.dotline\n";
		var h = Rfc822.Parse(input, Smtp, "GMT", TimeSpan.Zero);
		Assert.That(h.EnvelopeFrom, Is.EqualTo("example.org!alice"));
		Assert.That(h.EnvelopeDate, Is.EqualTo("Mon, 23 Nov 2026 23:00:00 +0000"));
		Assert.That(h.HasOriginator || h.HasDate || h.HasMessageId, Is.False);
		Assert.That(h.HasDestination, Is.True);
		Assert.That(SmtpOut(input), Is.EqualTo("Subject: test\nTo: bob@testhost.example.com, carol@example.com, dave@example.net\n" +
			"Cc: Eve <eve@testhost.example.com>\n\nbody line\n.dotline\n"));
	}

	// Which fields set which flag, case-insensitively; and which syntax makes a recognised field unparseable.
	[TestCase("Cc: dave\n\n", false, true, false, false, 0)]
	[TestCase("To:\n\n", false, true, false, false, 0)]
	[TestCase("Bcc: x\nResent-To: y\nResent-Cc: z\nResent-Bcc: w\n\n", false, true, false, false, 0)]
	[TestCase("Return_path: x@y\n\n", true, false, false, false, 0)]
	[TestCase("Return-Path: <x@y>\n\n", false, false, false, false, 0)]
	[TestCase("FROM: a\n\n", true, false, false, false, 0)]
	[TestCase("Sender: a\n\n", true, false, false, false, 0)]
	[TestCase("Reply-To: g: a;\n\n", true, false, false, false, 0)]
	[TestCase("Resent-From: a\nResent-Sender: b\nResent-Reply-To: c, d\n\n", true, false, false, false, 0)]
	[TestCase("Date: whenever\nMessage-ID: <1@x>\n\n", false, false, true, true, 0)]
	[TestCase("resent-date: x\nmessage-id:\n\n", false, false, true, true, 0)]
	[TestCase("Date:\nSubject: s\n\n", false, false, false, false, 1)]            // Date needs a value
	[TestCase("Sender: a, b\nSubject: s\n\n", false, false, false, false, 1)]     // one mailbox only
	[TestCase("From: g: a;\nSubject: s\n\n", false, false, false, false, 1)]      // no groups in From:
	[TestCase("To: Alice Smith\nSubject: s\n\n", false, false, false, false, 1)]  // a phrase is no address
	[TestCase("Return_path: <x@y>\nSubject: s\n\n", false, false, false, false, 1)]
	[TestCase("X-To: a\nSubject: s\n\n", false, false, false, false, 0)]
	public void Classes(string input, bool orig, bool dest, bool date, bool msgid, int bad)
	{
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That((h.HasOriginator, h.HasDestination, h.HasDate, h.HasMessageId), Is.EqualTo((orig, dest, date, msgid)));
		Assert.That(h.Fields.Count(f => f.Name == "BadHeader"), Is.EqualTo(bad));
	}

	[Test]
	public void CcOnlyHeader()
	{
		var h = Rfc822.Parse("Subject: no from\nCc: dave\n\nbody\n", Smtpd);
		Assert.That(h.HasDestination, Is.True);
		Assert.That(h.HasOriginator, Is.False);
		Assert.That(h.Fields.Select(f => f.Class), Is.EqualTo(new[] { FieldClass.Other, FieldClass.Destination }));
	}

	[TestCase("From: Alice <alice>\n\n", "alice")]
	[TestCase("Sender: x!y@z (c)\n\n", "x!y@z")]
	[TestCase("To: friends: a, b;\n\n", "a")]
	[TestCase("Return_path: @r:u@h\n\n", "@r:u@h")]
	[TestCase("From: <>, bob\n\n", "")]
	[TestCase("To:\n\n", null)]
	[TestCase("Subject: a@b\n\n", null)]
	public void FirstAddress(string input, string? want)
	{
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields[0].FirstAddress, Is.EqualTo(want));
	}

	[Test]
	public void FieldNames()
	{
		var h = Rfc822.Parse("X-Foo : bar\nsubject:x\nX<a>: y\nBadline\nTo: z\n\n", Smtpd);
		Assert.That(h.Fields.Select(f => f.Name), Is.EqualTo(new[] { "X-Foo", "subject", "X<a>", "BadHeader", "To" }));
		Assert.That(h.Fields[0].Text, Is.EqualTo("X-Foo : bar"));
	}

	[Test]
	public void RewriteGetsEachAddressOnce()
	{
		var seen = new List<(string, bool)>();
		var h = Rfc822.Parse("From: a, B <b>\nTo: g: c, <d>;, @r:e@f, <>\nSubject: x@y\nReturn-Path: <q>\nBad line\nX-T: z\n\n",
			(a, br) => { seen.Add((a, br)); return a.ToUpperInvariant(); });
		Assert.That(seen, Is.EqualTo(new[] { ("a", false), ("b", true), ("c", false), ("d", true), ("@r:e@f", false) }));
		Assert.That(h.Fields[1].Text, Is.EqualTo("To: g: C, <D>;, @R:E@F, <>"));
	}

	[Test]
	public void NoFields()
	{
		foreach (var input in new[] { "just a body\n", "just a body", "\nbody\n", "", "Subject: at the end, no LF", "  indented\nSubject: s\n" }) {
			var h = Rfc822.Parse(input, Smtpd);
			Assert.That(h.Fields, Is.Empty, input);
			Assert.That(h.Consumed, Is.Zero, input);
			Assert.That(h.HasOriginator || h.HasDestination || h.HasDate || h.HasMessageId, Is.False);
		}
	}

	[Test]
	public void BlankLineIsPartOfTheRest()
	{
		var input = "Subject: hi\n\nbody\n";
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Consumed, Is.EqualTo(12));
		Assert.That(input[h.Consumed..], Is.EqualTo("\nbody\n"));
	}

	[Test]
	public void NoBlankLineBeforeBody()
	{
		var input = "Subject: hi\nTo: x\nthis is the body\nNote: looks like a field, but is not reached\n\nmore\n";
		var h = Rfc822.Parse(input, Smtpd);
		// The body's first line is unparseable and a valid field follows it: it becomes BadHeader (as in the original).
		Assert.That(h.Fields.Select(f => f.Text), Is.EqualTo(new[] { "Subject: hi", "To: x@client.example.org", "BadHeader: this is the body", "Note: looks like a field, but is not reached" }));

		input = "Subject: hi\nthis is the body\nmore body\n\nand more\n";
		h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields, Has.Count.EqualTo(1));
		Assert.That(input[h.Consumed..], Is.EqualTo("this is the body\nmore body\n\nand more\n"));
	}

	[Test]
	public void BadHeaders()
	{
		// several unparseable lines make one BadHeader: field
		Assert.That(SmtpdOut("X-Foo bar\nbaz qux\nSubject: hi\n\n"), Is.EqualTo("BadHeader: X-Foo bar\nbaz qux\nSubject: hi\n\n"));
		// a continuation line belongs to the unparseable line
		Assert.That(SmtpdOut("X-Foo bar\n  more\nSubject: hi\n\n"), Is.EqualTo("BadHeader: X-Foo bar\n  more\nSubject: hi\n\n"));
		// text starting with "From " vanishes, case-sensitively
		Assert.That(SmtpdOut("Subject: a\nFrom bob x\nTo: c\n\n"), Is.EqualTo("Subject: a\nTo: c@client.example.org\n\n"));
		Assert.That(SmtpdOut("Subject: a\nfrom bob x\nTo: c\n\n"), Is.EqualTo("Subject: a\nBadHeader: from bob x\nTo: c@client.example.org\n\n"));
		// white space inside a field name makes the line unparseable
		Assert.That(SmtpdOut("X Foo: bar\nSubject: s\n\n"), Is.EqualTo("BadHeader: X Foo: bar\nSubject: s\n\n"));
		// no valid field follows before the blank line: the bad line starts the rest
		var input = "Subject: a\nX-Foo bar\n\nSubject: in the body\n";
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields, Has.Count.EqualTo(1));
		Assert.That(input[h.Consumed..], Is.EqualTo("X-Foo bar\n\nSubject: in the body\n"));
		// a line starting with a comment ends the header, as in the original
		input = "Subject: a\n(comment) To: x\nTo: y\n";
		h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields, Has.Count.EqualTo(1));
		Assert.That(input[h.Consumed..], Is.EqualTo("(comment) To: x\nTo: y\n"));
	}

	[Test]
	public void TrailingBackslashDoesNotJoinLines()
	{
		var h = Rfc822.Parse("X-Path: C:\\\nTo: x\n\n", Smtpd);
		Assert.That(h.Fields.Select(f => f.Text), Is.EqualTo(new[] { "X-Path: C:\\", "To: x@client.example.org" }));
		Assert.That(h.HasDestination, Is.True);
	}

	[Test]
	public void QuotesAndEscapes()
	{
		Assert.That(SmtpdOut("From: \"a\\\"b, c\" <x>, \"q p\"@h, \\<y\n\n"), Is.EqualTo("From: \"a\\\"b, c\" <x@client.example.org>, \"q p\"@h, \\<y@client.example.org\n\n"));
		// a quoted string may be folded; an unclosed one ends with its line
		Assert.That(SmtpdOut("To: \"Joe\n Smith\" <joe>\nSubject: \"open\nCc: c\n\n"), Is.EqualTo("To: \"Joe\n Smith\" <joe@client.example.org>\nSubject: \"open\nCc: c@client.example.org\n\n"));
	}

	[Test]
	public void NulsAreDropped()
	{
		var input = "Subj\0ect: a\0b\nTo: b\0ob\n\0\nbo\0dy\n";
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields.Select(f => f.Text), Is.EqualTo(new[] { "Subject: ab", "To: bob@client.example.org" }));
		Assert.That(input[h.Consumed..], Is.EqualTo("\0\nbo\0dy\n"));   // the body is not the parser's
		Assert.That(SmtpdOut("X-Foo\0 bar\nSubject: s\n\n"), Is.EqualTo("BadHeader: X-Foo bar\nSubject: s\n\n"));
	}

	[TestCase("GMT", "GMT", 0, "Mon, 23 Nov 2026 23:00:00 +0000")]
	[TestCase("EST", "EST", -300, "Mon, 23 Nov 2026 23:00:00 -0500")]
	[TestCase("EST", "GMT", 0, "Mon, 23 Nov 2026 23:00:00 EST")]
	public void EnvelopeWithRemoteFrom(string lineZone, string localZone, int offsetMinutes, string want)
	{
		var input = $"From example.org!alice Mon Nov 23 23:00:00 {lineZone} 2026 remote from sys\n\nbody\n";
		var h = Rfc822.Parse(input, (a, _) => a, localZone, TimeSpan.FromMinutes(offsetMinutes));
		Assert.That(h.EnvelopeFrom, Is.EqualTo("example.org!alice"));
		Assert.That(h.EnvelopeDate, Is.EqualTo(want));
		Assert.That(h.Fields, Is.Empty);
		Assert.That(input[h.Consumed..], Is.EqualTo("\nbody\n"));
	}

	[Test]
	public void EnvelopeDefaultsToTheMachineZone()
	{
		var zone = PlanTime.Zone(DateTime.Now);
		var h = Rfc822.Parse($"From a Mon Nov 23 23:00:00 {zone} 2026 remote from sys\n\n", a => a);
		Assert.That(h.EnvelopeDate, Is.EqualTo("Mon, 23 Nov 2026 23:00:00 " + PlanTime.NumericZone(TimeZoneInfo.Local.GetUtcOffset(DateTime.Now))));
	}

	[Test]
	public void EnvelopeVariants()
	{
		// "remote from" in any case, a short time, an @ address; what follows need not parse
		var input = "from a@b.c Tue Dec  1 09:05 EST 2026 REMOTE FROM x.y\nnot a field\n";
		var h = Rfc822.Parse(input, Smtp, "GMT", TimeSpan.Zero);
		Assert.That(h.EnvelopeFrom, Is.EqualTo("a@b.c"));
		Assert.That(h.EnvelopeDate, Is.EqualTo("Tue, 1 Dec 2026 09:05 EST"));
		Assert.That(input[h.Consumed..], Is.EqualTo("not a field\n"));
	}

	[TestCase("From bob Mon Nov 23 23:00:00 GMT 2026\nSubject: x\n\n")]
	[TestCase("From bob Mon Nov 23 23:00:00 GMT 2026 remote from \nSubject: x\n\n")]
	[TestCase("From some garbage\nSubject: x\n\n")]
	public void EnvelopeWithoutRemoteFromIsDropped(string input)
	{
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.EnvelopeFrom, Is.Null);
		Assert.That(h.EnvelopeDate, Is.Null);
		Assert.That(h.Fields.Select(f => f.Text), Is.EqualTo(new[] { "Subject: x" }));
		Assert.That(input[h.Consumed..], Is.EqualTo("\n"));
	}

	[Test]
	public void EnvelopeWithoutRemoteFromAndNoFieldIsBody()
	{
		var input = "From bob Mon Nov 23 23:00:00 GMT 2026\n\nbody\n";
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That((h.Fields.Count, h.Consumed, h.EnvelopeDate), Is.EqualTo((0, 0, (string?)null)));
	}

	[Test]
	public void EnvelopeOnlyOnTheFirstLine()
	{
		var h = Rfc822.Parse("Subject: s\nFrom a Mon Nov 23 23:00:00 GMT 2026 remote from sys\nTo: b\n\n", Smtpd);
		Assert.That(h.EnvelopeDate, Is.Null);
		Assert.That(h.Fields.Select(f => f.Name), Is.EqualTo(new[] { "Subject", "To" }));
	}

	[Test]
	public void SixteenKilobyteHeader()
	{
		var sb = new StringBuilder();
		for (var i = 0; i < 200; i++)
			sb.Append($"X-Fill-{i:D4}: {new string('x', 60)}\n");
		sb.Append("To: a0");
		for (var i = 1; i < 500; i++)
			sb.Append(i % 8 == 0 ? ",\n\t" : ", ").Append('a').Append(i);
		sb.Append('\n');
		var header = sb.ToString();
		Assert.That(header, Has.Length.GreaterThan(16 * 1024));
		var input = header + "\nbody\n";
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields, Has.Count.EqualTo(201));
		Assert.That(h.Consumed, Is.EqualTo(header.Length));
		var to = h.Fields[^1].Text;
		Assert.That(to, Does.StartWith("To: a0@client.example.org, a1@client.example.org,"));
		Assert.That(to.Split("@client.example.org"), Has.Length.EqualTo(501));
		Assert.That(to.Replace("@client.example.org", ""), Is.EqualTo(header[header.IndexOf("To: ")..^1]));
	}

	[Test]
	public void DeepGroupsDoNotOverflow()
	{
		var input = "To: " + string.Concat(Enumerable.Repeat("g: ", 20000)) + "a" + new string(';', 20000) + "\nSubject: s\n\n";
		var h = Rfc822.Parse(input, Smtpd);
		Assert.That(h.Fields.Select(f => f.Name), Is.EqualTo(new[] { "BadHeader", "Subject" }));
		Assert.That(h.HasDestination, Is.False);
	}

	[Test]
	public void MessagesAreIndependent()
	{
		var first = Rfc822.Parse("From: a\nTo: b\n\nbody\n", Smtpd);
		var second = Rfc822.Parse("Subject: s\nCc: c\n\nbody\n", Smtpd);
		Assert.That(first.HasOriginator && first.HasDestination, Is.True);
		Assert.That((second.HasOriginator, second.HasDestination), Is.EqualTo((false, true)));
		Assert.That(second.Fields[1].Text, Is.EqualTo("Cc: c@client.example.org"));
	}
}
