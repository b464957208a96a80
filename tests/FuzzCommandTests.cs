using System.Text;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>smtpd's command parser (cmdparse.cs) under mutated command lines: never an exception, always one
/// verdict, and what it accepts is clean (no line end, NUL or 8-bit byte in a path; a HELO name of name characters).</summary>
[TestFixture, Category("Fuzz")]
public class FuzzCommandTests
{
	static readonly byte[][] Corpus = Fuzz.Corpus(
		"HELO client.9fans.net", "EHLO [192.0.2.7]", "EHLO [IPv6:2001:db8::1]", "ehlo #123.example.net.",
		"MAIL FROM:<alice@9fans.net>", "MAIL FROM:<> SIZE=1024 BODY=8BITMIME", "MAIL FROM:<a@b.c> AUTH=<>",
		"mail from: <@r1.example,@r2.example:u@d.example>", "MAIL FROM:<\"john doe\"@corp.example> BODY=7BIT",
		"RCPT TO:<glenda@plan9.example>", "RCPT TO:<kremvax!alice>", "RCPT TO:<a\\ b@x.y>", "RCPT TO:<victim\\@gmail.com@2130706435>",
		"DATA", "RSET", "NOOP", "QUIT", "STARTTLS", "HELP", "HELP me", "VRFY glenda", "EXPN list",
		"AUTH PLAIN", "AUTH LOGIN Z2xlbmRh", "AUTH CRAM-MD5 ", "SEND FROM:<x@y.z>", "SAML FROM:<x@y.z>");

	static readonly string[] Words = ["MAIL FROM:", "RCPT TO:", "<", ">", "<>", " SIZE=", " BODY=8BITMIME", " AUTH=",
		"@", "!", "\"", "\\", "[IPv6:", "#", ".", "\r\n", "\0", "\u00e9"];

	static void Property(byte[] b)
	{
		var line = Encoding.Latin1.GetString(b);
		var cmd = CmdParser.Parse(line);
		Fuzz.Require(cmd is not null, "a verdict");
		if (cmd!.Error != CmdError.None) {
			Fuzz.Require(cmd.Value == "" && cmd.Arg2 is null, "a bad line carries nothing of itself");
			return;
		}
		// an accepted line is a command line: no LF, no NUL, no control other than blanks
		Fuzz.Require(!line.Any(c => c is '\n' or '\0' || c < ' ' && c is not ('\t' or '\v' or '\f' or '\r') || c == '\x7f'), "accepted a control byte");
		switch (cmd.Verb) {
		case Verb.Mail:
		case Verb.Rcpt:
			Fuzz.Require(cmd.Value.Length > 0, "an empty path");
			Fuzz.Require(!cmd.Value.Any(c => c is '\n' or '\0' || c > '\x7f'), "LF, NUL or 8-bit byte in a path");
			Fuzz.Require(cmd.Size >= -1, "a negative SIZE");
			// a path with a control byte or an angle bracket (only reachable through \-escapes) must be one the gate refuses
			if (cmd.Value.Any(c => c < ' ' || c is '<' or '>' or '\x7f'))
				Fuzz.Require(EnvAddr.Refusal(cmd.Value) is not null, "the envelope gate lets a control byte through");
			break;
		case Verb.Helo:
		case Verb.Ehlo:
			Fuzz.Require(cmd.Value.Length > 0 && cmd.Value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '#' or '[' or ']' or ':'), "a HELO name with other characters");
			break;
		}
	}

	[Test]
	public void CommandLines() => Fuzz.Run("smtpd command parser", Corpus, Property, Words, maxLen: 8192);
}
