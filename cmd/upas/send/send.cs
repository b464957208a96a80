using System.Diagnostics;
using System.Text;

namespace Upas.Send;

/// <summary>
/// upas/send: the mailer smtpd hands messages to (mailer.md §1, §7).
///	send -r rcpt…	deliver the message on stdin: local users to /mail/box/user/mbox, others queued
///			for runq; undeliverable recipients are bounced to the sender, exit 0.
///	send rcpt…	the same, but failures are reported on stderr with exit 1 instead of bounced.
///	send -x addr…	print what each address resolves to: local!user, host!user, or "unknown user: addr".
/// A mailbox is a directory: mkdir $PLAN9/mail/box/ken && touch $PLAN9/mail/box/ken/mbox
/// In it, a forward file redirects the user's mail, a pipeto program takes it instead of mbox (mailer.md §3).
/// </summary>
static class Program
{
	static int Main(string[] argv)
	{
		try {
			return Run(argv);
		} catch (TempFail e) {
			Console.Error.WriteLine("Mail " + e.Message);
			return 1;
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException) {
			Console.Error.WriteLine("Mail " + e.Message);
			return 1;
		}
	}

	static int Usage()
	{
		Console.Error.WriteLine("usage: send [-r] rcpt... | send -x addr...");
		return 1;
	}

	static int Run(string[] argv)
	{
		bool rflag = false, xflag = false;
		var a = new Args("send", argv);
		for (char c; (c = a.Next()) != '\0';) {
			switch (c) {
			case 'r': rflag = true; break;
			case 'x': xflag = true; break;
			default: return Usage();
			}
		}
		var rcpts = a.Rest;
		if (rcpts.Length == 0)
			return Usage();
		var sys = SysName.Get();
		var local = new Route.LocalNames(sys);
		rules = Rewrite.Load(sys, m => Syslog.Log("mail", m));
		if (xflag)
			return Expand(rcpts, local, DefaultSender());

		var feeder = Feeder.Of();
		var input = ReadInput();
		// the end of input may be the death of smtpd, not the end of the message: deliver no half
		if (rflag && feeder.Died()) {
			Console.Error.WriteLine("send: the sender died before the end of the message; nothing delivered");
			return 1;
		}
		var now = DateTime.Now;
		var msg = Message.Parse(input, DefaultSender(), now);
		List<(string, string)> failed;
		if (msg.TooManyHops) {
			// refused for every recipient, as Plan 9 does, before any delivery
			failed = rcpts.Select(r => (r, "possible forward loop")).ToList();
			foreach (var (r, why) in failed)
				LogError(r, msg, why);
		} else {
			failed = Deliver(msg, rcpts, local, sys, now);
		}
		if (failed.Count == 0)
			return 0;
		if (!rflag) {
			foreach (var (r, why) in failed)
				Console.Error.WriteLine($"send: {r}: {why}");
			return 1;
		}
		if (msg.Bulk)
			return 0; // never bounced: Precedence: bulk or an unreturnable sender
		var bounce = Bounce.Make(msg, failed, Domain(sys), now);
		var back = Deliver(bounce, [msg.Sender], local, sys, now);
		// a bounce that cannot be delivered either is only logged (its sender is /dev/null)
		_ = back;
		return 0;
	}

	/// <summary>/mail/lib/rewrite's rules; null when there is none (then routing is built in).</summary>
	static Rewrite? rules;

	/// <summary>The sender of a message without an envelope line: $upasname, else the invoking user.</summary>
	static string DefaultSender() =>
		Environment.GetEnvironmentVariable("upasname") is { Length: > 0 } un ? un : Posix.UserName();

	/// <summary>
	/// -x: what send -r would do with each address, one line each: local!user, host!user (each destination a
	/// forward leads to), or "why: addr" for an address send -r would bounce; exit 1 when any would be.
	/// </summary>
	static int Expand(string[] addrs, Route.LocalNames local, string sender)
	{
		var o = new StringBuilder();
		var refused = false;
		foreach (var r in addrs) {
			var t = new Targets(local, (_, _) => { }, rules, sender);
			t.Add(r);
			if (t.Failed.Count > 0) {
				refused = true;
				var why = t.Failed[0].Why is "unknown user" or "Invalid address" or "forwarding loop" ? t.Failed[0].Why : "invalid address: " + EnvAddr.Printable(t.Failed[0].Why);
				o.Append(why).Append(": ").Append(EnvAddr.Printable(r)).Append('\n');
				continue;
			}
			foreach (var b in t.Boxes)
				o.Append("local!").Append(b.User).Append('\n');
			foreach (var p in t.Pipes)
				o.Append("local!").Append(p.User).Append('\n');
			foreach (var c in t.Commands)
				foreach (var cr in c.Rcpts)
					o.Append(EnvAddr.Printable(cr.Addr)).Append('\n');
			foreach (var h in t.HostOrder)
				foreach (var (rt, _) in t.Hosts[h])
					o.Append(rt.Host).Append('!').Append(rt.User).Append('\n');
		}
		Console.Out.Write(o.ToString());
		return refused ? 1 : 0;
	}

