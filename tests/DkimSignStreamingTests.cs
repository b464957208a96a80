using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 11 item 4 with signing on: smtp reads a signed message's body twice (the body hash goes before the
/// header), from the file rewound or from its spool when stdin is a pipe, and still sends 100 MiB in under
/// 32 MiB of peak RSS, every byte.
/// </summary>
[TestFixture]
public class DkimSignStreamingTests
{
	const long MaxRssKb = 32 * 1024;
	string dir = "";
	string input = "";
	long length;
	long lines;	// of the body, each Line long
	const string Header = "From: alice@example.com\nTo: bob@example.net\nSubject: big\n\n";
	static readonly byte[] Line = Encoding.ASCII.GetBytes("line " + new string('x', 70) + "\n");

	[OneTimeSetUp]
	public void Generate()
	{
		dir = Path.Join(Path.GetTempPath(), "upas-signstream-" + Guid.NewGuid().ToString("N")[..12]);
		Directory.CreateDirectory(dir);
		input = Path.Join(dir, "message");
		using var f = new BufferedStream(File.Create(input), 1 << 20);
		f.Write(Encoding.ASCII.GetBytes(Header));
		for (; f.Length < 100L << 20; lines++)
			f.Write(Line);
		f.Flush();
		length = f.Length;
	}

	[OneTimeTearDown]
	public void Remove() => Directory.Delete(dir, true);

	[TestCase(true)]
	[TestCase(false)]
	public void A100MiBSignedMessage(bool fromFile)
	{
		if (!File.Exists("/usr/bin/python3"))
			Assert.Ignore("needs python3 to measure the peak RSS");
		using var s = new SignTree();
		s.Keys("both");
		using var srv = new ScriptServer { KeepMessages = false };
		// stdin the file itself (runq's D. file: rewound) or a pipe from cat (spooled)
		var shell = fromFile ? "exec \"$@\" < \"$F\"" : "cat \"$F\" | \"$@\"";
		var psi = s.T.Prog("/usr/bin/python3", ["-c",
			"import resource, subprocess, sys\n" +
			"r = subprocess.run(['/bin/sh', '-c', sys.argv[1], 'sh'] + sys.argv[2:])\n" +
			"print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n" +
			"sys.exit(r.returncode)\n", shell, Repo.Bin("smtp"), Smtp.Domain, srv.Dial, "glenda", "bob@example.net"]);
		psi.Environment["F"] = input;
		psi.Environment["site"] = "gnot";
		var (o, e, x) = Tree.Exec(psi, [], 300_000);
		Assert.That((x, e), Is.EqualTo((0, "")));
		var rss = long.Parse(Encoding.ASCII.GetString(o).Trim());
		Assert.That(rss, Is.LessThan(MaxRssKb), $"peak RSS {rss} KB for a {length >> 20} MiB signed message");
		Assert.That(s.DkimLog(), Is.EqualTo(new[] { "dkim: signed d=example.com s=r1 a=rsa-sha256, s=e1 a=ed25519-sha256" }));
		// every byte went, once: as many as -f gives for the same header (the signatures' size does not depend on
		// the body) with a one-line body, that line taken away and the big body's lines put in, CR LF, then ".\r\n"
		var small = Smtp.Run(s.T, Encoding.ASCII.GetBytes(Header + "x\n"), ["-f", Smtp.Domain, srv.Dial, "glenda"], null);
		Assert.That(small.Exit, Is.EqualTo(0), small.Err);
		Assert.That(Interlocked.Read(ref srv.Received), Is.EqualTo(small.Stdout.Length - "x\r\n".Length + lines * (Line.Length + 1) + ".\r\n".Length));
	}
}
