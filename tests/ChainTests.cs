using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// The whole delivery chain with real parts only, two trees for two hosts. On the sending host gnot
/// (cs.bell-labs.com): a local user's send queues the message and starts runq, runq runs the shipped
/// remotemail, remotemail runs smtp. On the receiving host plan9 (ourdomains 9fans.net, norelay on):
/// smtpd -L, the recipient check at RCPT (send -x's answer, in process), send into the mailbox. The only change to a shipped file is the one an
/// administrator makes to send all mail through a smarthost: remotemail dials the other host's listener
/// (tcp!127.0.0.1!port) instead of net!host, and gives smtp each recipient with its domain (host!user) so
/// that RCPT TO names user@host rather than user@127.0.0.1.
/// </summary>
[TestFixture]
public class ChainTests
{
	const string LocalSys = "gnot";
	const string RemoteSys = "plan9";
	const string Date = @"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \d{4}";

	static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

	// ---- the two hosts ----

	static void Link(Tree t, string prog)
	{
		Directory.CreateDirectory(t.P("/bin/upas"));
		File.CreateSymbolicLink(t.P("/bin/upas/" + prog), Repo.Bin(prog));
	}

	/// <summary>The receiving host: smtpd.conf, send, bob's mailbox. Its listener is started by the test.</summary>
	static Tree Remote()
	{
		var t = new Tree("""
			defaultdomain 9fans.net
			ourdomains 9fans.net
			norelay on
			greetdelay 0

			""");
		File.WriteAllText(t.P("/dev/sysname"), RemoteSys);
		Link(t, "send");
		Directory.CreateDirectory(t.P("/mail/box/bob"));
		t.Write("/sys/log/mail", "");
		return t;
	}

	/// <summary>The receiving host's smtpd -L, its mailer the real send.</summary>
	static Listening Listen(Tree remote) => new(remote, "127.0.0.1", "-m", remote.P("/bin/upas/send"));

	/// <summary>
	/// The sending host: send, runq and smtp installed, its name in the network database (sys=gnot
	/// dom=gnot.cs.bell-labs.com: smtp's EHLO name), alice's mailbox, and remotemail routed to the smarthost.
	/// </summary>
	static Tree Local(int smarthostPort)
	{
		var t = new Tree("defaultdomain cs.bell-labs.com\n");
		File.WriteAllText(t.P("/dev/sysname"), LocalSys);
		t.Write("/lib/ndb/local", "sys=gnot dom=gnot.cs.bell-labs.com\n\tip=127.0.0.1\n");
		foreach (var p in new[] { "send", "runq", "smtp" })
			Link(t, p);
		t.Write("/mail/lib/remotemail", Smarthost(smarthostPort), 0x1ed);
		Directory.CreateDirectory(t.P("/mail/box/alice"));
		foreach (var l in new[] { "mail", "runq", "smtp", "smtp.fail" })
			t.Write("/sys/log/" + l, "");
		return t;
	}

	/// <summary>The shipped remotemail with its exec line routed to the smarthost.</summary>
	static string Smarthost(int port)
	{
		var script = File.ReadAllText(Path.Join(Repo.Dir, "mail/lib/remotemail"));
		const string exec = "exec \"$ROOT/bin/upas/smtp\" -h \"$dom\" -- \"$addr\" \"$sender\" \"$@\"\n";
		Assert.That(Regex.Matches(script, Regex.Escape(exec)), Has.Count.EqualTo(1), "the shipped remotemail's exec line");
		return script.Replace(exec, $"""
			# smarthost: all mail goes to one server; the recipients keep their domain (net!host user -> host!user)
			host=${"{"}addr#*!{"}"}
			for r do set -- "$@" "$host!$r"; shift; done
			exec "$ROOT/bin/upas/smtp" -h "$dom" -- 'tcp!127.0.0.1!{port}' "$sender" "$@"

			""");
	}

	// ---- running things ----

	/// <summary>A local user's send: PLAN9=the tree, upasname=user, the message on stdin.</summary>
	static (string Out, string Err, int Exit) Send(Tree t, string user, string message, params string[] rcpts)
	{
		var psi = t.Prog(t.P("/bin/upas/send"), rcpts);
		psi.Environment["upasname"] = user;
		var (o, e, x) = Tree.Exec(psi, Encoding.Latin1.GetBytes(message));
		return (Encoding.Latin1.GetString(o), e, x);
	}