	/// <summary>The message on stdin, kept as the spec says: the first 64 KB in memory, the rest in a spool file.</summary>
	static Content ReadInput()
	{
		using var stdin = Console.OpenStandardInput();
		if (Content.Read(stdin, Message.MaxSize) is { } c)
			return c;
		Console.Error.WriteLine("mail refused: message too long");
		Environment.Exit(1);
		return null!;
	}

	/// <summary>The domain of postmaster in bounces: smtpd.conf's defaultdomain, else the system name.</summary>
	static string Domain(string sys)
	{
		try {
			foreach (var line in File.ReadAllLines(Root.Path9("/mail/lib/smtpd.conf"))) {
				var t = ConfTokens.Split(line);
				if (t.Count >= 2 && t[0] == "defaultdomain")
					return t[1];
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
		}
		return sys;
	}

	/// <summary>Delivers or queues msg for each recipient; the ones that failed for good, with the reason.</summary>
	static List<(string, string)> Deliver(Message msg, IEnumerable<string> rcpts, Route.LocalNames local, string sys, DateTime now)
	{
		var t = new Targets(local, (addr, why) => LogError(addr, msg, why), rules, msg.Sender, msg.Bulk);
		foreach (var r in rcpts)
			t.Add(r);
		if (t.Boxes.Count > 0) {
			var length = msg.MboxLength();
			foreach (var b in t.Boxes) {
				Mbox.Append(b.Path, length, msg.MboxEntry);
				Syslog.Log("mail", $"delivered {b.User} From {EnvAddr.Printable(msg.Sender)} {msg.Date}{Targets.Via(b.Origin, b.User)} {msg.Body.Length}");
			}
		}
		// what Plan 9 pipes and queues alike: the "remote from" envelope line, no escapes
		Content QueueData() => msg.QueueData(sys);
		if (t.Pipes.Count > 0) {
			foreach (var p in t.Pipes) {
				var addr = "local!" + p.User;
				if (Pipeto.Run(p.User, p.Program, p.Mbox, QueueData()) is { } why)
					t.Fail(p.Origin is null ? p.Given : addr, p.Origin, why);
				else
					Syslog.Log("mail", $"remote {addr} From {EnvAddr.Printable(msg.Sender)} {msg.Date}{Targets.Via(p.Origin, addr)} {msg.Body.Length}");
			}
		}
		foreach (var c in t.Commands) {
			if (c.Run(QueueData()) is { } why) {
				foreach (var r in c.Rcpts)
					t.Fail(r.Addr, r.Origin, why);
				continue;
			}
			foreach (var r in c.Rcpts)
				Syslog.Log("mail", $"remote {EnvAddr.Printable(r.Addr)} From {EnvAddr.Printable(msg.Sender)} {msg.Date}{Targets.Via(r.Origin, r.Addr)} {msg.Body.Length}");
		}
		if (t.HostOrder.Count > 0) {
			foreach (var h in t.HostOrder) {
				var users = t.Hosts[h];
				Queue.Enqueue(msg.Sender, h, users.Select(x => x.Rt.User), QueueData());
				foreach (var (rt, origin) in users) {
					var addr = $"{rt.Host}!{rt.User}";
					Syslog.Log("mail", $"remote {addr} From {EnvAddr.Printable(msg.Sender)} {msg.Date}{Targets.Via(origin, addr)} {msg.Body.Length}");
				}
			}
			StartRunq();
		}
		return t.Failed.Select(f => (f.Rcpt, f.Why)).ToList();
	}

	/// <summary>"error addr From sender date" and "error+ why" as one entry of /sys/log/mail (mailer.md §6).</summary>
	static void LogError(string addr, Message msg, string why)
	{
		// control bytes of an address or reason shown escaped: nobody forges a log line through them
		var line = Syslog.Format(Syslog.SysName, DateTime.Now, $"error {EnvAddr.Printable(addr)} From {EnvAddr.Printable(msg.Sender)} {msg.Date}");
		AppendFile.Write(Root.Path9("/sys/log/mail"), [.. line, .. Encoding.UTF8.GetBytes($"error+ {EnvAddr.Printable(why.Replace('\n', ' '))}\n")]);
	}

	/// <summary>Starts ROOT/bin/upas/runq -a ROOT/mail/queue ROOT/mail/lib/remotemail in the background, if there is one.</summary>
	static void StartRunq()
	{
		var runq = Root.Path9("/bin/upas/runq");
		if (!File.Exists(runq))
			return;
		try {
			var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
			psi.ArgumentList.Add("-c");
			// detached from smtpd's pipes (it waits for the end of our stderr) and from our session
			psi.ArgumentList.Add("if command -v setsid >/dev/null 2>&1; then set -- setsid \"$@\"; fi; \"$@\" </dev/null >/dev/null 2>&1 &");
			psi.ArgumentList.Add("sh");
			foreach (var w in new[] { runq, "-a", Queue.Root9, Root.Path9("/mail/lib/remotemail") })
				psi.ArgumentList.Add(w);
			psi.RedirectStandardError = false;
			ChildEnv.Apply(psi);
			using var p = Process.Start(psi);
			p?.WaitForExit(10_000);
		} catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException) {
			Syslog.Log("mail", $"cannot start runq: {e.Message}");
		}
	}
}
