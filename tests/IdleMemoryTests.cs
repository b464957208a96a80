using System.Net.Sockets;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Issue 11 item 6: under -L an idle session costs the listener at most 64 KiB of memory (a limit, not a timing).</summary>
public class IdleMemoryTests
{
	const int Sessions = 300;
	const int LimitKiB = 64;

	[Test]
	public void AnIdleSessionCostsAtMost64KiB()
	{
		using var t = new Tree(Tree.DefaultConf + $"maxsessions {Sessions + 10}\nmaxperip {Sessions + 10}\n");
		using var l = new Listening(t);
		// one session first: what all sessions share (code, the thread pool, the first pool buffers) is paid before
		Greeted(l).Dispose();
		Thread.Sleep(200);
		var before = Rss(l.P.Id);
		var idle = new List<Socket>();
		try {
			for (var i = 0; i < Sessions; i++)
				idle.Add(Greeted(l)); // after "220 " the session is waiting for its first command
			var perSession = (Rss(l.P.Id) - before) / (double)Sessions;
			TestContext.Out.WriteLine($"{perSession:F1} KiB per idle session");
			Assert.That(perSession, Is.LessThanOrEqualTo(LimitKiB));
			// and they are still live sessions
			var last = idle[^1];
			last.Send("NOOP\r\n"u8);
			Assert.That(Read(last, "\r\n"), Is.EqualTo("250 2.0.0 Nothing to see here. Move along ...\r\n"));
		} finally {
			foreach (var s in idle)
				s.Dispose();
		}
	}

	/// <summary>A connection that has read the whole greeting; a bare socket, so the test's own buffers stay small.</summary>
	static Socket Greeted(Listening l)
	{
		var s = new Socket(l.Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 30_000 };
		s.Connect(l.Endpoint);
		Assert.That(Read(s, "220 \r\n"), Is.EqualTo("220-example.com ESMTP\r\n220 \r\n"));
		return s;
	}

	static string Read(Socket s, string until)
	{
		var got = new StringBuilder();
		var b = new byte[512];
		while (!got.ToString().EndsWith(until, StringComparison.Ordinal)) {
			var n = s.Receive(b);
			if (n == 0)
				break;
			got.Append(Encoding.ASCII.GetString(b, 0, n));
		}
		return got.ToString();
	}

	/// <summary>The process's resident set (VmRSS) in KiB.</summary>
	static long Rss(int pid) =>
		long.Parse(File.ReadLines($"/proc/{pid}/status").First(x => x.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
}
