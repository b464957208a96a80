using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// The RFC 822 header parser (lib/rfc822.cs) under mutated headers, with the real rewrites of smtpd and smtp:
/// no exception, bounded time, and no field that would read as more than one header line (or end the header)
/// when written out: only a folded line (LF then blank) continues a parsed field, and no field holds an empty line.
/// </summary>
[TestFixture, Category("Fuzz")]
public class FuzzRfc822Tests
{
	static readonly byte[][] Corpus = Fuzz.Corpus(
		"From: Alice <alice>\nTo: bob, c!d, e@f.g\nSubject: hi\n\nbody\n",
		"From example.org!alice Mon Nov 23 23:00:00 GMT 2026 remote from sys\nSubject: test\nTo: bob\n\nbody\n",
		"To: friends: a, b;\nCc: \"Doe, John\" <jd>, x (comment (nested))\n\n",
		"To: <@a.com,@b.com:u@c.com>, @x:y@z\nReturn_path: example.org!x\n\n",
		"Subject:  a\n\tb (c\n d)  \nCc: x (one (two)\n three), y\n\n",
		"X-Foo bar\nbaz qux\nSubject: hi\n\nbody\n",
		"Date: Mon, 23 Nov 2026 23:00:00 +0000\nMessage-ID: <1@x>\nFrom: <>\n\n",
		"To: \"Joe\n Smith\" <joe>\nSubject: \"open\nCc: c\n\n",
		"Subj\0ect: a\0b\nTo: b\0ob\n\0\nbo\0dy\n",
		"X-Path: C:\\\nTo: x\n\n");

	static readonly string[] Words = ["From: ", "To: ", "Cc: ", "Sender: ", "Reply-To: ", "Return_path: ", "Date: ", "\n ", "\n\t", "\n\n",
		"(", ")", "\"", "\\", "<", ">", "@", ":", ";", ",", "From ", " remote from x\n", "g: "];

	static void Fields(ParsedHeader h, string input)
	{
		Fuzz.Require(h.Consumed >= 0 && h.Consumed <= input.Length, $"consumed {h.Consumed} of {input.Length}");
		foreach (var f in h.Fields) {
			var t = f.Text;
			Fuzz.Require(t.Length > 0 && !t.Contains('\0'), "an empty field or a NUL in one");
			Fuzz.Require(t[0] is not ('\n' or ' ' or '\t') && !t.EndsWith('\n') && !t.Contains("\n\n"), $"a field that ends the header: {Fuzz.Literal(Encoding.Latin1.GetBytes(t))}");
			if (f.Name != "BadHeader") {
				for (var i = t.IndexOf('\n'); i >= 0; i = t.IndexOf('\n', i + 1))
					Fuzz.Require(i + 1 < t.Length && t[i + 1] is ' ' or '\t', $"a field that is two header lines: {Fuzz.Literal(Encoding.Latin1.GetBytes(t))}");
				Fuzz.Require(f.Text.StartsWith(f.Name, StringComparison.Ordinal), "the text starts with the name");
			}
		}
	}

	static void Property(byte[] b)
	{
		var input = Encoding.Latin1.GetString(b);
		// smtpd's rewrite and smtp's (the real functions)
		var seen = new List<string>();
		var h = Rfc822.Parse(input, a => {
			seen.Add(a);
			return Upas.Smtpd.Session.Qualify(a, "client.example.org");
		});
		Fields(h, input);
		// an address may be folded inside a quoted string, but never holds a line end that is not a fold
		Fuzz.Require(seen.All(a => a.Length > 0 && !a.Select((c, i) => c == '\n' && (i + 1 >= a.Length || a[i + 1] is not (' ' or '\t'))).Any(x => x)), "an address with a line end");
		var hs = Rfc822.Parse(input, (a, br) => Upas.Smtp.Addr.Header(a, br, "testhost.example.com"), "GMT", TimeSpan.Zero);
		Fields(hs, input);

		// with no rewriting the fields keep every character of the header (white space may move after an address)
		var id = Rfc822.Parse(input, a => a);
		var consumed = input[..id.Consumed];
		if (id.EnvelopeFrom is null && !consumed.Split('\n').Any(l => l.Replace("\0", "").StartsWith("From ", StringComparison.Ordinal))) {
			var written = string.Concat(id.Fields.Select(f => (f.Name == "BadHeader" ? f.Text["BadHeader: ".Length..] : f.Text) + "\n"));
			var want = consumed.Replace("\0", "").ToCharArray();
			var got = written.ToCharArray();
			Array.Sort(want);
			Array.Sort(got);
			Fuzz.Require(want.AsSpan().SequenceEqual(got), "the fields lose or add characters of the header");
		}
	}

	[Test]
	public void Headers() => Fuzz.Run("rfc822 header parser", Corpus, Property, Words);
}
