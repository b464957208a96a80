using System.Text;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>
/// The DATA reader (dotreader.cs) under mutated message streams, fed in arbitrary pieces: only CR LF . CR LF
/// (the first one, counting the CR LF before the 354) ends the message; the output has no CR and no NUL, so
/// nothing in it can end data further on; and what smtp makes of the output (CR LF, dot-stuffing, the end
/// marker) reads back through a DotReader as the same message, ending exactly at its marker.
/// </summary>
[TestFixture, Category("Fuzz")]
public class FuzzDotReaderTests
{
	static readonly byte[][] Corpus = Fuzz.Corpus(
		"Subject: hi\r\n\r\nbody\r\n.\r\n",
		".\r\n",
		"a\r\n..stuffed\r\n.\r\nafter the end",
		"smuggle\n.\nMAIL FROM:<x>\r\n.\r\n",
		"bare\r.\rcr\r\n.\n\r\n.x\r\n.\r\n",
		"nul\0\r\n\0.\r\n.\r\n",
		"no end at all\r\n.",
		"\r\n.\r\r\n.\r\n");

	static readonly string[] Words = ["\r\n.\r\n", "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", ".", "..", "\r", "\n", "\0"];

	/// <summary>Feeds input to a reader in pieces; the output, the bytes consumed.</summary>
	static (byte[] Out, int Consumed, DotReader R) Read(byte[] input, Random pieces, long maxSize = long.MaxValue, int maxLine = int.MaxValue)
	{
		var r = new DotReader(maxSize, maxLine);
		var outp = new MemoryStream();
		var at = 0;
		while (at < input.Length && !r.Done) {
			var n = Math.Min(input.Length - at, 1 + pieces.Next(Math.Max(1, input.Length / 3 + 1)));
			var buf = new byte[DotReader.MaxOutput(n)];
			var used = r.Feed(input.AsSpan(at, n), buf, out var w);
			Fuzz.Require(used > 0 && used <= n, $"consumed {used} of {n}");
			outp.Write(buf, 0, w);
			at += used;
		}
		return (outp.ToArray(), at, r);
	}

	/// <summary>What smtp sends for a message: LF → CR LF, a leading dot doubled, a final line end, then the end marker.</summary>
	static byte[] Transmit(byte[] msg)
	{
		var m = new MemoryStream();
		var w = new Upas.Smtp.DataWriter(m);
		w.Write(msg);
		if (!w.LastWasLf)
			m.Write("\r\n"u8);
		m.Write(".\r\n"u8);
		return m.ToArray();
	}

	static void Property(byte[] b)
	{
		var seed = b.Aggregate(17, (h, x) => h * 31 + x);
		// the end: the first CR LF . CR LF, the message starting as if after a CR LF
		var framed = new byte[b.Length + 2];
		framed[0] = (byte)'\r';
		framed[1] = (byte)'\n';
		b.CopyTo(framed, 2);
		var end = framed.AsSpan().IndexOf("\r\n.\r\n"u8);
		var want = end < 0 ? b.Length : end + 5 - 2;

		var (one, used1, r1) = Read(b, new Random(0));
		var (outp, used, r) = Read(b, new Random(seed));
		Fuzz.Require(r.Done == end >= 0, $"done {r.Done}, but the end marker is {(end >= 0 ? "there" : "not there")}");
		Fuzz.Require(used == want, $"consumed {used}, the end marker ends at {want}");
		Fuzz.Require(outp.AsSpan().SequenceEqual(one) && used1 == used, "the output depends on how the input is cut");
		Fuzz.Require(outp.AsSpan().IndexOfAny((byte)'\r', (byte)0) < 0, "a CR or a NUL in the output");
		Fuzz.Require(r.Size == outp.Length, $"size {r.Size} for {outp.Length} bytes");

		// relayed by smtp and read again: the same message, ending exactly at smtp's marker
		var sent = Transmit(outp);
		var (again, used2, r2) = Read(sent, new Random(seed + 1));
		Fuzz.Require(r2.Done && used2 == sent.Length, "smtp's form of the message ends elsewhere than at its end marker");
		Fuzz.Require(again.AsSpan().SequenceEqual(outp.Length == 0 || outp[^1] == '\n' ? outp : [.. outp, (byte)'\n']), "smtp's form of the message reads back as another message");

		// with small limits: counted, never written past, never an exception
		var (small, _, rs) = Read(b, new Random(seed + 2), 64, 16);
		Fuzz.Require(small.Length <= 64 && (rs.TooBig || rs.LineTooLong || small.AsSpan().SequenceEqual(outp)), "limits");
	}

	[Test]
	public void DataStreams() => Fuzz.Run("DATA end-of-message reader", Corpus, Property, Words);
}
