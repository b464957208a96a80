using System.Text;
using Upas.Dmarc;

namespace Upas.Smtpd;

/// <summary>DATA: the policy checks before the 354, the message to the mailer, the reply after it.</summary>
sealed partial class Session
{
	const int HeaderWindow = 16 * 1024;

	async Task Data()
	{
		if (Rejected())
			return;
		if (sender is null) {
			rc++;
			Reply("503 2.5.2 Data without MAIL FROM:");
			return;
		}
		if (rcpts.Count == 0) {
			rc++;
			Reply("503 2.5.2 Data without RCPT TO:");
			return;
		}
		if (!policy.Trusted) {
			var why = await Task.Run(() => policy.ValidateSender(sender, rcpts.Count, netroot));
			if (why is not null) {
				foreach (var r in rcpts)
					Log($"[{him}/{rsys}] {sender} -> {r} sendercheck: {why}");
				rc++;
				Reply(why.StartsWith("rejected:", StringComparison.Ordinal) ? $"554 5.7.1 {why}" : $"450 4.7.0 {why}");
				return;
			}
		}
		if (filter is not (Verdict.Accept or Verdict.Trusted) && policy.NoSpamFiltering(rcpts))
			filter = Verdict.Accept;
		var dump = false;
		switch (filter) {
		case Verdict.Accept:
		case Verdict.Trusted:
			break;
		case Verdict.Dialup:
			LogEach("Dialup");
			rc++;
			hardreject = true;
			Reply("554 5.7.1 We don't accept mail from dial-up ports.");
			return;
		case Verdict.Blocked:
		case Verdict.Delay:
			LogEach("Blocked");
			rc++;
			dump = true;
			break;
		default:
			// denied and refused senders never get this far (they are refused at MAIL)
			LogEach("Confused");
			rc++;
			Reply("554-5.7.0 We have had an internal mailer error classifying your message.");
			Reply($"554-5.7.0 Filterstate is {(int)filter}");
			Reply($"554 5.7.0 Contact postmaster@{dom} for more information.");
			return;
		}
		if (filter == Verdict.Accept && opt.Greylist && !await GreylistPasses())
			return;

		// smtpd -L with the default mailer delivers in process, through send's own code; otherwise the mailer runs
		IMessageSink? sink = dump ? DumpSink.Create(SaveBlocked, sender, DateTime.Now, Log)
			: opt.Listen.Count > 0 && LocalDeliver.For(opt) is { } lib ? new LocalDeliver(lib, rcpts)
			: Mailer.Start(opt.MailerPath, ["-r", "--", .. rcpts]);
		if (sink is null) {
			Reply("450 4.3.2 We're busy right now, try later");
			return;
		}
		if (sink is DumpSink d)
			trace.Line($"saving in {d.Path}");
		Reply("354 Input message; end with <CRLF>.<CRLF>");
		trace.Line($"# sent 354; accepting DATA {PlanTime.Ctime(DateTime.Now)}");
		var txSender = sender;
		var txRcpts = rcpts.ToList();
		var state = filter;
		sender = null;
		rcpts.Clear();
		deadline = DateTime.Now.AddMinutes(145);
		try {
			await Transfer(sink, txSender, txRcpts, state);
		} finally {
			deadline = DateTime.Now.AddSeconds(conf.SessionTimeout);
		}
	}

	void LogEach(string action)
	{
		// once per recipient, at most once per transaction
		foreach (var r in rcpts.Distinct())
			Log($"{action} {sender} {Who} ({r})");
	}

	/// <summary>Reads the message through the dot reader into the sink; answers after the sink has finished.</summary>
	async Task Transfer(IMessageSink sink, string txSender, List<string> txRcpts, Verdict state)
	{
		var dots = new DotReader(conf.MaxMessage, DotReader.DefaultMaxLine);
		var header = new MemoryStream();
		var outbuf = System.Buffers.ArrayPool<byte>.Shared.Rent(DotReader.MaxOutput(64 * 1024)); // not a fresh 128 KB per message
		try {
			await Transfer(sink, txSender, txRcpts, state, dots, header, outbuf);
		} finally {
			System.Buffers.ArrayPool<byte>.Shared.Return(outbuf);
		}
	}

