using System.Text;

namespace Upas.Smtpd;

/// <summary>Ends the session: the reply (if any) has been queued; Code is the process exit status.</summary>
sealed class Hangup(int code) : Exception
{
	public int Code { get; } = code;
}

/// <summary>One SMTP connection's state and its command loop (Bell Labs smtpd.c, one object per connection).</summary>
sealed partial class Session
{
	const int MaxRejects = 100;

	/// <summary>$smtpdfault: a command word that makes the session fail as a bug would (for testing the listener).</summary>
	static readonly string? Fault = Environment.GetEnvironmentVariable("smtpdfault") is { Length: > 0 } f ? f : null;

	readonly Options opt;
	readonly Conf conf;
	readonly Policy policy;
	readonly SmtpIO io;
	readonly Trace trace;
	readonly string rsys, lsys, netroot;
	readonly string me, dom;
	readonly DateTime started = DateTime.Now;
	DateTime deadline;

	string him = "";
	bool saidHello;
	string? sender;
	readonly List<string> rcpts = [];
	Verdict filter = Verdict.Accept;
	bool authenticated, hardreject, passwordInClear, tls;
	int rc;
	readonly HashSet<string> refusedDomains = new(StringComparer.OrdinalIgnoreCase);

	bool NoRelay => opt.NoRelay || conf.NoRelay;
	bool VerifySender => opt.VerifySenderDom || conf.VerifySenderDom;
	bool SaveBlocked => opt.SaveBlocked || conf.SaveBlockedMsg;
	string Who => $"({him}/{rsys})";
	string SenderOrUnknown => sender ?? "<unknown>";

	public Session(Options opt, Conf conf, Policy policy, NetConn conn, Trace trace)
	{
		this.opt = opt;
		this.conf = conf;
		this.policy = policy;
		this.trace = trace;
		rsys = conn.Rsys;
		lsys = conn.Lsys;
		netroot = conn.NetRoot;
		io = new SmtpIO(conn.Stream, conn.Stream) { WriteLimit = WriteLimit };
		if (trace.On) {
			io.OnLine = TraceLine;
			io.OnReply = trace.Reply;
		}
		me = Syslog.SysName;
		dom = opt.Domain ?? conf.DefaultDomain ?? DefaultDomain(me);
		policy.AddOurName(dom);
		passwordInClear = opt.PasswordInClear;
		deadline = started.AddSeconds(conf.SessionTimeout);
	}

	/// <summary>The first system name containing a dot, else the system name.</summary>
	static string DefaultDomain(string me)
	{
		if (me.Contains('.'))
			return me;
		try {
			var h = System.Net.Dns.GetHostName();
			if (h.Contains('.'))
				return h;
		} catch (System.Net.Sockets.SocketException) {
		}
		return me;
	}

	void Log(string msg)
	{
		Syslog.Log("smtpd", msg);
		trace.Line("# log: " + msg);
	}

	void Reply(string line) => io.Reply(line);

	/// <summary>Echoes a command line into the -d trace; an AUTH initial response is a secret.</summary>
	void TraceLine(string line)
	{
		// split on every blank the command parser accepts: AUTH<TAB>PLAIN<TAB>secret is protected too
		var parts = line.Split([' ', '\t', '\v', '\f', '\r'], 3, StringSplitOptions.RemoveEmptyEntries);
		trace.Received(parts.Length == 3 && parts[0].Equals("AUTH", StringComparison.OrdinalIgnoreCase) ? $"{parts[0]} {parts[1]} (protected)" : line);
	}

	/// <summary>Runs the session to its end; returns the exit status.</summary>
	public async Task<int> RunAsync()
	{
		try {
			await Greet();
			while (true)
				await Next();
		} catch (Hangup h) {
			await io.FlushAsync();
			if (io.WriteTimedOut) {
				Log($"note: {rsys} did not read its replies; closing connection");
				return h.Code;
			}
			await EndTls();
			return h.Code;
		} finally {
			io.Close();
		}
	}

	async Task Greet()
	{
		TlsAvailable(); // -c is checked at start-up: a bad file is logged now, and STARTTLS is not offered
		trace.Line($"istrusted({rsys})={(policy.Trusted ? 1 : 0)}");
		trace.Line($"getaction({rsys}, ip)={policy.IpVerdict.ToString().ToLowerInvariant()}");
		Reply($"220-{dom} ESMTP");
		await io.FlushAsync();
		if (conf.GreetDelay > 0 && !policy.Trusted) {
			// the early-talker check: a client that speaks before the greeting is over is a spammer
			var peek = io.StartRead();
			await Task.WhenAny(peek, Task.Delay(TimeSpan.FromSeconds(conf.GreetDelay)));
			if (peek.IsCompleted && peek.Result > 0) {
				Log($"Hung up on impatient spammer {rsys}");
				await Tarpit();
				Reply("554 5.7.0 Spammer!");
				throw new Hangup(1);
			}
		}
		Reply("220 ");
	}

