using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// What kill -9 leaves behind: send, runq, smtp and the smtpd -L listener killed at any point never lose
/// a message that was acknowledged, never deliver it twice, and never leave half of one in a mailbox.
/// </summary>
public class CrashTests
{
	static Tree NewTree(params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		t.Write("/sys/log/runq", "");
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/send"), Repo.Bin("send"));
		return t;
	}

	static (string Err, int Exit) Send(Tree t, string input, params string[] args)
	{
		var (_, e, x) = Tree.Exec(t.Prog(Repo.Bin("send"), args), Encoding.Latin1.GetBytes(input));
		return (e, x);
	}

	/// <summary>The processes whose parent is pid (from /proc/N/stat).</summary>
	static List<int> Children(int pid)
	{
		var kids = new List<int>();
		foreach (var d in Directory.GetDirectories("/proc")) {
			if (!int.TryParse(Path.GetFileName(d), out var n))
				continue;
			try {
				var s = File.ReadAllText(Path.Join(d, "stat"));
				var f = s[(s.LastIndexOf(')') + 2)..].Split(' ');
				if (int.Parse(f[1]) == pid && f[0] != "Z")
					kids.Add(n);
			} catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException) {
			}
		}
		return kids;
	}

	/// <summary>Whether a process runs the executable prog (its /proc/N/exe).</summary>
	static bool Runs(int pid, string prog)
	{
		try {
			return new FileInfo($"/proc/{pid}/exe").LinkTarget is { } target && Path.GetFullPath(target) == Path.GetFullPath(prog);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return false;
		}
	}

	/// <summary>The live processes running prog with PLAN9=tree in their environment.</summary>
	static List<int> Running(string prog, Tree t)
	{
		var found = new List<int>();
		var env = Encoding.Latin1.GetBytes("PLAN9=" + t.Dir + "\0");
		foreach (var d in Directory.GetDirectories("/proc")) {
			if (!int.TryParse(Path.GetFileName(d), out var n) || !Runs(n, prog))
				continue;
			try {
				if (File.ReadAllBytes(Path.Join(d, "environ")).AsSpan().IndexOf(env) >= 0)
					found.Add(n);
			} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			}
		}
		return found;
	}

	static void Kill9(int pid)
	{
		try {
			Process.GetProcessById(pid).Kill();
		} catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) {
		}
	}

	// ---- send ----

	const string EnvLine = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \n";

	[Test]
	public void AnInterruptedAppendIsCutOffByTheNextDelivery()
	{
		using var t = NewTree("bob");
		Assert.That(Send(t, EnvLine + "Subject: one\n\nfirst\n", "-r", "bob").Exit, Is.EqualTo(0));
		var one = Mail.Box(t, "bob");
		// what a send killed in the middle of its write leaves: half an entry, and its note in L.mbox
		var box = t.P("/mail/box/bob/mbox");
		const string half = "From example.org!alice Mon Nov 24 01:22:00 EST 2025\nSubject: half\n\nthe first ha";
		File.AppendAllText(box, half);
		var ino = new Mono.Unix.UnixFileInfo(box).Inode;
		File.WriteAllText(t.P("/mail/box/bob/L.mbox"), $"{ino} {one.Length} 4096\n");
		Assert.That(Send(t, EnvLine + "Subject: two\n\nsecond\n", "-r", "bob").Exit, Is.EqualTo(0));
		Assert.That(Mail.Box(t, "bob"), Is.EqualTo(one + "From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: two\n\nsecond\n\n"));
		Assert.That(t.Read("/sys/log/mail"), Does.Contain($"{box}: removed {half.Length} bytes of an interrupted delivery"));
		Assert.That(new FileInfo(t.P("/mail/box/bob/L.mbox")).Length, Is.EqualTo(0), "the note is gone once the append is done");
	}

	[TestCase("other-inode")]
	[TestCase("grown-since")]
	public void ANoteThatDoesNotFitTheMailboxCutsNothing(string how)
	{
		using var t = NewTree("bob");
		Assert.That(Send(t, EnvLine + "Subject: one\n\nfirst\n", "-r", "bob").Exit, Is.EqualTo(0));
		var one = Mail.Box(t, "bob");
		var ino = new Mono.Unix.UnixFileInfo(t.P("/mail/box/bob/mbox")).Inode;
		// a mailbox rewritten by a mail reader since (another file), or grown past the note's append
		File.WriteAllText(t.P("/mail/box/bob/L.mbox"), how == "other-inode" ? $"{ino + 1} 0 4096\n" : $"{ino} 0 3\n");
		Assert.That(Send(t, EnvLine + "Subject: two\n\nsecond\n", "-r", "bob").Exit, Is.EqualTo(0));
		Assert.That(Mail.Box(t, "bob"), Does.StartWith(one).And.EndWith("Subject: two\n\nsecond\n\n"));
		Assert.That(t.Read("/sys/log/mail"), Does.Not.Contain("interrupted"));
	}

	const string HalfParent = """
		import os, subprocess, sys
		send, err, how = sys.argv[1:4]
		env = dict(os.environ, upasparent=str(os.getpid()))  # as smtpd names itself to its mailer
		p = subprocess.Popen([send, '-r', 'bob'], stdin=subprocess.PIPE, stderr=open(err, 'w'), env=env)
		p.stdin.write(b'From alice Mon Nov 24 01:21:00 EST 2025\nSubject: half\n\nthe first half\n')
		p.stdin.flush()
		if how == 'die':
		    os.kill(os.getpid(), 9)
		p.stdin.close()
		sys.exit(p.wait())
		""";

	/// <summary>smtpd killed while it pipes a message to send -r (here before send even started): the end of input is not the end of the message.</summary>
	[TestCase("die", false)]
	[TestCase("live", true)]
	public void SendDeliversNothingWhenItsSenderDiesBeforeTheEnd(string how, bool delivered)
	{
		using var t = NewTree("bob");
		t.Write("/half.py", HalfParent);
		var err = t.P("/send.err");
		var psi = new ProcessStartInfo("python3") { UseShellExecute = false, RedirectStandardError = true };
		foreach (var a in new[] { t.P("/half.py"), Repo.Bin("send"), err, how })
			psi.ArgumentList.Add(a);
		psi.Environment["PLAN9"] = t.Dir;
		using (var p = Process.Start(psi)!)
			Assert.That(p.WaitForExit(30_000), Is.True);
		if (delivered) {
			Assert.That(Mail.Box(t, "bob"), Does.Contain("Subject: half\n\nthe first half\n\n"));
			return;
		}
		Wait.Until(() => File.Exists(err) && File.ReadAllText(err).Contains("nothing delivered"), () => "send's complaint", TimeSpan.FromSeconds(20));
		Assert.That(File.ReadAllText(err), Is.EqualTo("send: the sender died before the end of the message; nothing delivered\n"));
		Assert.That(Mail.Box(t, "bob"), Is.Empty);
	}

	// ---- runq and smtp ----

	/// <summary>A job as qer writes it: D. then C.</summary>
	static string Job(Tree t, string user, string id, string sender, string dest, string rcpt, string body)
	{
		var dir = t.P("/mail/queue/" + user);
		Directory.CreateDirectory(dir);
		File.WriteAllText(Path.Join(dir, "D." + id), $"From {sender} Thu Nov 26 03:35:01 UTC 2026 remote from gnot\nSubject: {id}\n\n{body}");
		File.WriteAllText(Path.Join(dir, "C." + id), $"smtp {sender} {dest} {rcpt} \n");
		return dir;
	}

	[Test]
	public void ACommandOutlivingAKilledRunqKeepsTheJobLockedAndReadsTheWholeMessage()
	{
		using var t = NewTree();
		var body = string.Concat(Enumerable.Range(0, 5000).Select(i => $"line {i} of the message\n"));
		var dir = Job(t, "alice", "000001", "alice", "net!h.example", "bob", body);
		// the queue command kills its runq first, then looks at the job's lock and reads its stdin
		t.Write("/cmd", """
			#!/bin/sh
			d=$(dirname "$0")
			kill -9 $PPID; sleep 0.3
			# held only when flock finds the lock taken (exit 75), not when it fails for another reason
			flock -n -E 75 "$runqjob" true; rc=$?
			case "$runqjob:$rc" in
			:*) echo 'no $runqjob' ;;
			*:0) echo free ;;
			*:75) echo held ;;
			*) echo "flock failed with status $rc" ;;
			esac > "$d/lock.tmp"
			cat > "$d/got"
			echo 'the words of the command' >&2
			mv "$d/lock.tmp" "$d/lock"
			""", 0x1ed);
		var (_, _, exit) = Tree.Exec(t.Prog(Repo.Bin("runq"), ["-a", t.P("/mail/queue"), t.P("/cmd")]), []);
		Assert.That(exit, Is.EqualTo(137), "runq died of SIGKILL");
		Wait.Until(() => File.Exists(t.P("/lock")), () => "the orphaned command", TimeSpan.FromSeconds(20));
		Assert.That(t.Read("/lock"), Is.EqualTo("held\n"), "the command holds the job's lock when runq is gone");
		Assert.That(t.Read("/got"), Is.EqualTo($"From alice Thu Nov 26 03:35:01 UTC 2026 remote from gnot\nSubject: 000001\n\n{body}"));
		Assert.That(File.ReadAllText(Path.Join(dir, "E.000001")), Is.EqualTo("the words of the command\n"));
		// and once the command is gone, a new runq may take the job
		using var again = new FileStream(Path.Join(dir, "C.000001"), FileMode.Open, FileAccess.Read, FileShare.Read);
	}

	[TestCase("250 2.0.0 ok", null, 0, false)]
	[TestCase("451 4.3.0 try later", null, 2, true)]
	[TestCase("250 2.0.0 ok", "550 5.1.1 no such user", 1, true)]
	public void SmtpRemovesTheRunqJobTheMomentTheMessageIsDelivered(string dataReply, string? secondRcpt, int exit, bool kept)
	{
		using var t = NewTree();
		t.Write("/sys/log/smtp", "");
		t.Write("/sys/log/smtp.fail", "");
		var dir = Job(t, "alice", "000002", "alice", "net!h.example", "bob", "hello\n");
		File.WriteAllText(Path.Join(dir, "E.000002"), "an earlier try\n");
		var ctl = Path.Join(dir, "C.000002");
		bool? goneAtQuit = null;
		using var s = new ScriptServer {
			DataReply = dataReply,
			Answer = c => {
				if (c == "QUIT")
					goneAtQuit = !File.Exists(ctl);
				return c.StartsWith("RCPT TO:<carol") && secondRcpt is not null ? secondRcpt : null;
			},
		};
		var rcpts = secondRcpt is null ? new[] { "bob@example.org" } : ["bob@example.org", "carol@example.org"];
		var r = Smtp.Run(t, File.ReadAllBytes(Path.Join(dir, "D.000002")), [Smtp.Domain, s.Dial, "alice", .. rcpts], new Dictionary<string, string> { ["runqjob"] = ctl });
		Assert.That(r.Exit, Is.EqualTo(exit), r.Err);
		Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(),
			Is.EqualTo(kept ? new[] { "C.000002", "D.000002", "E.000002" } : Array.Empty<string>()));
		if (!kept)
			Assert.That(goneAtQuit, Is.True, "the job was removed before QUIT");
	}

	[Test]
	public void SmtpRemovesOnlyAControlFile()
	{
		using var t = NewTree();
		t.Write("/sys/log/smtp", "");
		t.Write("/precious", "keep me\n");
		using var s = new ScriptServer();
		var r = Smtp.Run(t, Encoding.Latin1.GetBytes("Subject: x\n\nbody\n"), [Smtp.Domain, s.Dial, "alice", "bob@example.org"],
			new Dictionary<string, string> { ["runqjob"] = t.P("/precious") });
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(t.Read("/precious"), Is.EqualTo("keep me\n"));
	}

	// ---- the kill loops ----

	/// <summary>Message n of a loop: its Subject names it, its body (1 to 200 KB) is a function of n.</summary>
	static string Body(int n)
	{
		var sb = new StringBuilder();
		var lines = 1 + (n * 7919 % 4000);
		for (var i = 0; i < lines; i++)
			sb.Append($"message {n} line {i}: the quick brown fox\n");
		return sb.ToString();
	}

	/// <summary>The mbox's entries by message number; fails on any entry that is not a whole message of the loop.</summary>
	static Dictionary<int, int> Entries(string mbox)
	{
		var count = new Dictionary<int, int>();
		foreach (var e in Mail.Split(mbox)) {
			var m = Regex.Match(e, @"\nSubject: kill (\d+)\n");
			Assert.That(m.Success, Is.True, $"an entry without its Subject: {e[..Math.Min(e.Length, 1000)]}");
			var n = int.Parse(m.Groups[1].Value);
			var body = e[(e.IndexOf("\n\n", StringComparison.Ordinal) + 2)..];
			Assert.That(body, Is.EqualTo(Body(n) + "\n"), $"message {n} is not whole in the mailbox");
			count[n] = count.GetValueOrDefault(n) + 1;
		}
		return count;
	}

	/// <summary>One SMTP transaction; whether the message was acknowledged with 250.</summary>
	static bool Deliver(System.Net.IPEndPoint ep, int n)
	{
		try {
			using var tcp = new TcpClient();
			tcp.Connect(ep);
			tcp.ReceiveTimeout = tcp.SendTimeout = 30_000;
			using var c = new Client(tcp.GetStream());
			if (c.Reply() is not [.., var g] || !g.StartsWith("220"))
				return false;
			foreach (var cmd in new[] { "HELO client.9fans.net", "MAIL FROM:<alice@example.org>", "RCPT TO:<glenda@example.com>" })
				if (!c.Ask(cmd).StartsWith('2'))
					return false;
			if (!c.Ask("DATA").StartsWith("354"))
				return false;
			c.Send(Tree.Crlf($"Subject: kill {n}\n\n{Body(n)}.\n"));
			var ok = c.Reply() is [.., var r] && r.StartsWith("250");
			c.Send("QUIT\r\n");
			return ok;
		} catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException) {
			return false;
		}
	}

	[Test]
	public void KillingSendAndTheListenerNeverLosesNorDuplicatesNorHalvesAMessage()
	{
		using var t = NewTree("glenda");
		// send under another name, so that the listener runs it as a program (the default one is delivered in process: InProcessCrashTests)
		File.CreateSymbolicLink(t.P("/bin/upas/sendp"), Repo.Bin("send"));
		var flags = new[] { "-m", t.P("/bin/upas/sendp") };
		var l = new Listening(t, "127.0.0.1", flags);
		var acked = new List<int>();
		var tried = 0;
		var kills = (send: 0, listener: 0);
		var stop = DateTime.UtcNow.AddSeconds(20);
		var rnd = new Random(5);
		try {
			var client = Task.Run(() => {
				var n = 0;
				while (DateTime.UtcNow < stop) {
					var ep = Volatile.Read(ref l).Endpoint;
					if (Deliver(ep, ++n)) {
						lock (acked)
							acked.Add(n);
					} else {
						Thread.Sleep(10); // the listener is being restarted
					}
					tried = n;
				}
			});
			while (!client.IsCompleted) {
				Thread.Sleep(rnd.Next(20, 250));
				if (rnd.Next(4) == 0) {
					// the listener, its sessions and whatever they were doing; a new one on another port
					var old = l;
					Kill9(old.P.Id);
					old.P.WaitForExit(10_000);
					old.Dispose();
					Volatile.Write(ref l, new Listening(t, "127.0.0.1", flags));
					kills.listener++;
				} else if (Children(l.P.Id).Where(p => Runs(p, Repo.Bin("send"))).ToList() is [var victim, ..]) {
					Kill9(victim);
					kills.send++;
				}
			}
			client.Wait();
			// one more after the last kill: it cuts off what a killed send may have left half written
			Assert.That(Deliver(l.Endpoint, ++tried), Is.True, "a delivery after the kills");
			acked.Add(tried);
		} finally {
			l.Dispose();
		}
		Wait.Until(() => Running(Repo.Bin("send"), t).Count == 0, () => "orphaned sends", TimeSpan.FromSeconds(60));
		var got = Entries(Mail.Box(t, "glenda"));
		TestContext.Out.WriteLine($"{tried} messages tried, {acked.Count} acknowledged, {got.Count} in the mailbox; killed send {kills.send}×, the listener {kills.listener}×");
		Assert.That(kills.send, Is.GreaterThan(3), "the loop killed sends");
		Assert.That(kills.listener, Is.GreaterThan(1), "the loop killed listeners");
		foreach (var n in acked)
			Assert.That(got.GetValueOrDefault(n), Is.EqualTo(1), $"acknowledged message {n} is in the mailbox once");
		Assert.That(got.Values.Max(), Is.EqualTo(1), "no message twice");
		Assert.That(got.Keys.Except(Enumerable.Range(1, tried)), Is.Empty);
	}
}