	async Task Transfer(IMessageSink sink, string txSender, List<string> txRcpts, Verdict state, DotReader dots, MemoryStream header, byte[] outbuf)
	{
		var headerDone = false;
		long written = 0;
		string? pipeError = null;
		var timeout = TimeSpan.FromSeconds(conf.DataTimeout);
		var auth = StartMessageAuth();
		AuthDecision? decision = null;
		// a signed message's body waits here (64 KB in memory, the rest in an unlinked file) until its signatures are checked
		Send.Content.Writer? held = null;
		string? holdError = null;
		HeaderTail? tail = null; // the header past the window, when it goes on past it

		ReadOnlyMemory<byte> Tail(ReadOnlyMemory<byte> b) => tail is null || tail.Done ? b : tail.Filter(b.Span);

		var hops = new HopCounter(afterFromLine: true);

		bool Stopped(int length)
		{
			// a looping or refused message: the mailer gets no more of it, and is killed at the end
			return pipeError is not null || length == 0 || hops.TooMany || decision?.Refusal is not null;
		}

		async Task Put(ReadOnlyMemory<byte> b)
		{
			hops.Feed(b.Span);
			if (Stopped(b.Length))
				return;
			try {
				await sink.Input.WriteAsync(b);
				written += b.Length;
			} catch (Exception e) when (e is IOException or ObjectDisposedException) {
				pipeError = "write error";
			}
		}

		bool PutHeld(ReadOnlySpan<byte> b)
		{
			hops.Feed(b);
			if (Stopped(b.Length))
				return b.Length == 0;
			try {
				sink.Input.Write(b);
				written += b.Length;
				return true;
			} catch (Exception e) when (e is IOException or ObjectDisposedException) {
				pipeError = "write error";
				return false;
			}
		}

		// the header goes out once every result is known: at the end of the header window when there is no signature
		async Task PutHeader()
		{
			var text = Encoding.Latin1.GetString(header.GetBuffer(), 0, (int)header.Length);
			var h = Rfc822.Parse(text, a => Qualify(a, him));
			decision = await auth.DecideAsync(); // DMARC reads From: as the verifier kept it, not as qualified for the mailer
			await Put(MailerInput(text, h, txSender, txRcpts, auth, decision));
		}

		try {
			while (!dots.Done) {
				if (io.Buffered == 0) {
					var left = deadline - DateTime.Now;
					var st = await io.FillAsync(left < timeout ? (left > TimeSpan.Zero ? left : TimeSpan.Zero) : timeout);
					if (st != ReadStatus.Ok) {
						sink.Abort();
						var what = st == ReadStatus.Timeout ? "timeout" : "network eof";
						Log(st == ReadStatus.Timeout ? $"note: {txSender}->{txRcpts[0]}: alarm" : $"++[{him}/{rsys}] {txSender} {opt.Mailer} error during pipemsg: {what}; returned 'signal: kill' ");
						trace.Line("at end of message; didn't see .");
						Reply("450 4.0.0 mail process terminated abnormally");
						if (st == ReadStatus.Timeout)
							Reply($"421 4.4.2 {dom} timeout, closing connection");
						throw new Hangup(0);
					}
				}
				var chunk = io.Data.Length > 64 * 1024 ? io.Data[..(64 * 1024)] : io.Data;
				var used = dots.Feed(chunk, outbuf, out var n);
				if (trace.On)
					trace.Input(io.Data[..used].ToArray());
				io.Consume(used);
				if (n == 0)
					continue;
				if (!dots.TooBig && !dots.LineTooLong)
					auth.Feed(outbuf.AsSpan(0, n));
				if (!headerDone) {
					header.Write(outbuf, 0, n);
					if (!HeaderComplete(header))
						continue;
					headerDone = true;
					if (auth.StripsOurs && !HeaderEnds(header))
						tail = new HeaderTail(dom);
					if (auth.MustWait)
						held = new Send.Content.Writer(long.MaxValue);
					else
						await PutHeader();
				} else if (held is not null) {
					if (holdError is null && !dots.TooBig) {
						try {
							held.Append(outbuf.AsSpan(0, n));
						} catch (Send.TempFail e) {
							holdError = e.Message;
						}
					}
				} else
					await Put(Tail(outbuf.AsMemory(0, n)));
			}
			trace.Line("at end of message; saw .");
			if (!dots.TooBig && !dots.LineTooLong && holdError is null) {
				if (!headerDone || held is not null)
					await PutHeader();
				if (held is not null) {
					using var body = held.Finish();
					if (!Stopped(1))
						await Task.Run(() => body.CopyTo(b => PutHeld(tail is null || tail.Done ? b : tail.Filter(b).Span))); // a pipe's blocking writes, off the session's thread
					if (tail is not null)
						PutHeld(tail.Flush().Span);
				} else if (tail is not null)
					await Put(tail.Flush());
			}
		} finally {
			held?.Dispose();
		}

		if (dots.TooBig || dots.LineTooLong) {
			sink.Abort();
			Log($"++[{him}/{rsys}] {txSender} message refused: {(dots.TooBig ? $"over {conf.MaxMessage} bytes" : $"a line over {DotReader.DefaultMaxLine} bytes")}");
			Reply(dots.TooBig
				? "552 5.3.4 Message size exceeds fixed maximum message size"
				: $"552 5.3.4 Message has a line longer than {DotReader.DefaultMaxLine} bytes");
			return;
		}
		if (holdError is not null) {
			sink.Abort();
			Log($"++[{him}/{rsys}] {txSender} cannot hold the message: {holdError}");
			Reply("451 4.3.0 Cannot hold the message now, try again later");
			return;
		}
		if (decision is not null)
			Log($"authres [{him}/{rsys}] {txSender} {decision.LogLine}");
		if (hops.TooMany) {
			sink.Abort(); // killed before its input ends: send delivers nothing
			Log($"++[{him}/{rsys}] {txSender} message refused: {hops.Count} Received: fields, a forwarding loop");
			Reply("554 5.4.6 Too many hops");
			return;
		}
		if (decision?.Refusal is { } refusal) {
			sink.Abort(); // as for a loop: nothing is delivered
			Log($"++[{him}/{rsys}] {txSender} message refused: {refusal[4..]}");
			Reply(refusal);
			return;
		}
		trace.Line("waiting for upas/send to exit");
		var status = await sink.FinishAsync();
		if (pipeError is not null)
			status ??= "write error";
		var errs = sink.Errors;
		trace.Line($"# {Environment.ProcessId} upas/send status {status ?? "0"} at {PlanTime.Ctime(DateTime.Now)}");
		foreach (var e in errs)
			trace.Line($"# {Environment.ProcessId} error {e}");
		if (status is null) {
			switch (state) {
			case Verdict.Blocked:
				Reply("554 5.7.1 we believe this is spam.  we don't accept it.");
				return;
			case Verdict.Delay:
				Reply("450 4.3.0 There will be a delay in delivery of this message.");
				return;
			}
			Log($"[{him}/{rsys}] {txSender} sent {written} bytes to {string.Join(", ", txRcpts)}");
			if (errs.Count > 0)
				Log($"{opt.Mailer} returned good status, but said: {string.Join(" ", errs)}");
			Reply("250 2.5.0 sent");
			trace.Line($"# {Environment.ProcessId} sent 250 reply {PlanTime.Ctime(DateTime.Now)}");
			return;
		}
		var first = errs.Count > 0 ? errs[0] : "";
		if (first.Length > 127)
			first = first[..127];
		var refused = errs.Any(e => e.Contains("mail refused", StringComparison.Ordinal));
		var code = refused ? "554" : "450";
		var ecode = refused ? "5.0.0" : "4.0.0";
		if (refused)
			Log($"++[{him}/{rsys}] {txSender} {opt.Mailer} refused: {first}");
		else
			Log($"++[{him}/{rsys}] {txSender} {opt.Mailer} {(pipeError is not null ? $"error during pipemsg: {pipeError}; " : "")}returned '{status}' {first}");
		foreach (var e in errs)
			Reply($"{code}-{ecode} {EnvAddr.Printable(e)}"); // the mailer may echo what the client sent
		Reply($"{code} {ecode} mail process terminated abnormally");
	}