	async Task Next()
	{
		var (st, line) = await io.ReadLineAsync(ReadLimit());
		switch (st) {
		case ReadStatus.Eof:
			throw new Hangup(0);
		case ReadStatus.Timeout:
			TimedOut();
			break;
		case ReadStatus.TooLong:
			Reply("500 5.5.2 line too long");
			return;
		}
		if (Fault is not null && line.StartsWith(Fault, StringComparison.OrdinalIgnoreCase))
			throw new InvalidOperationException($"$smtpdfault {Fault}");
		var cmd = CmdParser.Parse(line);
		if (cmd.Error == CmdError.Syntax) {
			Reply("500 5.5.1 illegal command or bad syntax");
			return;
		}
		switch (cmd.Verb) {
		case Verb.Helo:
		case Verb.Ehlo: await Hello(cmd); break;
		case Verb.Mail: await Mail(cmd); break;
		case Verb.Rcpt: await Rcpt(cmd); break;
		case Verb.Data: await Data(); break;
		case Verb.Rset: Rset(); break;
		case Verb.Noop:
			if (!Rejected())
				Reply("250 2.0.0 Nothing to see here. Move along ...");
			break;
		case Verb.Help:
			if (!Rejected())
				Reply("250 2.0.0 See http://www.ietf.org/rfc/rfc2821");
			break;
		case Verb.Vrfy: await Vrfy(cmd); break;
		case Verb.Auth: await Auth(cmd); break;
		case Verb.StartTls: await StartTls(); break;
		case Verb.Quit:
			Reply("221 2.0.0 Successful termination");
			throw new Hangup(0);
		}
	}

	/// <summary>How long the next line (a command or an AUTH continuation) may take: the idle timeout, cut by the session deadline.</summary>
	TimeSpan ReadLimit()
	{
		var idle = TimeSpan.FromSeconds(conf.IdleTimeout);
		var left = deadline - DateTime.Now;
		return left < idle ? (left > TimeSpan.Zero ? left : TimeSpan.Zero) : idle;
	}

	/// <summary>How long replies may wait for the client to read them; a little past the deadline, so the 421 can still go out.</summary>
	TimeSpan WriteLimit()
	{
		var limit = ReadLimit();
		return limit < FinalWrite ? FinalWrite : limit;
	}

	static readonly TimeSpan FinalWrite = TimeSpan.FromSeconds(2);

	/// <summary>A read timed out: say so, log the alarm as Bell Labs does, hang up.</summary>
	void TimedOut()
	{
		Log(sender is not null && rcpts.Count > 0 ? $"note: {sender}->{rcpts[0]}: alarm" : "note: alarm");
		Reply($"421 4.4.2 {dom} timeout, closing connection");
		throw new Hangup(0);
	}

	/// <summary>The reject check at the top of most commands: true when the command must do nothing more.</summary>
	bool Rejected()
	{
		if (rc > MaxRejects) {
			Log($"Rejected {Who}");
			Reply("554 5.5.0 too many errors.  transaction failed.");
			throw new Hangup(1);
		}
		if (hardreject) {
			rc++;
			Reply("554 5.7.1 We don't accept mail from dial-up ports.");
			return true;
		}
		return false;
	}

	// -D: 15 s, 60 s for the class-A networks spammers frequent, nothing for trusted clients (decisions #11)
	static readonly int[] SpammyClassA = [58, 66, 71, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 190, 201, 217];

	public static int TarpitSeconds(string rsys, bool trusted)
	{
		if (trusted)
			return 0;
		var a = IpNet.Addr(rsys);
		if (a is { AddressFamily: System.Net.Sockets.AddressFamily.InterNetwork } && Array.IndexOf(SpammyClassA, (int)a.GetAddressBytes()[0]) >= 0)
			return 60;
		return 15;
	}

	async Task Tarpit()
	{
		if (!opt.Tarpit)
			return;
		var s = TarpitSeconds(rsys, policy.Trusted);
		if (s > 0) {
			await io.FlushAsync();
			await Task.Delay(TimeSpan.FromSeconds(s));
		}
	}

