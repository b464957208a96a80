using System.Diagnostics;
using System.Text;

namespace Upas.Send;

/// <summary>What one run of send comes to: its exit status and the lines it prints on stdout (-x) and stderr.</summary>
readonly record struct Outcome(int Status, IReadOnlyList<string> Out, IReadOnlyList<string> Err);

/// <summary>
/// send's delivery as a library (mailer.md §2–§7): what send -r rcpt…, send rcpt… and send -x addr… do, for the
/// send program and for smtpd -L, which delivers in its own process through the same code. An instance may be
/// used by many threads at once: every call reads its own settings (Settings, reloaded when a file changes).
/// </summary>
sealed class Delivery(string defaultSender, bool inProcess = false)
{
	/// <summary>The sender of a message without an envelope line (send: $upasname, else the invoking user).</summary>
	public string DefaultSender { get; } = defaultSender;

	readonly SettingsCache settings = new();
	// queue ids for this process when it delivers many messages: the pid alone names only 27 jobs at a time
	int queueSeq = Environment.ProcessId;

	/// <summary>send [-r] rcpt…: delivers or queues input for each recipient; bounce: failures are bounced (-r), not printed.</summary>
	public Outcome Deliver(Content input, IReadOnlyList<string> rcpts, bool bounce)
	{
		var errs = new List<string>();
		try {
			return new Outcome(Run(input, rcpts, bounce, errs), [], errs);
		} catch (TempFail e) {
			return new Outcome(1, [], [.. errs, "Mail " + e.Message]);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException) {
			return new Outcome(1, [], [.. errs, "Mail " + e.Message]);
		}
	}

	int Run(Content input, IReadOnlyList<string> rcpts, bool bounce, List<string> errs)
	{
		var s = settings.Get();
		var now = DateTime.Now;
		var msg = Message.Parse(input, DefaultSender, now);
		List<(string, string)> failed;
		if (msg.TooManyHops) {
			// refused for every recipient, as Plan 9 does, before any delivery
			failed = rcpts.Select(r => (r, "possible forward loop")).ToList();
			foreach (var (r, why) in failed)
				LogError(r, msg, why);
		} else {
			failed = Deliver(s, msg, rcpts, now);
		}
		if (failed.Count == 0)
			return 0;
		if (!bounce) {
			foreach (var (r, why) in failed)
				errs.Add($"send: {r}: {why}");
			return 1;
		}
		if (msg.Bulk)
			return 0; // never bounced: Precedence: bulk or an unreturnable sender
		var b = Bounce.Make(msg, failed, s.Domain, now);
		// a bounce that cannot be delivered either is only logged (its sender is /dev/null)
		_ = Deliver(s, b, [msg.Sender], now);
		return 0;
	}

	/// <summary>
	/// send -x: what send -r would do with each address, one line each: local!user, host!user (each destination a
	/// forward leads to), or "why: addr" for an address send -r would bounce; status 1 when any would be.
	/// </summary>
	public Outcome Expand(IReadOnlyList<string> addrs)
	{
		try {
			return ExpandAll(settings.Get(), addrs);
		} catch (TempFail e) {
			return new Outcome(1, [], ["Mail " + e.Message]);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException) {
			return new Outcome(1, [], ["Mail " + e.Message]);
		}
	}

	Outcome ExpandAll(Settings s, IReadOnlyList<string> addrs)
	{
		var o = new List<string>();
		var refused = false;
		foreach (var r in addrs) {
			var t = new Targets(s.Local, (_, _) => { }, s.Rules, DefaultSender);
			t.Add(r);
			if (t.Failed.Count > 0) {
				refused = true;
				var why = t.Failed[0].Why is "unknown user" or "Invalid address" or "forwarding loop" ? t.Failed[0].Why : "invalid address: " + EnvAddr.Printable(t.Failed[0].Why);
				o.Add(why + ": " + EnvAddr.Printable(r));
				continue;
			}
			foreach (var b in t.Boxes)
				o.Add("local!" + b.User);
			foreach (var p in t.Pipes)
				o.Add("local!" + p.User);
			foreach (var c in t.Commands)
				foreach (var cr in c.Rcpts)
					o.Add(EnvAddr.Printable(cr.Addr));
			foreach (var h in t.HostOrder)
				foreach (var (rt, _) in t.Hosts[h])
					o.Add(rt.Host + "!" + rt.User);
		}
		return new Outcome(refused ? 1 : 0, o, []);
	}

	/// <summary>Delivers or queues msg for each recipient; the ones that failed for good, with the reason.</summary>
	List<(string, string)> Deliver(Settings s, Message msg, IEnumerable<string> rcpts, DateTime now)
	{
		var t = new Targets(s.Local, (addr, why) => LogError(addr, msg, why), s.Rules, msg.Sender, msg.Bulk);
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
		Content QueueData() => msg.QueueData(s.Sys);
		foreach (var p in t.Pipes) {
			var addr = "local!" + p.User;
			if (Pipeto.Run(p.User, p.Program, p.Mbox, QueueData()) is { } why)
				t.Fail(p.Origin is null ? p.Given : addr, p.Origin, why);
			else
				Syslog.Log("mail", $"remote {addr} From {EnvAddr.Printable(msg.Sender)} {msg.Date}{Targets.Via(p.Origin, addr)} {msg.Body.Length}");
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
				Queue.Enqueue(msg.Sender, h, users.Select(x => x.Rt.User), QueueData(), QueueId());
				foreach (var (rt, origin) in users) {
					var addr = $"{rt.Host}!{rt.User}";
					Syslog.Log("mail", $"remote {addr} From {EnvAddr.Printable(msg.Sender)} {msg.Date}{Targets.Via(origin, addr)} {msg.Body.Length}");
				}
			}
			StartRunq();
		}
		return t.Failed.Select(f => (f.Rcpt, f.Why)).ToList();
	}

	/// <summary>The six digits of the next queue job's id: send's pid (null), or in process a number of its own per job.</summary>
	string? QueueId() =>
		inProcess ? ((uint)Interlocked.Increment(ref queueSeq) % 1000000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture) : null;

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
