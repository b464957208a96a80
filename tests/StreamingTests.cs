using System.Security.Cryptography;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 11 item 4: send streams a 100 MiB message to a mailbox, to the queue, into a bounce and down pipes
/// in a bounded buffer: peak RSS under 32 MiB, and the bytes delivered exact (checked by SHA-256).
/// </summary>
[TestFixture]
public class StreamingTests
{
	const long MaxRssKb = 32 * 1024;
	const string Date = "Mon Nov 24 01:21:00 EST 2025";

	string dir = "";
	string input = "";       // the message send reads: envelope line, then the body
	long bodyLength;         // the body's bytes, a final LF included
	byte[] bodySha = [];     // of the body as it is
	byte[] escapedSha = [];  // of the body with lines beginning "From " escaped, as in a mailbox
	long escapedLength;

	/// <summary>Writes 100 MiB of message to a file line by line (never held), hashing as it goes.</summary>
	[OneTimeSetUp]
	public void Generate()
	{
		dir = Path.Join(Path.GetTempPath(), "upas-stream-" + Guid.NewGuid().ToString("N")[..12]);
		Directory.CreateDirectory(dir);
		input = Path.Join(dir, "message");
		using var body = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		using var escaped = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		using (var f = new BufferedStream(File.Create(input), 1 << 20)) {
			f.Write(Encoding.Latin1.GetBytes($"From glenda {Date} remote from \n"));
			void Put(string s, bool from = false)
			{
				var b = Encoding.Latin1.GetBytes(s);
				f.Write(b);
				body.AppendData(b);
				bodyLength += b.Length;
				if (from) {
					escaped.AppendData(" "u8);
					escapedLength++;
				}
				escaped.AppendData(b);
				escapedLength += b.Length;
			}
			Put("Subject: big\n\n");
			var x = new string('x', 70);
			for (var i = 0; bodyLength < 100L << 20; i++) {
				// every 1000th line begins "From ", which the mailbox escapes
				var from = i % 1000 == 0;
				Put((from ? "From " : "line ") + x + "\n", from);
			}
		}
		bodySha = body.GetHashAndReset();
		escapedSha = escaped.GetHashAndReset();
	}

	[OneTimeTearDown]
	public void Remove() => Directory.Delete(dir, true);

	static Tree NewTree(params string[] users) => Tree.WithMailboxes(users);

	/// <summary>send with the message file on stdin, under python3, which reports the peak RSS (ru_maxrss, KB) of its children.</summary>
	(long RssKb, string Err, int Exit) SendMeasured(Tree t, params string[] args)
	{
		if (!File.Exists("/usr/bin/python3"))
			Assert.Ignore("needs python3 to measure the peak RSS");
		var psi = t.Prog("/usr/bin/python3", ["-c",
			"import resource, subprocess, sys\n" +
			"r = subprocess.run(sys.argv[2:], stdin=open(sys.argv[1], 'rb'))\n" +
			"print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n" +
			"sys.exit(r.returncode)\n", input, Repo.Bin("send"), .. args]);
		var (o, e, x) = Tree.Exec(psi, [], 180_000);
		return (long.Parse(Encoding.ASCII.GetString(o).Trim()), e, x);
	}

	/// <summary>SHA-256 and length of count bytes of a file from offset on.</summary>
	static (byte[] Sha, long Length) Hash(string path, long offset, long count)
	{
		using var f = File.OpenRead(path);
		f.Position = offset;
		using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		var buf = new byte[1 << 20];
		long got = 0;
		for (int n; got < count && (n = f.Read(buf, 0, (int)Math.Min(buf.Length, count - got))) > 0; got += n)
			h.AppendData(buf, 0, n);
		return (h.GetHashAndReset(), got);
	}

	static byte[] Tail(string path, int n)
	{
		using var f = File.OpenRead(path);
		f.Position = Math.Max(0, f.Length - n);
		var b = new byte[f.Length - f.Position];
		f.ReadExactly(b);
		return b;
	}

	static byte[] Head(string path, int n)
	{
		using var f = File.OpenRead(path);
		var b = new byte[Math.Min(n, f.Length)];
		f.ReadExactly(b);
		return b;
	}

	void AssertRss(long rss) => Assert.That(rss, Is.LessThan(MaxRssKb), $"peak RSS {rss} KB for a {bodyLength >> 20} MiB message");