	async Task Hello(Cmd cmd)
	{
		var ehlo = cmd.Verb == Verb.Ehlo;
		Log($"{(ehlo ? "ehlo" : "helo")} from {rsys} as {cmd.Raw}");
		if (Rejected())
			return;
		var name = cmd.Value;
		if (Liar(name)) {
			Log($"Hung up on {rsys}; claimed to be {cmd.Raw}");
			await Tarpit();
			Reply("554 5.7.0 Liar!");
			throw new Hangup(1);
		}
		him = !name.Contains('.') && rsys.Contains('.') ? rsys : name;
		helo = name;
		saidHello = true;
		await Tarpit();
		if (!ehlo) {
			Reply($"250 {dom} you are {him}");
			return;
		}
		var lines = new List<string> {
			$"{dom} you are {him}", "ENHANCEDSTATUSCODES", "PIPELINING", $"SIZE {conf.MaxMessage}", "8BITMIME",
		};
		if (opt.CertFile is not null && !tls && TlsAvailable())
			lines.Add("STARTTLS");
		lines.Add(passwordInClear ? "AUTH CRAM-MD5 PLAIN LOGIN" : "AUTH CRAM-MD5");
		for (var i = 0; i < lines.Count; i++)
			Reply($"250{(i == lines.Count - 1 ? ' ' : '-')}{lines[i]}");
	}

	static readonly string[] ReservedTlds = ["localdomain", "localhost", "example", "invalid", "test"];
	static readonly string[] ExampleDomains = ["example.com", "example.net", "example.org"];

	/// <summary>The Bell Labs HELO checks (decisions #4).</summary>
	bool Liar(string name)
	{
		var trusted = policy.Trusted;
		var labels = name.Split('.');
		var last = labels[^1];
		var lastTwo = labels.Length >= 2 ? labels[^2] + "." + last : last;
		if (ExampleDomains.Contains(lastTwo, StringComparer.OrdinalIgnoreCase))
			return true;
		if (trusted)
			return false;
		if (NoRelay && name.Contains('.') && rsys != lsys &&
		    (name == dom || string.Equals(name, me, StringComparison.OrdinalIgnoreCase)))
			return true;
		if (!name.Contains('.') && !name.StartsWith('['))
			return true; // an address literal ([IPv6:...]) needs no dot
		if (ReservedTlds.Contains(last, StringComparer.OrdinalIgnoreCase))
			return true;
		if (!name.Any(char.IsAsciiLetter) && !name.StartsWith('['))
			return true;
		return false;
	}

	async Task Mail(Cmd cmd)
	{
		if (Rejected())
			return;
		if (opt.Authenticate && !authenticated) {
			rc++;
			Reply("530 5.7.0 Authentication required");
			return;
		}
		if (!saidHello) {
			rc++;
			Reply("503 Start by saying HELO, please.");
			return;
		}
		if (cmd.Error == CmdError.BadParam) {
			Reply($"555 5.5.4 Unsupported parameter {cmd.BadParam}");
			return;
		}
		if (cmd.Error == CmdError.EightBit) {
			Reply("553 5.6.7 8-bit characters in addresses need SMTPUTF8");
			return;
		}
		if (sender is not null) {
			rc++;
			Reply("503 5.5.1 Sender already specified");
			return;
		}
		if (cmd.Size > conf.MaxMessage) {
			Reply("552 5.3.4 Message size exceeds fixed maximum message size");
			return;
		}
		var path = cmd.Value;
		if (path != "/dev/null" && !path.Contains('!'))
			path = him + "!" + path;
		if (BadAddress(path) is { } bad) {
			Log($"Refused sender {path} {Who}: {bad}"); // Log escapes it
			rc++;
			Reply($"553 5.1.7 Bad sender address {EnvAddr.Printable(path)}: {bad}");
			return;
		}
		var v = policy.SenderVerdict(path);
		trace.Line($"blocked({path.ToLowerInvariant()}) => {v.ToString().ToLowerInvariant()}");
		if (v == Verdict.Denied) {
			Log($"Denied {path} {Who}");
			rc++;
			Reply($"554-5.7.1 We don't accept mail from {path}.");
			Reply($"554 5.7.1 Contact postmaster@{dom} for more information.");
			return;
		}
		if (v == Verdict.Accept && VerifySender && !policy.Trusted && path != "/dev/null") {
			var domain = path[..path.IndexOf('!')];
			if (refusedDomains.Contains(domain)) {
				Log($"Refused {path} {Who}");
				rc++;
				Reply($"554 5.1.8 Sender domain must exist: {path}");
				return;
			}
			switch (await SenderDomain.CheckAsync(domain, conf.DnsServers)) {
			case DomainCheck.Missing:
				refusedDomains.Add(domain);
				Log($"Refused {path} {Who}");
				rc++;
				Reply($"554 5.7.1 Sender domain must exist: {path}");
				return;
			case DomainCheck.TryLater:
				Reply($"450 4.4.3 Cannot check that sender domain exists, try again later: {path}");
				return;
			}
		}
		if (!await CheckSpf(cmd.Value))
			return;
		filter = v;
		sender = path;
		Reply($"250 2.0.0 sender is {path}");
	}

