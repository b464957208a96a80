using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// An in-process, property-based fuzzer: a seeded generator mutates a corpus of valid inputs (bit flips,
/// control bytes, CR, LF, NUL, 8-bit bytes, long runs, splices, truncations) and checks a property on each
/// for a time budget. FUZZ_SECONDS sets the budget per target (default 3, CI's smoke run); FUZZ_SEED
/// replays a run. A failing input is shrunk and printed as a C# literal for a regression test.
/// <code>FUZZ_SECONDS=600 TEST_FILTER=TestCategory=Fuzz bash tests/run</code>
/// </summary>
static class Fuzz
{
	/// <summary>The longest one input may run before it counts as a hang.</summary>
	public static readonly TimeSpan PerInput = TimeSpan.FromSeconds(2);

	public static TimeSpan Budget =>
		double.TryParse(Environment.GetEnvironmentVariable("FUZZ_SECONDS"), System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
			? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(3);

	static int NewSeed() =>
		int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), out var s) ? s : Random.Shared.Next();

	/// <summary>Bytes that break parsers: line ends, NUL, controls, 8-bit, and the specials of mail syntax.</summary>
	static readonly byte[] Interesting = [
		0, (byte)'\r', (byte)'\n', (byte)'\t', 0x0b, 0x0c, 0x1b, 0x7f, 0x80, 0xa0, 0xff, (byte)' ',
		(byte)'<', (byte)'>', (byte)'@', (byte)'!', (byte)'%', (byte)'"', (byte)'\\', (byte)'.', (byte)':', (byte)',',
		(byte)';', (byte)'(', (byte)')', (byte)'#', (byte)'[', (byte)']', (byte)'=', (byte)'-', (byte)'/',
	];

	/// <summary>
	/// Runs property on mutations of the corpus until the budget is spent; fails the test with the shrunk
	/// input when property throws or an input takes longer than <see cref="PerInput"/>. Returns the executions.
	/// </summary>
	public static long Run(string target, IReadOnlyList<byte[]> corpus, Action<byte[]> property, string[]? dictionary = null, int maxLen = 1 << 16)
	{
		var seed = NewSeed();
		var rng = new Random(seed);
		var dict = (dictionary ?? []).Select(Encoding.Latin1.GetBytes).ToArray();
		foreach (var c in corpus)
			Check(target, seed, c, property);	// the corpus itself must hold
		long execs = 0;
		byte[]? current = null;
		Exception? failure = null;
		var done = false;
		var worker = new Thread(() => {
			try {
				var sw = Stopwatch.StartNew();
				while (sw.Elapsed < Budget) {
					var input = Mutate(rng, corpus, dict, maxLen);
					Volatile.Write(ref current, input);
					property(input);
					Interlocked.Increment(ref execs);
				}
			} catch (Exception e) {
				failure = e;
			}
			Volatile.Write(ref done, true);
		}, 16 << 20) { IsBackground = true, Name = "fuzz " + target };
		worker.Start();
		long seen = -1;
		var still = Stopwatch.StartNew();
		while (!Volatile.Read(ref done)) {
			Thread.Sleep(50);
			var n = Interlocked.Read(ref execs);
			if (n != seen) {
				seen = n;
				still.Restart();
			} else if (still.Elapsed > PerInput + TimeSpan.FromSeconds(1)) {
				// the worker is stuck in one input: report it (the thread is abandoned, it is a background thread)
				var stuck = Volatile.Read(ref current)!;
				Assert.Fail($"fuzz {target}: seed {seed}: an input ran longer than {PerInput.TotalSeconds} s ({stuck.Length} bytes): {Literal(Head(stuck))}");
			}
		}
		if (failure is not null) {
			var bad = Volatile.Read(ref current)!;
			var small = Shrink(bad, failure.GetType(), property);
			Assert.Fail($"fuzz {target}: seed {seed}: {failure.GetType().Name}: {failure.Message}\nshrunk input ({small.Length} bytes): {Literal(small)}\n{failure.StackTrace}");
		}
		TestContext.Progress.WriteLine($"fuzz {target}: {execs} executions in {Budget.TotalSeconds:0} s (seed {seed})");
		return execs;
	}

	static void Check(string target, int seed, byte[] input, Action<byte[]> property)
	{
		var sw = Stopwatch.StartNew();
		try {
			property(input);
		} catch (Exception e) {
			Assert.Fail($"fuzz {target}: corpus entry {Literal(input)} fails: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
		}
		if (sw.Elapsed > PerInput)
			Assert.Fail($"fuzz {target}: seed {seed}: corpus entry {Literal(Head(input))} took {sw.Elapsed.TotalSeconds:0.0} s");
	}

	static byte[] Head(byte[] b) => b.Length > 400 ? b[..400] : b;

	/// <summary>Removes chunks, halving their size, while the input still fails with the same exception type.</summary>
	static byte[] Shrink(byte[] input, Type kind, Action<byte[]> property)
	{
		bool Fails(byte[] b)
		{
			try {
				property(b);
				return false;
			} catch (Exception e) {
				return e.GetType() == kind;
			}
		}
		var cur = input;
		for (var chunk = Math.Max(1, cur.Length / 2); chunk >= 1; chunk /= 2) {
			for (var at = 0; at + chunk <= cur.Length;) {
				var cand = cur[..at].Concat(cur[(at + chunk)..]).ToArray();
				if (Fails(cand))
					cur = cand;
				else
					at += chunk;
			}
		}
		return cur;
	}

	/// <summary>A C# string literal of Latin-1 bytes, for pasting into a regression test.</summary>
	public static string Literal(byte[] b)
	{
		var sb = new StringBuilder("\"");
		foreach (var c in b) {
			sb.Append(c switch {
				(byte)'"' => "\\\"",
				(byte)'\\' => "\\\\",
				(byte)'\r' => "\\r",
				(byte)'\n' => "\\n",
				(byte)'\t' => "\\t",
				< 0x20 or >= 0x7f => $"\\u{c:x4}",
				_ => ((char)c).ToString(),
			});
		}
		return sb.Append('"').ToString();
	}

	/// <summary>One to eight mutations of a corpus entry.</summary>
	static byte[] Mutate(Random rng, IReadOnlyList<byte[]> corpus, byte[][] dict, int maxLen)
	{
		var b = new List<byte>(corpus[rng.Next(corpus.Count)]);
		var n = 1 + rng.Next(8);
		for (var k = 0; k < n; k++) {
			var at = rng.Next(b.Count + 1);
			switch (rng.Next(11)) {
			case 0:	// flip a bit
				if (b.Count > 0) {
					var i = rng.Next(b.Count);
					b[i] ^= (byte)(1 << rng.Next(8));
				}
				break;
			case 1:	// overwrite with an interesting byte
				if (b.Count > 0)
					b[rng.Next(b.Count)] = Interesting[rng.Next(Interesting.Length)];
				break;
			case 2:	// insert interesting bytes
				for (var j = rng.Next(1, 4); j > 0; j--)
					b.Insert(at, Interesting[rng.Next(Interesting.Length)]);
				break;
			case 3:	// insert any byte
				b.Insert(at, (byte)rng.Next(256));
				break;
			case 4:	// a long run
				var len = rng.Next(4) == 0 ? rng.Next(1000, 20000) : rng.Next(2, 300);
				var run = rng.Next(2) == 0 ? Interesting[rng.Next(Interesting.Length)] : (byte)rng.Next(32, 127);
				b.InsertRange(at, Enumerable.Repeat(run, len));
				break;
			case 5:	// delete a range
				if (b.Count > 0) {
					var i = rng.Next(b.Count);
					b.RemoveRange(i, Math.Min(b.Count - i, 1 + rng.Next(16)));
				}
				break;
			case 6:	// truncate
				if (b.Count > 0) {
					var keep = rng.Next(b.Count);
					b.RemoveRange(keep, b.Count - keep);
				}
				break;
			case 7:	// splice in a piece of another entry
				var o = corpus[rng.Next(corpus.Count)];
				if (o.Length > 0) {
					var s = rng.Next(o.Length);
					b.InsertRange(at, o.Skip(s).Take(1 + rng.Next(o.Length - s)));
				}
				break;
			case 8:	// duplicate a piece of itself
				if (b.Count > 0) {
					var s = rng.Next(b.Count);
					var piece = b.GetRange(s, 1 + rng.Next(Math.Min(64, b.Count - s)));
					b.InsertRange(Math.Min(at, b.Count), piece);
				}
				break;
			default:	// a dictionary word, or CR LF
				var w = dict.Length > 0 && rng.Next(3) > 0 ? dict[rng.Next(dict.Length)] : "\r\n"u8.ToArray();
				b.InsertRange(at, w);
				break;
			}
		}
		if (b.Count > maxLen)
			b.RemoveRange(maxLen, b.Count - maxLen);
		return b.ToArray();
	}

	/// <summary>Latin-1 bytes of each string (the parsers read one char per byte).</summary>
	public static byte[][] Corpus(params string[] entries) => entries.Select(Encoding.Latin1.GetBytes).ToArray();

	/// <summary>Fails the property (an exception the fuzzer reports and shrinks).</summary>
	public static void Require(bool cond, string what)
	{
		if (!cond)
			throw new PropertyFailed(what);
	}
}

/// <summary>A property that did not hold.</summary>
sealed class PropertyFailed(string message) : Exception(message);
