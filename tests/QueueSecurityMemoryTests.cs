using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9 item 11: send streams a message (the first 64 KB in memory, the rest in a spool file) instead of
/// holding it five or six times. A 64 MB message to a mailbox and to the queue: peak RSS under 32 MB, the
/// bytes exact.
/// </summary>
[TestFixture]
public class QueueSecurityMemoryTests
{
	const string Env = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \n";
	const long MaxRssKb = 32 * 1024;

	/// <summary>About 64 MB of message: a header, then 76-byte lines, every 1000th one beginning "From " (escaped in the mailbox).</summary>
	static byte[] BigMessage()
	{
		var sb = new StringBuilder("Subject: big\n\n", 65 << 20);
		var line = new string('x', 70);
		for (var i = 0; sb.Length < (64 << 20); i++)
			sb.Append(i % 1000 == 0 ? "From " : "line ").Append(line).Append('\n');
		sb.Append("From the end, no newline");
		return Encoding.Latin1.GetBytes(sb.ToString());
	}

	/// <summary>send run under python3, which reports the peak RSS (ru_maxrss, KB) of its child on stdout.</summary>
	static (long RssKb, string Err, int Exit) SendMeasured(Tree t, byte[] input, params string[] args)
	{
		if (!File.Exists("/usr/bin/python3"))
			Assert.Ignore("needs python3 to measure the peak RSS");
		var psi = t.Prog("/usr/bin/python3", ["-c",
			"import resource, subprocess, sys\n" +
			"r = subprocess.run(sys.argv[1:])\n" +
			"print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n" +
			"sys.exit(r.returncode)\n", Repo.Bin("send"), .. args]);
		var (o, e, x) = Tree.Exec(psi, input, 120_000);
		return (long.Parse(Encoding.ASCII.GetString(o).Trim()), e, x);
	}

	[Test]
	public void A64MBMessageToAMailboxAndTheQueueInLittleMemory()
	{
		using var t = new Tree();
		t.Write("/sys/log/mail", "");
		Directory.CreateDirectory(t.P("/mail/box/bob"));
		var msg = BigMessage();
		var input = Encoding.Latin1.GetBytes(Env).Concat(msg).ToArray();
		var (rss, err, exit) = SendMeasured(t, input, "-r", "bob", "example.net!carol");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		Assert.That(rss, Is.LessThan(MaxRssKb), $"peak RSS {rss} KB for a {msg.Length >> 20} MB message");

		var text = Encoding.Latin1.GetString(msg) + "\n"; // a final line end is added
		var entry = "From example.org!alice Mon Nov 24 01:21:00 EST 2025\n" + Regex.Replace(text, "^From ", " From ", RegexOptions.Multiline) + "\n";
		Assert.That(File.ReadAllBytes(t.P("/mail/box/bob/mbox")).AsSpan().SequenceEqual(Encoding.Latin1.GetBytes(entry)), Is.True, "the mailbox entry byte for byte");
		var d = Directory.GetFiles(t.P("/mail/queue"), "D.*", SearchOption.AllDirectories).Single();
		var queued = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from testhost\n" + text;
		Assert.That(File.ReadAllBytes(d).AsSpan().SequenceEqual(Encoding.Latin1.GetBytes(queued)), Is.True, "the data file byte for byte");
	}

	[Test]
	public void A64MBBounceInLittleMemory()
	{
		using var t = new Tree();
		t.Write("/sys/log/mail", "");
		Directory.CreateDirectory(t.P("/mail/box/glenda"));
		var msg = BigMessage();
		var input = Encoding.Latin1.GetBytes("From glenda Mon Nov 24 01:21:00 EST 2025 remote from \n").Concat(msg).ToArray();
		var (rss, err, exit) = SendMeasured(t, input, "-r", "nosuch");
		Assert.That((exit, err), Is.EqualTo((0, "")));
		Assert.That(rss, Is.LessThan(MaxRssKb), $"peak RSS {rss} KB");
		var box = File.ReadAllText(t.P("/mail/box/glenda/mbox"), Encoding.Latin1);
		Assert.That(box, Does.Contain("failed with error 'unknown user'."));
		Assert.That(box, Does.Contain("Content-Type: message/rfc822\nContent-Disposition: inline\n\nSubject: big\n\n From xxx"));
		Assert.That(box.Length, Is.GreaterThan(msg.Length));
	}
}
