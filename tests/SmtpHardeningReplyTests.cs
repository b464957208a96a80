using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9 item 11, the client's side: a server's reply costs bounded memory and time. A reply line over
/// 4096 bytes or a reply of over 100 lines ends the session as a protocol error (exit 2, one line, no QUIT).
/// </summary>
[Parallelizable(ParallelScope.All)]
public class SmtpHardeningReplyTests
{
	const string D = Smtp.Domain;
	const int MaxRssKb = 64 * 1024;

	/// <summary>Runs smtp under python3's getrusage, which sees its peak resident size (kB) after it exits.</summary>
	static (SmtpRun Run, long MaxRssKb, TimeSpan Took) Measured(Tree t, string[] args)
	{
		var psi = Smtp.Start(t, args);
		var rss = t.P("/tmp.maxrss");
		const string wrapper = "import resource,subprocess,sys\n"
			+ "r = subprocess.run(sys.argv[2:])\n"
			+ "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
			+ "sys.exit(r.returncode)\n";
		var argv = psi.ArgumentList.ToArray();
		psi.ArgumentList.Clear();
		foreach (var a in (string[])["-c", wrapper, rss, psi.FileName, .. argv])
			psi.ArgumentList.Add(a);
		psi.FileName = "python3";
		var sw = Stopwatch.StartNew();
		var (outp, err, exit) = Tree.Exec(psi, Encoding.Latin1.GetBytes("Subject: x\n\nbody\n"), 60_000);
		var kb = long.Parse(File.ReadAllText(rss));
		TestContext.Out.WriteLine($"smtp: exit {exit}, peak RSS {kb} kB, {sw.Elapsed.TotalSeconds:0.0} s");
		return (new SmtpRun(outp, err, exit), kb, sw.Elapsed);
	}

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		return t;
	}

	static void Huge(HostileConn c, string head, int n, byte fill)
	{
		c.Write(Encoding.Latin1.GetBytes(head));
		var chunk = new byte[1 << 16];
		Array.Fill(chunk, fill);
		for (var i = 0; i < n; i += chunk.Length)
			c.Write(chunk);
		c.Write("\r\n"u8);
		HostileServer.Accepting(c);
	}

	static void Check(Tree t, HostileServer srv, (SmtpRun Run, long MaxRssKb, TimeSpan Took) m, string why)
	{
		NoCrash.Check(m.Run, 2);
		var err = m.Run.Err.Split('\n');
		Assert.That(err[0], Does.EndWith($" connect to {srv.Dial}:"), m.Run.Err);
		Assert.That(err[1..], Is.EqualTo(new[] { why, "Retry, Temporary Failure", "" }), m.Run.Err);
		Assert.That(m.MaxRssKb, Is.LessThan(MaxRssKb), "peak resident size, kB");
		Assert.That(m.Took, Is.LessThan(TimeSpan.FromSeconds(20)));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to {srv.Dial} failed: {why}" }));
		Assert.That(srv.Received, Does.Not.Contain("QUIT"), "nothing more is said to a server that broke the protocol");
	}

	[Test]
	public void ATenMegabyteGreetingLineIsAProtocolError()
	{
		using var t = NewTree();
		using var srv = new HostileServer(c => Huge(c, "220 ", 10 << 20, (byte)'x'));
		var m = Measured(t, [D, srv.Dial, "alice", "bob"]);
		Check(t, srv, m, "protocol error: a reply line longer than 4096 bytes");
		Assert.That(srv.Received, Is.Empty);
	}

	[Test]
	public void ATenMegabyteLineInAMultiLineReplyIsAProtocolError()
	{
		using var t = NewTree();
		using var srv = new HostileServer(c => {
			c.Say("220 mx.example.org");
			c.Line();
			Huge(c, "250-mx.example.org\r\n250-", 10 << 20, (byte)'y');
		});
		var m = Measured(t, [D, srv.Dial, "alice", "bob"]);
		Check(t, srv, m, "protocol error: a reply line longer than 4096 bytes");
	}

	[Test]
	public void AReplyOfAHundredThousandLinesIsAProtocolError()
	{
		using var t = NewTree();
		using var srv = new HostileServer(c => {
			var b = new StringBuilder();
			for (var i = 0; i < 100_000; i++)
				b.Append("220-greeting line ").Append(i).Append("\r\n");
			c.Write(Encoding.Latin1.GetBytes(b.Append("220 done\r\n").ToString()));
			HostileServer.Accepting(c);
		});
		var m = Measured(t, [D, srv.Dial, "alice", "bob"]);
		Check(t, srv, m, "protocol error: a reply of more than 100 lines");
	}

	[Test]
	public void AnEhloReplyOfAHundredThousandLinesIsAProtocolError()
	{
		using var t = NewTree();
		using var srv = new HostileServer(c => {
			c.Say("220 mx.example.org");
			c.Line();
			var b = new StringBuilder();
			for (var i = 0; i < 100_000; i++)
				b.Append("250-X").Append(i).Append("\r\n");
			c.Write(Encoding.Latin1.GetBytes(b.Append("250 done\r\n").ToString()));
			HostileServer.Accepting(c);
		});
		var m = Measured(t, [D, srv.Dial, "alice", "bob"]);
		Check(t, srv, m, "protocol error: a reply of more than 100 lines");
	}

	[Test]
	public void ManyRecipientsRefusedAtLengthCostBoundedMemory()
	{
		using var t = NewTree();
		var line = "550-" + new string('r', 4092);
		var refusal = Encoding.Latin1.GetBytes(string.Concat(Enumerable.Repeat(line + "\r\n", 99)) + "550 no\r\n");
		using var srv = new HostileServer(c => {
			c.Say("220 mx.example.org");
			while (c.Line() is { } cmd) {
				if (cmd.StartsWith("RCPT", StringComparison.Ordinal) && !cmd.Contains("<ok@"))
					c.Write(refusal);
				else if (cmd.StartsWith("DATA", StringComparison.Ordinal)) {
					c.Say("354 go");
					c.Data();
					c.Say("250 queued");
				} else
					c.Say(cmd.StartsWith("QUIT", StringComparison.Ordinal) ? "221 bye" : "250 ok");
			}
		});
		string[] rcpts = ["ok", .. Enumerable.Range(0, 300).Select(i => $"r{i}")];
		var m = Measured(t, [D, srv.Dial, "alice", .. rcpts]);
		NoCrash.Check(m.Run, 1);
		Assert.That(m.MaxRssKb, Is.LessThan(MaxRssKb), "peak resident size, kB");
		var report = m.Run.Err.Split('\n').Where(l => l.StartsWith("  mail to ", StringComparison.Ordinal)).ToArray();
		Assert.That(report, Has.Length.EqualTo(300));
		Assert.That(report[0], Does.StartWith("  mail to r0 failed: 550-rrr").And.EndWith("r..."));
		Assert.That(report[0], Has.Length.EqualTo("  mail to r0 failed: ".Length + 1024 + 3));
	}

	[Test]
	public void RepliesUpToTheLimitsAreTaken()
	{
		using var t = NewTree();
		var line = "250-" + new string('z', 4092);	// 4096 bytes before CR LF
		using var srv = new HostileServer(c => {
			c.Say("220 mx.example.org");
			c.Line();
			c.Write(Encoding.Latin1.GetBytes(string.Concat(Enumerable.Repeat(line + "\r\n", 99)) + "250 last\r\n"));
			HostileServer.Serve(c);
		});
		var m = Measured(t, [D, srv.Dial, "alice", "bob"]);
		NoCrash.Check(m.Run, 0);
		Assert.That(srv.Received, Does.Contain("RCPT TO:<bob@127.0.0.1>\r\n"));
	}
}