	[Test]
	public void A100MiBMessageToAMailbox()
	{
		using var t = NewTree("glenda");
		var (rss, err, exit) = SendMeasured(t, "-r", "glenda");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		AssertRss(rss);
		var box = t.P("/mail/box/glenda/mbox");
		var first = Encoding.Latin1.GetBytes($"From glenda {Date}\n");
		Assert.That(Head(box, first.Length), Is.EqualTo(first));
		Assert.That(Hash(box, first.Length, escapedLength), Is.EqualTo((escapedSha, escapedLength)), "the escaped body byte for byte");
		Assert.That(new FileInfo(box).Length, Is.EqualTo(first.Length + escapedLength + 1), "then the empty line, and nothing else");
		Assert.That(Tail(box, 2), Is.EqualTo("\n\n"u8.ToArray()));
	}

	[Test]
	public void A100MiBMessageToTheQueue()
	{
		using var t = NewTree();
		var (rss, err, exit) = SendMeasured(t, "-r", "example.net!carol");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		AssertRss(rss);
		var d = Directory.GetFiles(t.P("/mail/queue"), "D.*", SearchOption.AllDirectories).Single();
		var first = Encoding.Latin1.GetBytes($"From glenda {Date} remote from testhost\n");
		Assert.That(Head(d, first.Length), Is.EqualTo(first));
		Assert.That(Hash(d, first.Length, long.MaxValue), Is.EqualTo((bodySha, bodyLength)), "the data file: the body unchanged");
	}

	[Test]
	public void A100MiBMessageDownAPipetoProgram()
	{
		using var t = NewTree("glenda");
		var outDir = t.P("/out");
		Directory.CreateDirectory(outDir);
		File.SetUnixFileMode(outDir, (UnixFileMode)0x1ff); // it runs as nobody when the test is root
		var got = Path.Join(outDir, "piped");
		t.Write("/mail/box/glenda/pipeto", $"#!/bin/sh\ncat > '{got}'\n", 0x1ed);
		var (rss, err, exit) = SendMeasured(t, "-r", "glenda");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		AssertRss(rss);
		var first = Encoding.Latin1.GetBytes($"From glenda {Date} remote from testhost\n");
		Assert.That(Head(got, first.Length), Is.EqualTo(first));
		Assert.That(Hash(got, first.Length, long.MaxValue), Is.EqualTo((bodySha, bodyLength)), "what the program read: the body unchanged");
	}

	[Test]
	public void A100MiBMessageDownARewriteCommand()
	{
		using var t = NewTree();
		t.Write("/cmd", "#!/bin/sh\ncat > \"$(dirname \"$0\")/got\"\n", 0x1ed);
		t.Write("/mail/lib/rewrite", $"([^!]+)!(.+)\t|\t\"{t.P("/cmd")} '\\s'\"\t\"'\\2'\"\n");
		var (rss, err, exit) = SendMeasured(t, "-r", "example.net!carol");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		AssertRss(rss);
		var got = t.P("/got");
		var first = Encoding.Latin1.GetBytes($"From glenda {Date} remote from testhost\n");
		Assert.That(Head(got, first.Length), Is.EqualTo(first));
		Assert.That(Hash(got, first.Length, long.MaxValue), Is.EqualTo((bodySha, bodyLength)), "what the command read: the body unchanged");
	}

	[Test]
	public void A100MiBMessageBouncedWhole()
	{
		using var t = NewTree("glenda");
		var (rss, err, exit) = SendMeasured(t, "-r", "nosuch");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		AssertRss(rss);
		var box = t.P("/mail/box/glenda/mbox");
		var head = Encoding.Latin1.GetString(Head(box, 4096));
		Assert.That(head, Does.StartWith("From /dev/null ").And.Contain("failed with error 'unknown user'."));
		const string attached = "Content-Type: message/rfc822\nContent-Disposition: inline\n\n";
		var at = head.IndexOf(attached, StringComparison.Ordinal) + attached.Length;
		Assert.That(at, Is.GreaterThan(attached.Length));
		var boundary = System.Text.RegularExpressions.Regex.Match(head, "boundary=\"([^\"]+)\"").Groups[1].Value;
		Assert.That(Hash(box, at, escapedLength), Is.EqualTo((escapedSha, escapedLength)), "the original attached byte for byte (escaped, as in any mailbox entry)");
		var end = Encoding.Latin1.GetBytes($"--{boundary}--\n\n");
		Assert.That(Tail(box, end.Length), Is.EqualTo(end));
		Assert.That(new FileInfo(box).Length, Is.EqualTo(at + escapedLength + end.Length));
	}
}