	/// <summary>Whether the header window holds the header's end (else the header goes on past it).</summary>
	static bool HeaderEnds(MemoryStream h)
	{
		var b = h.GetBuffer().AsSpan(0, (int)h.Length);
		return b.Length > 0 && (b[0] == '\n' || b.IndexOf("\n\n"u8) >= 0);
	}

	/// <summary>
	/// The header window is complete at the blank line, at the first line end past 16 KB, or at the end
	/// of the message; a line longer than the data line limit is refused anyway, so memory stays bounded.
	/// </summary>
	static bool HeaderComplete(MemoryStream h)
	{
		var b = h.GetBuffer().AsSpan(0, (int)h.Length);
		if (b.Length == 0)
			return false;
		if (b[0] == '\n' || b.IndexOf("\n\n"u8) >= 0)
			return true;
		return b.Length >= HeaderWindow && (b[(HeaderWindow - 1)..].IndexOf((byte)'\n') >= 0 || b.Length > HeaderWindow + DotReader.DefaultMaxLine);
	}

	/// <summary>
	/// What the mailer reads (smtpd.md §13.3): the From_ line, Received:, X-warnings, From:/To: when missing,
	/// the header with domainless addresses qualified by the client's name, then the rest verbatim.
	/// </summary>
	byte[] MailerInput(string text, ParsedHeader h, string txSender, List<string> txRcpts, MessageAuth auth, AuthDecision decision)
	{
		var now = PlanTime.Ctime(DateTime.Now);
		var sb = new StringBuilder();
		sb.Append($"From {txSender} {now} remote from \n");
		sb.Append(decision.Fields); // Authentication-Results: first (RFC 8601 §5: above the fields it speaks of)
		sb.Append($"Received: from {him} ([{rsys}]) by {me}; {now}\n");
		if (NoRelay && !policy.Trusted)
			foreach (var w in XWarnings(h, txSender))
				sb.Append($"X-warning: {w}\n");
		if (!h.HasOriginator)
			sb.Append($"From: {txSender}\n");
		if (!h.HasDestination)
			sb.Append($"To: {string.Join(", ", txRcpts)}\n");
		foreach (var f in h.Fields) {
			if (auth.StripsOurs && (AuthResults.ClaimsDomain(f.Text, dom) || f.Name.Equals("X-upas-quarantine", StringComparison.OrdinalIgnoreCase))) {
				trace.Line($"removed the client's {f.Name}: field claiming {dom}");
				continue; // a forgery: only we speak for our domain
			}
			sb.Append(f.Text).Append('\n');
		}
		sb.Append(text, h.Consumed, text.Length - h.Consumed);
		return Encoding.Latin1.GetBytes(sb.ToString());
	}

