using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Control-file words (lib/queueword.cs): for any non-empty words (any Unicode text, control bytes, blanks,
/// quotes, %), Split(Line(words)) unescaped is the words again, and an escaped word has no blank, control,
/// quote or 8-bit byte. Unescape of anything, control files included, never throws.
/// </summary>
[TestFixture, Category("Fuzz")]
public class FuzzQueueWordTests
{
	// the first byte separates the words of the rest (so a word may hold any other byte); the text is UTF-8
	static readonly byte[][] Corpus = Fuzz.Corpus(
		"|smtp|example.org!alice|net!example.net|bob|carol",
		"|smtp|\"john doe\"@corp|net!corp|\"a\\\"b\"@x|b\\\\c",
		"|smtp|a\v-f@x|net!h|-x|%%0A|%%zz|100%",
		"\n|a b|\t|\r\n.\r\n|(){};=`^&|'",
		"|caf\u00c3\u00a9|\u00e2\u0082\u00ac|\u00f0\u009f\u0098\u0080");

	static readonly string[] Tokens = ["%%", "%%0D%%0A", "\"", " ", "\t", "\v", "\f", "\\", "-", "\u00c3\u00a9"];

	static void Property(byte[] b)
	{
		if (b.Length == 0)
			return;
		var sep = (char)b[0];
		var text = Encoding.UTF8.GetString(b, 1, b.Length - 1);
		var words = text.Split(sep).Where(w => w.Length > 0).ToList();
		foreach (var w in words) {
			var e = QueueWord.Escape(w);
			Fuzz.Require(e.Length > 0 && e.All(c => c > ' ' && c < '\x7f' && c is not ('"' or '\'' or '\\' or '`')), $"escaped word {Fuzz.Literal(Encoding.Latin1.GetBytes(e))}");
			Fuzz.Require(QueueWord.Unescape(e) == w, "Unescape(Escape(w)) != w");
		}
		var line = QueueWord.Line(words);
		Fuzz.Require(line.EndsWith('\n') && line.IndexOf('\n') == line.Length - 1, "one line");
		var back = QueueWord.Split(line).Select(QueueWord.Unescape).ToList();
		Fuzz.Require(back.SequenceEqual(words), $"{words.Count} words came back as {back.Count}: [{string.Join("|", back)}]");

		// whatever a control file holds, reading it never throws
		foreach (var w in QueueWord.Split(Encoding.Latin1.GetString(b)))
			QueueWord.Unescape(w);
	}

	[Test]
	public void Words() => Fuzz.Run("control-file words", Corpus, Property, Tokens, maxLen: 8192);
}