	/// <summary>ROOT/bin/upas/runq [flags] -a ROOT/mail/queue ROOT/mail/lib/remotemail, as cron would run it.</summary>
	static (string Err, int Exit) Runq(Tree t, params string[] flags)
	{
		var (_, e, x) = Tree.Exec(t.Prog(t.P("/bin/upas/runq"), [.. flags, "-a", t.P("/mail/queue"), t.P("/mail/lib/remotemail")]), [], 120_000);
		return (e, x);
	}

	/// <summary>A log's lines without the "sys Mon dd hh:mm:ss " prefix, each checked for it.</summary>
	static string[] Log(Tree t, string sys, string name)
	{
		var path = t.P("/sys/log/" + name);
		if (!File.Exists(path))
			return [];
		var prefix = new Regex($@"^{sys} [A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d ");
		return File.ReadAllText(path, Encoding.Latin1).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => {
			Assert.That(prefix.IsMatch(l), Is.True, $"{name} log line without the syslog prefix: {l}");
			return prefix.Replace(l, "");
		}).ToArray();
	}

	static string[] LocalLog(Tree t, string name) => Log(t, LocalSys, name);
	static string[] RemoteLog(Tree t, string name) => Log(t, RemoteSys, name);

	/// <summary>The files of the sending host's queue (in every user directory), as dir/name.</summary>
	static string[] Queue(Tree t)
	{
		var q = t.P("/mail/queue");
		return !Directory.Exists(q) ? [] :
			Directory.GetFiles(q, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(q, f)).Order(StringComparer.Ordinal).ToArray();
	}

	/// <summary>Waits for cond, at most Patience; fails with what() when it does not come.</summary>
	static void Await(Func<bool> cond, Func<string> what) => Wait.Until(cond, what, Patience, 100);

	/// <summary>
	/// Waits until no process but the listeners names the tree on its command line: the runq that send started
	/// (and its remotemail, smtp) is done, and the next runq cannot meet its lock.
	/// </summary>
	static void Quiesce(Tree t, params Listening[] except)
	{
		var mine = except.Select(l => l.P.Id).Append(Environment.ProcessId).ToHashSet();
		List<string> Busy()
		{
			var busy = new List<string>();
			foreach (var d in Directory.GetDirectories("/proc")) {
				if (!int.TryParse(Path.GetFileName(d), out var pid) || mine.Contains(pid))
					continue;
				try {
					var cmd = File.ReadAllText(Path.Join(d, "cmdline")).Replace('\0', ' ');
					if (cmd.Contains(t.Dir, StringComparison.Ordinal))
						busy.Add($"{pid}: {cmd}");
				} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
				}
			}
			return busy;
		}
		Await(() => Busy().Count == 0, () => "still running: " + string.Join("; ", Busy()));
	}

	static string Dump(params (string Name, Tree T)[] trees) =>
		string.Join("\n", trees.SelectMany(x => Directory.GetFiles(x.T.P("/sys/log")).Order().Select(f =>
			$"--- {x.Name} {Path.GetFileName(f)}\n{File.ReadAllText(f)}")));

	// ---- the tests ----

	/// <summary>
	/// The sending host's EHLO name comes from the network database, as smtp.md §1.2 says: the dom= of the
	/// system's entry (sys=gnot), a multi-line entry, other systems' entries ignored. smtp -f shows it in From:.
	/// </summary>
	[Test]
	public void SmtpTakesItsDomainFromTheNetworkDatabase()
	{
		using var t = new Tree();
		File.WriteAllText(t.P("/dev/sysname"), LocalSys);
		t.Write("/lib/ndb/local", """
			# the network database
			ipnet=bell ip=10.0.0.0 ipmask=255.0.0.0
			sys=kremvax dom=kremvax.9fans.net ip=10.0.0.1
			sys=gnot
				ip=10.0.0.2
				dom=gnot.cs.bell-labs.com

			""");
		var psi = new ProcessStartInfo(Repo.Bin("smtp")) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		foreach (var a in new[] { "-f", "net!9fans.net", "glenda", "bob" })
			psi.ArgumentList.Add(a);
		psi.Environment["PLAN9"] = t.Dir;
		psi.Environment.Remove("site");
		var (o, err, exit) = Tree.Exec(psi, "Subject: x\n\nhi\n"u8.ToArray());
		Assert.That((exit, err), Is.EqualTo((0, "")));
		var text = Encoding.Latin1.GetString(o);
		Assert.That(text, Does.Match(@"^Message-ID: <[0-9a-f]+@gnot\.cs\.bell-labs\.com>\r\nFrom: (.* <)?glenda@gnot\.cs\.bell-labs\.com>?\r\n"));
	}

	/// <summary>The Authentication-Results smtpd puts first (issue 12), as a pattern: the chain's domains are outside the test DNS's zones, so SPF and DMARC are temperror.</summary>
	static string AuthRes(string mailFrom, string fromDomain) =>
		$"Authentication-Results: 9fans\\.net;\n\tspf=temperror smtp\\.mailfrom={Regex.Escape(mailFrom)};\n\tdkim=none;\n\tdmarc=temperror header\\.from={Regex.Escape(fromDomain)}\n";

	const string Letter = "From: Alice <alice@cs.bell-labs.com>\n" +
		"To: bob@9fans.net\n" +
		"Subject: across the chain\n" +
		"Date: Thu, 26 Nov 2026 03:00:00 +0000\n" +
		"Message-ID: <chain.1@gnot.cs.bell-labs.com>\n" +
		"\n" +
		"From the desk of Alice: lunch?\n" +
		".a leading dot\n" +
		"..two dots\n" +
		".\n" +
		">From stays\n" +
		"caf\u00e9 cr\u00e8me, 8-bit\n" +
		"\ttabbed   and trailing blanks   \n" +
		"\n" +
		"last line\n";

	[Test]
	public void LocalSenderReachesRemoteMailbox()
	{
		using var remote = Remote();
		using var listener = Listen(remote);
		var port = listener.Endpoint.Port;
		using var local = Local(port);

		var r = Send(local, "alice", Letter, "bob@9fans.net");
		Assert.That((r.Exit, r.Out, r.Err), Is.EqualTo((0, "", "")));
		// send queued it (qer's layout) and started runq itself: nothing else runs it
		Assert.That(LocalLog(local, "mail"), Has.Length.EqualTo(1));
		Assert.That(LocalLog(local, "mail")[0], Does.Match($"^remote 9fans\\.net!bob From alice {Date} {Letter.Length}$"));
		Await(() => LocalLog(local, "runq").Any(l => l.StartsWith("removing ", StringComparison.Ordinal)), () => Dump(("local", local), ("remote", remote)));
		Quiesce(local, listener);

		// the remote mailbox: one message, byte for byte what bob reads
		var box = Mail.Box(remote, "bob");
		var msgs = Mail.Split(box);
		Assert.That(msgs, Has.Count.EqualTo(1), box);
		var m = Regex.Match(msgs[0], $"^From cs\\.bell-labs\\.com!alice ({Date})\n{AuthRes("alice@cs.bell-labs.com", "cs.bell-labs.com")}Received: from gnot\\.cs\\.bell-labs\\.com \\(\\[127\\.0\\.0\\.1\\]\\) by plan9; ({Date})\n");
		Assert.That(m.Success, Is.True, msgs[0]);
		Assert.That(msgs[0][m.Length..], Is.EqualTo(Letter.Replace("\nFrom the desk", "\n From the desk") + "\n"));
		Assert.That(Tree.NoDates(msgs[0]), Does.Not.Contain("\r"));

		// the local queue is empty; the logs of both hosts tell the story
		Assert.That(Queue(local), Is.Empty);
		var subdir = Path.GetFileName(Directory.GetDirectories(local.P("/mail/queue")).Single());
		var runq = LocalLog(local, "runq");
		Assert.That(runq, Has.Length.EqualTo(2), string.Join("\n", runq));
		Assert.That(runq[0], Does.Match($@"^{subdir}/C\.[0-9a-z]\d{{5}}: execing '{Regex.Escape(local.P("/mail/lib/remotemail"))}' 'smtp' 'alice' 'net!9fans\.net' 'bob'$"));
		var ctl = runq[0][..runq[0].IndexOf(':')];
		Assert.That(runq[1], Is.EqualTo("removing " + ctl));
		// smtp counts the message as read (LF line ends, before dot-stuffing); smtpd what it read off the wire
		Assert.That(LocalLog(local, "smtp"), Is.EqualTo(new[] { $"alice sent {Letter.Length} bytes to bob@9fans.net" }));
		Assert.That(LocalLog(local, "smtp.fail"), Is.Empty);
		// what smtpd gave send: "From sender date remote from " LF, then what send wrote after the From_ line
		var envelope = msgs[0][..msgs[0].IndexOf('\n')];
		var body = msgs[0][(envelope.Length + 1)..^1].Replace("\n From the desk", "\nFrom the desk");
		Assert.That(RemoteLog(remote, "smtpd"), Is.EqualTo(new[] {
			"ehlo from 127.0.0.1 as gnot.cs.bell-labs.com",
			"authres [gnot.cs.bell-labs.com/127.0.0.1] cs.bell-labs.com!alice spf=temperror(alice@cs.bell-labs.com) dkim=none dmarc=temperror(cs.bell-labs.com)",
			$"[gnot.cs.bell-labs.com/127.0.0.1] cs.bell-labs.com!alice sent {envelope.Length + " remote from \n".Length + body.Length} bytes to 9fans.net!bob",
		}));
		Assert.That(RemoteLog(remote, "mail"), Is.EqualTo(new[] { $"delivered bob From cs.bell-labs.com!alice {m.Groups[1].Value} {body.Length}" }));
		Assert.That(listener.Stop(), Is.EqualTo(0));
	}

	const string PythonMany = """
		import smtplib, sys
		who, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		s = smtplib.SMTP('127.0.0.1', port, local_hostname='%s.cat-v.org' % who, timeout=60)
		for i in range(n):
			body = "".join("%s message %d line %d From here .\r\n" % (who, i, j) for j in range(int(sys.argv[4])))
			msg = ("From: %s@cat-v.org\r\nTo: bob@9fans.net\r\nSubject: %s %d\r\n"
				"Message-ID: <%s.%d@cat-v.org>\r\n\r\nFrom %s, message %d\r\n.dot\r\n%s" % (who, who, i, who, i, who, i, body))
			refused = s.sendmail('%s@cat-v.org' % who, ['bob@9fans.net'], msg)
			assert refused == {}, refused
		print(s.quit())
		""";

	/// <summary>What PythonMany's message i of who looks like in the mailbox, after the From_ and Received: lines.</summary>
	static string PythonEntry(string who, int i, int lines) =>
		$"From: {who}@cat-v.org\nTo: bob@9fans.net\nSubject: {who} {i}\nMessage-ID: <{who}.{i}@cat-v.org>\n\n" +
		$" From {who}, message {i}\n.dot\n" +
		string.Concat(Enumerable.Range(0, lines).Select(j => $"{who} message {i} line {j} From here .\n")) + "\n";

	static string RunClient(string prog, params string[] args)
	{
		if (!Repo.Have(prog))
			Assert.Fail($"{prog} is not installed: run sys/lib/upas/prereq");
		var psi = new ProcessStartInfo(prog) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		var (o, e, x) = Tree.Exec(psi, [], 120_000);
		var text = Encoding.Latin1.GetString(o) + e;
		Assert.That(x, Is.EqualTo(0), $"{prog} failed:\n{text}");
		return text;
	}

	/// <summary>
	/// swaks and Python's smtplib to smtpd -L with the real send behind it: the mailbox byte for byte; then two
	/// smtplib clients at once, 20 messages each, into the same mailbox: 40 whole messages, none interleaved.
	/// (InteropTests covers these clients against a recording mailer; SendTests covers concurrent sends without smtpd.)
	/// </summary>
	[Test]
	public void SmtpClientsToListenerToMbox()
	{
		using var remote = Remote();
		using var listener = Listen(remote);
		var port = listener.Endpoint.Port.ToString(CultureInfo.InvariantCulture);
		var data = Path.Join(remote.Dir, "swaks.txt");
		const string swaksHead = "From: Alice <alice@cat-v.org>\nTo: bob@9fans.net\nSubject: swaks\n" +
			"Date: Thu, 26 Nov 2026 03:00:00 +0000\nMessage-ID: <swaks.1@client.cat-v.org>\n\n";
		const string swaksBody = "From the desk of alice\n.leading dot\n>From quoted\ncaf\u00e9\nlast\n";
		File.WriteAllText(data, swaksHead + swaksBody, Encoding.Latin1);
		var sw = RunClient("swaks", "--server", "127.0.0.1:" + port, "--helo", "client.cat-v.org", "--from", "alice@cat-v.org",
			"--to", "bob@9fans.net", "--data", "@" + data, "--timeout", "30");
		Assert.That(sw, Does.Contain("<-  250 2.5.0 sent").And.Contain("<-  221 2.0.0 Successful termination"));
		var py = RunClient("python3", "-c", PythonMany, "carol", "1", port, "3");
		Assert.That(py, Does.Contain("221"));

		var msgs = Mail.Split(Mail.Box(remote, "bob"));
		Assert.That(msgs, Has.Count.EqualTo(2));
		var from = $@"^From cat-v\.org!alice {Date}\n{AuthRes("alice@cat-v.org", "cat-v.org")}Received: from client\.cat-v\.org \(\[127\.0\.0\.1\]\) by plan9; {Date}\n";
		Assert.That(msgs[0], Does.Match(from));
		// swaks ends the data with one more line end of its own
		Assert.That(Regex.Replace(msgs[0], from, ""), Is.EqualTo(swaksHead + " From the desk of alice\n.leading dot\n>From quoted\ncaf\u00e9\nlast\n\n\n"));
		var fromCarol = $@"^From cat-v\.org!carol {Date}\n{AuthRes("carol@cat-v.org", "cat-v.org")}Received: from carol\.cat-v\.org \(\[127\.0\.0\.1\]\) by plan9; {Date}\n";
		Assert.That(msgs[1], Does.Match(fromCarol));
		Assert.That(Regex.Replace(msgs[1], fromCarol, ""), Is.EqualTo(PythonEntry("carol", 0, 3)));

		// two clients at once into the same mailbox
		File.Delete(remote.P("/mail/box/bob/mbox"));
		const int n = 20, lines = 1500;
		var clients = new[] { "dave", "erin" }.Select(who => Task.Run(() => RunClient("python3", "-c", PythonMany, who, n.ToString(CultureInfo.InvariantCulture), port, lines.ToString(CultureInfo.InvariantCulture)))).ToArray();
		Task.WaitAll(clients);
		msgs = Mail.Split(Mail.Box(remote, "bob"));
		Assert.That(msgs, Has.Count.EqualTo(2 * n));
		var seen = new HashSet<string>();
		foreach (var msg in msgs) {
			var m = Regex.Match(msg, $@"^From cat-v\.org!(dave|erin) {Date}\nAuthentication-Results: 9fans\.net;\n\tspf=temperror smtp\.mailfrom=\1@cat-v\.org;\n\tdkim=none;\n\tdmarc=temperror header\.from=cat-v\.org\nReceived: from (dave|erin)\.cat-v\.org \(\[127\.0\.0\.1\]\) by plan9; {Date}\nFrom: \1@cat-v\.org\nTo: bob@9fans\.net\nSubject: \1 (\d+)\n");
			Assert.That(m.Success && m.Groups[1].Value == m.Groups[2].Value, Is.True, msg.Length > 300 ? msg[..300] : msg);
			var who = m.Groups[1].Value;
			var i = int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
			Assert.That(msg[msg.IndexOf("\nFrom: ", StringComparison.Ordinal)..][1..], Is.EqualTo(PythonEntry(who, i, lines)), $"{who} {i} is whole");
			Assert.That(seen.Add($"{who} {i}"), Is.True, $"{who} {i} twice");
		}
		Assert.That(seen, Has.Count.EqualTo(2 * n));
		Assert.That(RemoteLog(remote, "mail").Count(l => l.StartsWith("delivered bob From cat-v.org!", StringComparison.Ordinal)), Is.EqualTo(2 + 2 * n));
		Assert.That(listener.Stop(), Is.EqualTo(0));
	}

	/// <summary>
	/// The receiving host's send cannot append to bob's mailbox (it is a directory): send exits 1, smtpd answers
	/// 450 at the end of DATA, smtp exits 2, runq keeps the job with the error in E.; the next runq within 30 s
	/// leaves it alone; once the mailbox is fixed, runq -E delivers it.
	/// </summary>
	[Test]
	public void RemoteTemporaryFailureKeepsTheJobQueuedAndPaced()
	{
		using var remote = Remote();
		Directory.CreateDirectory(remote.P("/mail/box/bob/mbox"));
		using var listener = Listen(remote);
		var port = listener.Endpoint.Port;
		using var local = Local(port);

		Assert.That(Send(local, "alice", Letter, "bob@9fans.net").Exit, Is.EqualTo(0));
		Await(() => LocalLog(local, "runq").Any(l => l.StartsWith("message: ", StringComparison.Ordinal)), () => Dump(("local", local), ("remote", remote)));
		Quiesce(local, listener);

		var runq = LocalLog(local, "runq");
		Assert.That(runq, Has.Length.EqualTo(2), string.Join("\n", runq));
		Assert.That(runq[0], Does.EndWith($": execing '{local.P("/mail/lib/remotemail")}' 'smtp' 'alice' 'net!9fans.net' 'bob'"));
		Assert.That(runq[1], Is.EqualTo("message: Retry, Temporary Failure"));
		var ctl = runq[0][..runq[0].IndexOf(':')];
		var (sub, id) = (ctl[..ctl.IndexOf('/')], ctl[(ctl.IndexOf('/') + 3)..]);
		Assert.That(Queue(local), Is.EqualTo(new[] { $"{sub}/C.{id}", $"{sub}/D.{id}", $"{sub}/E.{id}" }));
		var err = local.Read($"/mail/queue/{sub}/E.{id}");
		Assert.That(err, Does.Match($"^{Date} connect to tcp!127\\.0\\.0\\.1!{port}:\n450-4\\.0\\.0 Mail .+\n450 4\\.0\\.0 mail process terminated abnormally\nRetry, Temporary Failure\n$"));
		Assert.That(LocalLog(local, "smtp.fail"), Has.Length.EqualTo(1));
		Assert.That(LocalLog(local, "smtp.fail")[0], Does.StartWith($"delivery to tcp!127.0.0.1!{port} failed: 450-4.0.0 Mail "));
		Assert.That(RemoteLog(remote, "smtpd").Count(l => l.StartsWith("ehlo from ", StringComparison.Ordinal)), Is.EqualTo(1));
		Assert.That(RemoteLog(remote, "smtpd"), Has.Some.Match(@"^\+\+\[gnot\.cs\.bell-labs\.com/127\.0\.0\.1\] cs\.bell-labs\.com!alice .*/bin/upas/send returned '.+' Mail "));
		Assert.That(Directory.GetFiles(remote.P("/mail/box/bob/mbox")), Is.Empty);

		// at once again: paced, the job is not run and the other host hears nothing
		var again = Runq(local, "-d");
		Assert.That(again.Exit, Is.EqualTo(0), again.Err);
		Assert.That(again.Err, Does.Contain($"runq: {ctl}: too soon after the last error"));
		Assert.That(LocalLog(local, "runq"), Is.EqualTo(runq));
		Assert.That(RemoteLog(remote, "smtpd").Count(l => l.StartsWith("ehlo from ", StringComparison.Ordinal)), Is.EqualTo(1));
		Assert.That(Queue(local), Has.Length.EqualTo(3));
		Assert.That(local.Read($"/mail/queue/{sub}/E.{id}"), Is.EqualTo(err));

		// the mailbox mended, runq -E does not wait
		Directory.Delete(remote.P("/mail/box/bob/mbox"));
		File.WriteAllText(remote.P("/mail/box/bob/mbox"), "");
		var fixedRun = Runq(local, "-E");
		Assert.That(fixedRun.Exit, Is.EqualTo(0), fixedRun.Err);
		Assert.That(Queue(local), Is.Empty, Dump(("local", local), ("remote", remote)));
		Assert.That(LocalLog(local, "runq")[2..], Is.EqualTo(new[] { runq[0], "removing " + ctl }));
		var msgs = Mail.Split(Mail.Box(remote, "bob"));
		Assert.That(msgs, Has.Count.EqualTo(1));
		Assert.That(msgs[0], Does.Match($"^From cs\\.bell-labs\\.com!alice {Date}\n{AuthRes("alice@cs.bell-labs.com", "cs.bell-labs.com")}Received: from gnot\\.cs\\.bell-labs\\.com "));
		Assert.That(msgs[0], Does.EndWith("\n\n From the desk of Alice: lunch?\n.a leading dot\n..two dots\n.\n>From stays\ncaf\u00e9 cr\u00e8me, 8-bit\n\ttabbed   and trailing blanks   \n\nlast line\n\n"));
		Assert.That(RemoteLog(remote, "smtpd").Count(l => l.StartsWith("ehlo from ", StringComparison.Ordinal)), Is.EqualTo(2));
		Assert.That(listener.Stop(), Is.EqualTo(0));
	}

	/// <summary>
	/// An unknown user at the receiving host: smtpd's recipient check refuses it at RCPT (550 5.1.1), smtp exits 1, runq
	/// bounces the message to the sender, and the bounce lands in alice's mailbox on the sending host.
	/// </summary>
	[Test]
	public void RemotePermanentFailureBouncesToTheSender()
	{
		using var remote = Remote();
		using var listener = Listen(remote);
		var port = listener.Endpoint.Port;
		using var local = Local(port);

		var letter = Letter.Replace("To: bob@9fans.net", "To: nobody@9fans.net").Replace("Subject: across the chain", "Subject: to nobody at all");
		Assert.That(Send(local, "alice", letter, "nobody@9fans.net").Exit, Is.EqualTo(0));
		Await(() => LocalLog(local, "runq").Any(l => l.StartsWith("removing ", StringComparison.Ordinal)), () => Dump(("local", local), ("remote", remote)));
		Quiesce(local, listener);

		var runq = LocalLog(local, "runq");
		Assert.That(runq, Has.Length.EqualTo(4), string.Join("\n", runq));
		var exec = $"'{local.P("/mail/lib/remotemail")}' 'smtp' 'alice' 'net!9fans.net' 'nobody'";
		Assert.That(runq[0], Does.EndWith(": execing " + exec));
		var ctl = runq[0][..runq[0].IndexOf(':')];
		Assert.That(runq[1..], Is.EqualTo(new[] { "message: Permanent Failure", $"{ctl}: returning {exec}", "removing " + ctl }));
		Assert.That(Queue(local), Is.Empty);
		Assert.That(RemoteLog(remote, "smtpd"), Does.Contain("Disallowed cs.bell-labs.com!alice (gnot.cs.bell-labs.com/127.0.0.1) to blocked, unknown or invalid name 9fans.net!nobody"));
		Assert.That(LocalLog(local, "smtp.fail"), Is.EqualTo(new[] { $"delivery to tcp!127.0.0.1!{port} failed: 550 5.1.1 9fans.net!nobody ... user unknown" }));
		Assert.That(File.Exists(remote.P("/mail/box/bob/mbox")), Is.False);

		// the bounce: from /dev/null (never bounced back), runq's text with smtp's symptom, the original attached
		var msgs = Mail.Split(Mail.Box(local, "alice"));
		Assert.That(msgs, Has.Count.EqualTo(1));
		var b = msgs[0];
		Assert.That(b, Does.Match($"^From /dev/null {Date}\nFrom: postmaster\nTo: alice\nSubject: permanent failure\nDate: .+\nMIME-Version: 1\\.0\nContent-Type: multipart/mixed;\n\tboundary=\"(upas-[a-z]{{26}})\"\nContent-Disposition: inline\n\nThis is a multi-part message in MIME format\\.\n--\\1\n"));
		var boundary = Regex.Match(b, "boundary=\"(upas-[a-z]{26})\"").Groups[1].Value;
		var text = b[b.IndexOf("Content-Transfer-Encoding: 7bit\n\n", StringComparison.Ordinal)..];
		Assert.That(text, Does.Match(
			"^Content-Transfer-Encoding: 7bit\n\n" +
			"Your request ``smtp net!9fans\\.net nobody '' failed \\(code Permanent Failure\\)\\.\nThe symptom was:\n\n" +
			$"{Date} connect to tcp!127\\.0\\.0\\.1!{port}:\n" +
			"550 5\\.1\\.1 9fans\\.net!nobody \\.\\.\\. user unknown\nPermanent Failure\n" +
			$"--{boundary}\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"));
		// the original as it was queued; in the mailbox its "From " line is escaped like any other
		var attached = b[(b.IndexOf("Content-Type: message/rfc822\nContent-Disposition: inline\n\n", StringComparison.Ordinal) + "Content-Type: message/rfc822\nContent-Disposition: inline\n\n".Length)..];
		Assert.That(attached, Is.EqualTo(letter.Replace("\nFrom the desk", "\n From the desk") + $"--{boundary}--\n\n"));
		Assert.That(attached, Does.Contain("\nSubject: to nobody at all\n"));
		var mail = LocalLog(local, "mail");
		Assert.That(mail, Has.Length.EqualTo(2));
		Assert.That(mail[1], Does.Match($"^delivered alice From /dev/null {Date} \\d+$"));
		Assert.That(listener.Stop(), Is.EqualTo(0));
	}

	/// <summary>Queued message n of the kill loop: its body (1 to 60 KB) is a function of n.</summary>
	static string KillBody(int n) =>
		string.Concat(Enumerable.Range(0, 1 + n * 7919 % 1500).Select(i => $"queued message {n} line {i}: all work and no play\n"));

	/// <summary>
	/// runq killed -9 at random points, again and again, while it pushes 40 queued messages through smtp to the
	/// remote listener: every message arrives, whole, exactly once (smtp removes a delivered job itself, and the
	/// job's lock lives on in a command that outlives its runq).
	/// </summary>
	[Test]
	public void KillingRunqNeverLosesNorDuplicatesAQueuedMessage()
	{
		using var remote = Remote();
		using var listener = Listen(remote);
		using var local = Local(listener.Endpoint.Port);
		File.Delete(local.P("/bin/upas/runq")); // send starts no runq: the test runs them, and kills them
		const int N = 40;
		for (var n = 1; n <= N; n++)
			Assert.That(Send(local, "alice", $"Subject: queued {n}\n\n{KillBody(n)}", "bob@9fans.net").Exit, Is.EqualTo(0));
		Assert.That(Queue(local).Count(f => Path.GetFileName(f).StartsWith("C.")), Is.EqualTo(N));

		var rnd = new Random(9);
		int runs = 0, kills = 0;
		while (Queue(local).Any(f => Path.GetFileName(f).StartsWith("C."))) {
			Assert.That(runs++, Is.LessThan(400), "the queue drains: " + Dump(("local", local), ("remote", remote)));
			var psi = new ProcessStartInfo(Repo.Bin("runq")) { UseShellExecute = false, RedirectStandardError = true };
			foreach (var a in new[] { "-E", "-a", local.P("/mail/queue"), local.P("/mail/lib/remotemail") })
				psi.ArgumentList.Add(a);
			psi.Environment["PLAN9"] = local.Dir;
			using var p = Process.Start(psi)!;
			_ = p.StandardError.ReadToEndAsync();
			if (!p.WaitForExit(rnd.Next(5, 200))) {
				p.Kill();
				kills++;
			}
			p.WaitForExit(30_000);
		}
		Quiesce(local, listener); // the smtps of killed runqs
		var box = Mail.Box(remote, "bob");
		var seen = new Dictionary<int, int>();
		foreach (var m in Mail.Split(box)) {
			var subj = Regex.Match(m, @"\nSubject: queued (\d+)\n");
			Assert.That(subj.Success, Is.True, m[..Math.Min(m.Length, 500)]);
			var n = int.Parse(subj.Groups[1].Value);
			Assert.That(m[(m.IndexOf("\n\n", StringComparison.Ordinal) + 2)..], Is.EqualTo(KillBody(n) + "\n"), $"message {n} whole");
			seen[n] = seen.GetValueOrDefault(n) + 1;
		}
		TestContext.Out.WriteLine($"{runs} runqs, {kills} killed; {seen.Count} messages arrived");
		Assert.That(kills, Is.GreaterThan(5), "the loop killed runqs in the middle of their work");
		Assert.That(seen.Keys.Order(), Is.EqualTo(Enumerable.Range(1, N)), "every message arrived");
		Assert.That(seen.Where(kv => kv.Value > 1).Select(kv => kv.Key), Is.Empty, "no message arrived twice");
		Assert.That(Queue(local), Is.Empty, "no job files left behind");
	}
}