	/// <summary>smtpd's header rewrite (smtpd.md §13.3 item 6): an address without '@' gets "@" and the client's name.</summary>
	internal static string Qualify(string addr, string him) => addr.Contains('@') ? addr : addr + "@" + him;

	/// <summary>Tags mail from untrusted clients that claims to come from one of our domains.</summary>
	IEnumerable<string> XWarnings(ParsedHeader h, string txSender)
	{
		if (txSender != "/dev/null" && policy.IsOurDomain(txSender.Split('!')[0]))
			yield return "suspect envelope domain";
		foreach (var f in h.Fields) {
			if (!f.Name.Equals("Sender", StringComparison.OrdinalIgnoreCase) || f.FirstAddress is null)
				continue;
			if (!IsOurs(f.FirstAddress))
				yield break; // a mailing list: stop tagging
			yield return "suspect Sender: domain";
		}
		foreach (var f in h.Fields) {
			if (f.Name.Equals("From", StringComparison.OrdinalIgnoreCase) && f.FirstAddress is { } a && IsOurs(a))
				yield return "suspect From: domain";
		}
	}

	bool IsOurs(string addr)
	{
		if (addr.Contains('!'))
			return policy.IsOurDomain(addr[..addr.IndexOf('!')]);
		if (addr.Contains('@'))
			return policy.IsOurDomain(addr[(addr.LastIndexOf('@') + 1)..]);
		return policy.IsOurDomain(him);
	}
}