	/// <summary>
	/// Why an address may not enter the envelope (decisions #22): a control byte, DEL or angle bracket, or
	/// a bang component that a program would read as an option (validatesender gets the user alone).
	/// </summary>
	static string? BadAddress(string bang)
	{
		if (EnvAddr.Refusal(bang) is { } why)
			return why;
		if (Array.Exists(bang.Split('!'), EnvAddr.LooksLikeOption))
			return "address starts with '-'";
		return null;
	}

	async Task Rcpt(Cmd cmd)
	{
		if (Rejected())
			return;
		if (!saidHello) {
			rc++;
			Reply("503 Start by saying HELO, please");
			return;
		}
		if (sender is null) {
			rc++;
			Reply("503 5.5.1 Need MAIL before RCPT");
			return;
		}
		if (cmd.Error == CmdError.EightBit) {
			Reply("553 5.6.7 8-bit characters in addresses need SMTPUTF8");
			return;
		}
		if (cmd.Error == CmdError.BadParam) {
			Reply("500 5.5.1 illegal command or bad syntax");
			return;
		}
		if (rcpts.Count >= conf.MaxRcpts) {
			Reply("452 4.5.3 Too many recipients");
			return;
		}
		var path = cmd.Value;
		if (BadAddress(path) is { } bad) {
			Log($"Refused recipient {path} {Who}: {bad}");
			rc++;
			Reply($"553 5.1.3 Bad recipient address {EnvAddr.Printable(path)}: {bad}");
			return;
		}
		switch (await Task.Run(() => policy.CheckRecipient(path))) {
		case RcptCheck.UserUnknown:
			Log($"Disallowed {SenderOrUnknown} {Who} to blocked, unknown or invalid name {path}");
			rc++;
			Reply($"550 5.1.1 {path} ... user unknown");
			return;
		case RcptCheck.TryLater:
			Log($"Deferred {SenderOrUnknown} {Who} to {path}: cannot validate the address");
			Reply($"450 4.3.0 {path} ... cannot validate the address now, try again later");
			return;
		case RcptCheck.SendingSystemNotAllowed:
			Log($"Disallowed sending IP of {SenderOrUnknown} {Who} to {path}");
			rc++;
			Reply($"550 5.7.1 {path} ... sending system not allowed");
			return;
		}
		if (NoRelay && filter == Verdict.Accept && !authenticated) {
			if (policy.Loopback(path) is { } back)
				path = back;
			else if (!policy.Trusted && policy.IsForeign(path)) {
				Log($"Bad Forward {SenderOrUnknown} {Who} ({path})");
				rc++;
				Reply("550 5.7.1 we don't relay.  send to your-path@[] for loopback.");
				return;
			}
		}
		rcpts.Add(path);
		Reply($"250 2.0.0 receiver is {path}");
	}

	void Rset()
	{
		if (Rejected())
			return;
		ResetTransaction();
		Reply("250 2.0.0 ok");
	}

	void ResetTransaction()
	{
		sender = null;
		spf = null;
		rcpts.Clear();
		if (filter != Verdict.Dialup)
			filter = Verdict.Accept;
	}

	async Task Vrfy(Cmd cmd)
	{
		if (Rejected())
			return;
		var s = cmd.Value;
		if (BadAddress(s) is { } bad) {
			Reply($"553 5.1.3 Bad address {EnvAddr.Printable(s)}: {bad}");
			return;
		}
		var (started, first) = await Mailer.QueryAsync(opt.MailerPath, ["-x", "--", s], TimeSpan.FromSeconds(60));
		if (!started)
			Reply("450 4.3.2 We're busy right now, try later");
		else if (first is null)
			Reply("550 5.1.0 String does not match anything.");
		else if (first.Contains(':'))
			Reply("550 5.1.0  String does not match anything.");
		else
			Reply($"250 2.0.0 {s} <{first[(first.LastIndexOf('!') + 1)..]}@{dom}>");
	}
}
