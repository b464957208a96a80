using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// smtpd -L delivering in process, killed -9 at random moments while many sessions send: every message that got
/// its 250 is in the mailbox exactly once, none is there twice, and no half entry survives the next delivery.
/// </summary>
[TestFixture]
public class InProcessCrashTests
{
	const int Sessions = 8;
	const int Kills = 6;

	static Process StartListener(Tree t, int port)
	{
		var psi = t.Start(["-L", $"tcp!127.0.0.1!{port}", "-m", t.P("/bin/upas/send")], netdir: false);
		var p = Process.Start(psi)!;
		Wait.Until(() => Listening.Listens(port) || p.HasExited, () => "smtpd -L listening", TimeSpan.FromSeconds(20));
		Assert.That(p.HasExited, Is.False, "smtpd -L started");
		return p;
	}

	/// <summary>A message of n: its id in the header and at both ends of a body of 1 to 300 KB.</summary>
	static string Body(int n, Random r)
	{
		var lines = r.Next(10, 3000);
		var fill = string.Concat(Enumerable.Range(0, lines).Select(i => $"line {i} of message {n} {new string('z', 80)}\r\n"));
		return $"Subject: crash {n}\r\nX-Id: {n}\r\n\r\nbegin {n}\r\n{fill}end {n}\r\n.\r\n";
	}

	/// <summary>One session after another until stop: each message's number goes to acked when it got 250.</summary>
	static void Client(int port, int worker, ConcurrentBag<int> acked, ConcurrentBag<int> tried, Func<bool> stop)
	{
		var r = new Random(worker);
		var next = worker * 100_000;
		while (!stop()) {
			try {
				using var c = new Client(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
				if (c.Line(5000) is not { } greet || !greet.StartsWith("220"))
					continue;
				c.Reply();
				if (!c.Ask("HELO mail.plan9.org").StartsWith("250"))
					continue;
				while (!stop()) {
					var n = next++;
					if (!c.Ask("MAIL FROM:<alice@plan9.org>").StartsWith("250") || !c.Ask("RCPT TO:<glenda>").StartsWith("250") || !c.Ask("DATA").StartsWith("354"))
						break;
					tried.Add(n);
					c.Send(Body(n, r));
					var reply = c.Reply();
					if (reply.Count == 0)
						break;
					if (reply[^1] == "250 2.5.0 sent")
						acked.Add(n);
				}
			} catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or ObjectDisposedException or AggregateException) {
				Thread.Sleep(20); // the listener is down: try again
			}
		}
	}

	[Test]
	public void AKilledListenerLosesNoAcknowledgedMessageAndDuplicatesNone()
	{
		using var t = new Tree("defaultdomain 9fans.net\ngreetdelay 0\nmaxsessions 100\nmaxperip 100\n");
		t.Write("/sys/log/mail", "");
		Directory.CreateDirectory(t.P("/mail/box/glenda"));
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		var port = Ports.Free();
		var acked = new ConcurrentBag<int>();
		var tried = new ConcurrentBag<int>();
		var stop = false;
		var p = StartListener(t, port);
		var clients = Enumerable.Range(1, Sessions).Select(w => new Thread(() => Client(port, w, acked, tried, () => Volatile.Read(ref stop)))).ToList();
		clients.ForEach(c => c.Start());
		var rnd = new Random(11);
		var interrupted = 0;
		try {
			for (var k = 0; k < Kills; k++) {
				Thread.Sleep(rnd.Next(400, 1500));
				p.Kill(); // SIGKILL
				p.WaitForExit();
				p.Dispose();
				// a note left in L.mbox: the kill came in the middle of an append
				if (File.Exists(t.P("/mail/box/glenda/L.mbox")) && new FileInfo(t.P("/mail/box/glenda/L.mbox")).Length > 0)
					interrupted++;
				p = StartListener(t, port);
			}
			Thread.Sleep(800);
		} finally {
			Volatile.Write(ref stop, true);
			clients.ForEach(c => c.Join(60_000));
		}
		// one more delivery: it cuts off whatever the last kill left half written
		using (var c = new Client(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port))) {
			c.Reply();
			c.Ask("HELO mail.plan9.org");
			c.Ask("MAIL FROM:<alice@plan9.org>");
			c.Ask("RCPT TO:<glenda>");
			c.Ask("DATA");
			c.Send(Body(999_999, new Random(1)));
			Assert.That(string.Join("\n", c.Reply()), Is.EqualTo("250 2.5.0 sent"));
			c.Ask("QUIT");
		}
		p.Kill();
		p.WaitForExit();
		p.Dispose();

		var entries = Mail.Split(Mail.Box(t, "glenda"));
		var seen = new Dictionary<int, int>();
		foreach (var e in entries) {
			var m = Regex.Match(e, @"\nX-Id: (\d+)\n");
			Assert.That(m.Success, Is.True, "an entry with its id: " + e[..Math.Min(200, e.Length)]);
			var n = int.Parse(m.Groups[1].Value);
			Assert.That(e, Does.EndWith($"\nend {n}\n\n"), $"entry {n} whole");
			Assert.That(Regex.Matches(e, "^begin ", RegexOptions.Multiline), Has.Count.EqualTo(1), $"entry {n} is one message");
			seen[n] = seen.GetValueOrDefault(n) + 1;
		}
		Assert.That(seen.Where(kv => kv.Value > 1).Select(kv => kv.Key), Is.Empty, "delivered twice");
		Assert.That(acked.Where(n => !seen.ContainsKey(n)), Is.Empty, "acknowledged but lost");
		Assert.That(seen.Keys.Where(n => n != 999_999 && !tried.Contains(n)), Is.Empty);
		Assert.That(acked.Count, Is.GreaterThan(Kills), "messages went through between the kills");
		TestContext.Out.WriteLine($"{acked.Count} acknowledged, {seen.Count - 1 - acked.Count} delivered without a 250, {tried.Count - seen.Count + 1} lost unacknowledged, {interrupted} kills mid-append");
	}
}
