using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace Upas.Smtp;

/// <summary>
/// The alarm of the original (smtp.md §10): one wall-clock limit at a time, re-armed phase by phase. When it
/// fires the run ends: logged, told on stderr, exit Retry (or the pending status while waiting for QUIT's reply).
/// </summary>
sealed class Alarm(string farend) : IDisposable
{
	Timer? t;
	public bool Quitting;
	public string? QuitStatus;

	public void Set(TimeSpan after)
	{
		t?.Dispose();
		t = new Timer(_ => Fire(), null, after, Timeout.InfiniteTimeSpan);
	}

	void Fire()
	{
		Syslog.Log("smtp.fail", $"interrupt: {farend}: alarm");
		Console.Error.WriteLine($"smtp timeout: connection to {farend} timed out");
		Environment.Exit(Program.Exit(Quitting ? QuitStatus : Status.Retry));
	}

	public void Dispose()
	{
		t?.Dispose();
	}
}

/// <summary>One delivery (or ping): connect, the dialogue of smtp.md §4, the reports of §11.</summary>
/// <param name="rcpts">the recipients as sent, decoded and in @ form, checked by <see cref="Envelope"/>; unqualified ones get @ddomain</param>
sealed class Client(Options o, Names names, string from, string[] rcpts)
{
	Stream? net;		// the connection: the socket's stream, later the TLS stream; null once unusable
	Socket? sock;
	ReplyReader? reader;
	bool broken;		// the server broke the protocol: nothing more is said to it, not even QUIT
	string reply = "";	// the last reply, every line ending in LF
	string ddomain = "";
	string? mxname;
	string? toLine;
	Alarm alarm = null!;
	readonly TextWriter err = Console.Error;

	void Trace(string s)
	{
		if (o.Debug)
			err.WriteLine(s);
	}

	/// <summary>The whole run; the status string (null = success).</summary>
	public string? Run()
	{
		var addr = o.DestAddr;
		using (alarm = new Alarm(addr)) {
			var ds = DialString.Parse(addr);
			// product, as 9F: an address literal is refused before any network activity; so is a dial string
			// with a blank, a control byte or an angle bracket, which no host name has (and no log line may carry)
			if (ds is null || ds.Host.StartsWith('[') || EnvAddr.Refusal(addr) is not null || addr.Any(char.IsWhiteSpace)) {
				var shown = EnvAddr.Printable(addr);
				Syslog.Log("smtp.fail", $"delivery to {shown} failed: illegal address");
				err.WriteLine($"smtp: illegal address ({shown})");
				return Status.Giveup;
			}
			ds = ExpandAttr(ds, out var xerr);
			if (ds is null) {
				Syslog.Log("smtp.fail", $"{xerr} ({addr})");
				err.WriteLine($"smtp: {xerr} ({addr})");
				return Status.Giveup;
			}
			// decisions #21: a host written as a number is refused before any DNS query or connection
			if (DialGuard.HostRefusal(ds.Host) is { } why) {
				var shown = EnvAddr.Printable(addr);
				Syslog.Log("smtp.fail", $"{why} ({shown})");
				err.WriteLine($"smtp: {why} ({shown})");
				return Status.Giveup;
			}
			ddomain = ds.Host;
			var dialer = new MxDial(o, Trace);
			sock = dialer.Dial(ds, ref ddomain, out var derr);
			if (sock is null) {
				err.WriteLine($"smtp: {derr} ({addr})");
				Syslog.Log("smtp.fail", $"{derr} ({addr})");
				return derr.Contains("illegal") || derr.Contains("unknown") || derr.Contains("can't translate") ? Status.Giveup : Status.Retry;
			}
			mxname = dialer.Reached;
			net = new NetworkStream(sock, ownsSocket: true);
			reader = new ReplyReader(net);
			try {
				return Dialogue(addr);
			} finally {
				// net is null after a failed TLS handshake: the socket is closed through sock
				net?.Dispose();
				sock.Dispose();
			}
		}
	}

	/// <summary>tcp!$smtp: the attribute from ROOT/lib/ndb/local (the first attr=value in it); null when there is none.</summary>
	static DialString? ExpandAttr(DialString ds, out string err)
	{
		err = "";
		if (!ds.Host.StartsWith('$'))
			return ds;
		var attr = ds.Host[1..];
		try {
			foreach (var line in File.ReadLines(Root.Path9("/lib/ndb/local"))) {
				var f = Factotum.Tokenize(line);
				if (f is null)
					continue;
				foreach (var w in f)
					if (w.StartsWith(attr + "=", StringComparison.Ordinal) && w.Length > attr.Length + 1)
						return ds.WithHost(w[(attr.Length + 1)..]);
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
		}
		err = $"can't translate address: no {attr}= in /lib/ndb/local";
		return null;
	}

	string? Dialogue(string addr)
	{
		var scale = o.Scale;
		string? rv;
		var errs = new string?[rcpts.Length];
		var ok = 0;
		alarm.Set(10 * scale);
		if ((rv = Hello(names.HelloDomain, false)) is not null)
			return Error(addr, rv);
		alarm.Set(10 * scale);
		if ((rv = MailFrom()) is not null)
			return Error(addr, rv);
		for (var i = 0; i < rcpts.Length; i++) {
			var trv = RcptTo(rcpts[i]);
			if (trv is not null) {
				if (rv != Status.Giveup)
					rv = trv;	// the worst so far
				errs[i] = Clip(reply.TrimEnd('\n'));
			} else
				ok++;
			if (broken)
				return Error(addr, Status.Retry);
		}
		if (ok == 0 || rv == Status.Retry)
			return Error(addr, rv);
		if (o.Ping) {
			Quit(null);
			return null;
		}
		var drv = Data();
		if (drv is not null)
			return Error(addr, drv);
		if (ok == rcpts.Length)
			RunqJob.Delivered();
		Quit(null);
		if (ok == rcpts.Length)
			return null;
		// some recipients failed, the others got the message
		err.WriteLine($"{PlanTime.Ctime(DateTime.Now)} connect to {addr}:");
		for (var i = 0; i < errs.Length; i++) {
			if (errs[i] is not { } e)
				continue;
			Syslog.Log("smtp.fail", $"delivery to {o.Rcpts[i]} at {addr} failed: {e}");
			err.WriteLine($"  mail to {o.Rcpts[i]} failed: {e}");
		}
		return Status.Giveup;
	}

	/// <summary>A refused recipient's reply as kept for the report: its first MaxKept characters (a log line holds 1024 bytes),
	/// so that memory stays bounded however many recipients a server refuses at length.</summary>
	static string Clip(string r) => r.Length <= MaxKept ? r : r[..MaxKept] + "...";
	const int MaxKept = 1024;

	/// <summary>Total failure (smtp.md §11.2): the last reply on stderr and in smtp.fail, QUIT, the status.</summary>
	string? Error(string addr, string? rv)
	{
		var r = reply.EndsWith('\n') ? reply[..^1] : reply;
		Syslog.Log("smtp.fail", $"{(o.Ping ? "ping" : "delivery")} to {addr} failed: {r}");
		err.WriteLine($"{PlanTime.Ctime(DateTime.Now)} connect to {addr}:\n{r}");
		Quit(rv);
		return rv;
	}

	// ---- the protocol ----

	/// <summary>Sends one command line; trace shows it unless it is a secret (then traceAs).</summary>
	void Send(string line, string? traceAs = null)
	{
		// the last guard of decisions #22: nothing but one whole command ever goes out (the envelope is checked before connecting)
		if (line.Any(c => c < 0x20 || c == 0x7f)) {
			err.WriteLine($"smtp: not sent: control character in command {EnvAddr.Printable(line)}");
			Environment.Exit(Program.Exit(Status.Giveup));
		}
		Trace(traceAs ?? line);
		if (net is null)
			Closed();
		try {
			net!.Write(Encoding.Latin1.GetBytes(line + "\r\n"));
			net.Flush();
		} catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException) {
			Closed();
		}
	}

	/// <summary>A write to a closed connection (the original's "closed pipe" note).</summary>
	void Closed()
	{
		err.WriteLine($"smtp timeout: connection closed to {o.DestAddr}");
		if (alarm.Quitting) {
			Syslog.Log("smtp.fail", $"closed pipe to {o.DestAddr}");
			Environment.Exit(Program.Exit(alarm.QuitStatus));
		}
		Environment.Exit(Program.Exit(Status.Retry));
	}

	/// <summary>
	/// Reads a reply into <see cref="reply"/>; its class (the first digit of the last line), or -1: the connection
	/// ended, a line has no code, or the reply is too big (then <see cref="broken"/> is set, and reply says why).
	/// </summary>
	int GetReply()
	{
		var sb = new StringBuilder();
		reply = "";
		if (reader is null || broken)
			return -1;
		for (var n = 0; ; n++) {
			if (n == ReplyReader.MaxLines)
				return ProtocolError($"protocol error: a reply of more than {ReplyReader.MaxLines} lines");
			var end = reader.Line(out var line);
			if (end == ReplyReader.End.TooLong)
				return ProtocolError($"protocol error: a reply line longer than {ReplyReader.MaxLine} bytes");
			// what the server says reaches stderr, the bounce and smtp.fail with its control bytes shown, not acted upon
			var shown = EnvAddr.Printable(line);
			if (end == ReplyReader.End.Eof) {
				reply = sb.Append(shown).Append("connection closed unexpectedly by remote system\n").ToString();
				return -1;
			}
			Trace(shown);
			sb.Append(shown).Append('\n');
			if (line.Length < 3 || !char.IsAsciiDigit(line[0]) || !char.IsAsciiDigit(line[1]) || !char.IsAsciiDigit(line[2])) {
				reply = sb.ToString();
				return -1;
			}
			if (line.Length < 4 || line[3] != '-') {
				reply = sb.ToString();
				return line[0] - '0';
			}
		}
	}

	/// <summary>A reply too big to take: said in <see cref="reply"/>; the session is over (exit Retry, no QUIT).</summary>
	int ProtocolError(string why)
	{
		Trace(why);
		reply = why + "\n";
		broken = true;
		return -1;
	}

	static string? Outcome(int cls) => cls switch { 2 => null, 5 => Status.Giveup, _ => Status.Retry };

	/// <summary>Greeting (unless encrypted: after STARTTLS), EHLO or HELO, then STARTTLS or AUTH as the reply offers.</summary>
	string? Hello(string me, bool encrypted)
	{
		if (!encrypted) {
			if (o.Avoidant) {	// -A: the server waits for us to talk first
				Send("NOOP");
				GetReply();
				if (broken)
					return Status.Retry;
			}
			if (Outcome(GetReply()) is { } g)
				return g;
		}
		Send("EHLO " + me);
		var cls = GetReply();
		if (cls == 5) {
			Send("HELO " + me);
			cls = GetReply();
		}
		if (Outcome(cls) is { } h)
			return h;
		foreach (var raw in reply.Split('\n')) {
			var s = raw.ToUpperInvariant();
			if (!encrypted && o.Secure && s is "250-STARTTLS" or "250 STARTTLS")
				return StartTls(me);
			if (o.Auth && (encrypted || o.Insecure) && (s.StartsWith("250 AUTH", StringComparison.Ordinal) || s.StartsWith("250-AUTH", StringComparison.Ordinal)))
				return DoAuth(s.Length > 9 ? s[9..] : "");
		}
		return null;
	}

	/// <summary>STARTTLS, the handshake, the thumbprint check (smtp.md §5), then the dialogue again.</summary>
	string? StartTls(string me)
	{
		Send("STARTTLS");
		var cls = GetReply();
		if (cls != 2)
			return cls < 0 ? Status.Retry : Status.Giveup;	// no reply at all is temporary, as everywhere
		// nothing the server sent before the handshake counts (the reader is replaced below)
		byte[]? der = null;
		var tls = new SslStream(net!, leaveInnerStreamOpen: false, (_, cert, _, _) => {
			der = cert?.GetRawCertData();
			return true;	// the thumbprint is the whole trust decision, checked below
		});
		try {
			tls.AuthenticateAsClient(new SslClientAuthenticationOptions {
				TargetHost = mxname is { } m && !System.Net.IPAddress.TryParse(m, out _) ? m : ddomain,
				EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
				CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
			});
		} catch (Exception e) when (e is AuthenticationException or IOException or SocketException or ObjectDisposedException or InvalidOperationException or ArgumentException) {
			// garbage from the server is permanent, as in Plan 9; a connection that breaks or ends is temporary
			var why = e is AuthenticationException && e.InnerException is not IOException ? e.Message : $"connection lost: {e.Message}";
			Syslog.Log("smtp", $"tlsClient to {ddomain}: {why}");
			reply = $"tlsClient to {ddomain}: {why}\n";
			net = null;
			reader = null;
			tls.Dispose();
			return e is AuthenticationException && e.InnerException is not IOException ? Status.Giveup : Status.Retry;
		}
		net = tls;
		reader = new ReplyReader(tls);
		if (der is null) {
			reply = $"tlsClient to {ddomain}: no server certificate\n";
			return Status.Giveup;
		}
		if (!o.OkUnknownCert) {
			var sha1 = Thumbprints.Sha1(der);
			var trusted = Thumbprints.Load(out var terr);
			if (trusted is null) {
				// decisions #14: say which file is missing and what -o does
				Syslog.Log("smtp", $"bad thumbprints in {Thumbprints.File9}: {terr}");
				reply = $"{terr}: cannot check the certificate of {ddomain} (x509 sha1={sha1});"
					+ $" add that line to {Thumbprints.File9}, or use -o to accept unknown certificates\n";
				return Status.Giveup;
			}
			if (!trusted.Ok(der)) {
				var line = $"remote cert. has bad thumbprint: x509 sha1={sha1} server={ddomain}";
				Syslog.Log("smtp", line);
				reply = line + "\n";
				return Status.Giveup;
			}
		}
		Syslog.Log("smtp", $"started TLS to {ddomain}");
		return Hello(me, true);
	}

	/// <summary>AUTH LOGIN, else PLAIN (smtp.md §7), with a password from factotum.</summary>
	string? DoAuth(string methods)
	{
		var user = o.User ?? LoginName();
		var server = ddomain;
		(string User, string Password)? found;
		try {
			found = Factotums.Open(Trace).GetPassword(server, user);
		} catch (IOException e) {
			reply = $"cannot get a password from factotum: {e.Message}\n";
			return Status.Retry;
		}
		if (found is not { } key) {
			reply = $"cannot find a password: no factotum key proto=pass service=smtp server={Factotum.Quote(server)} user={Factotum.Quote(user)}\n";
			return Status.Giveup;
		}
		static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
		if (methods.Contains("LOGIN", StringComparison.Ordinal)) {
			Send("AUTH LOGIN");
			if (GetReply() is var c1 && c1 != 3)
				return AuthFailed(c1);
			Send(B64(key.User));
			if (GetReply() is var c2 && c2 != 3)
				return AuthFailed(c2);
			Send(B64(key.Password), "<password>");
			if (GetReply() is var c3 && c3 != 2)
				return AuthFailed(c3);
			return null;
		}
		if (methods.Contains("PLAIN", StringComparison.Ordinal)) {
			Send("AUTH PLAIN " + B64($"\0{key.User}\0{key.Password}"), "AUTH PLAIN <credentials>");
			if (GetReply() is var c && c != 2)
				return AuthFailed(c);
			return null;
		}
		reply = $"no supported AUTH method in: {methods}\n";
		return "No supported AUTH method";
	}

	// decisions #14: 5xx is permanent, 4xx (and anything else) retry
	static string AuthFailed(int cls) => cls == 5 ? Status.Giveup : Status.Retry;

	static string LoginName()
	{
		var u = Environment.GetEnvironmentVariable("user");
		return string.IsNullOrEmpty(u) ? Environment.UserName : u;
	}

	string? MailFrom()
	{
		if (from == "/dev/null")
			Send("MAIL FROM:<>");
		else if (from.Contains('@'))
			Send($"MAIL FROM:<{from}>");
		else
			Send($"MAIL FROM:<{from}@{names.HostDomain}>");
		return Outcome(GetReply());
	}

	string? RcptTo(string rcpt)
	{
		var s = rcpt;
		if (!s.Contains('@'))
			s += "@" + ddomain;
		toLine = toLine is null ? s : toLine + ", " + s;
		Send($"RCPT TO:<{s}>");
		alarm.Set(10 * o.Scale);
		return Outcome(GetReply());
	}

	/// <summary>DATA, the converted message streamed from stdin, the final dot.</summary>
	string? Data()
	{
		var conv = new Converter(Console.OpenStandardInput(), names.HostDomain, from, SecondPass.StdinRewind());
		conv.ReadHeader();
		// dkim(6): the body is read once to sign it before DATA, so that nothing waits on the server meanwhile
		if (DkimSign.Sign(conv, toLine, () => alarm.Set(10 * o.Scale)) is { } serr) {
			reply = serr + "\n";
			return Status.Retry;
		}
		alarm.Set(20 * o.Scale);
		Send("DATA");
		var cls = GetReply();
		if (cls != 3)
			return cls == 5 ? Status.Giveup : Status.Retry;
		long n;
		var output = new BufferedStream(o.Debug ? new TeeStream(net!, Console.OpenStandardError()) : net!, 1 << 16);
		try {
			n = conv.Write(output, toLine, () => alarm.Set(10 * o.Scale));
			output.Write(conv.LastWasLf ? ".\r\n"u8 : "\r\n.\r\n"u8);
			output.Flush();
		} catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException) {
			Closed();
			return Status.Retry;
		}
		alarm.Set(10 * o.Scale);
		if (Outcome(GetReply()) is { } rv)
			return rv;
		Syslog.Log("smtp", $"{from} sent {n} bytes to {toLine}");
		return null;
	}

	/// <summary>QUIT; the reply is read and ignored. While waiting, the alarm ends the run with rv.</summary>
	void Quit(string? rv)
	{
		if (net is null || broken)
			return;
		alarm.Quitting = true;
		alarm.QuitStatus = rv;
		alarm.Set(60 * o.Scale);
		Send("QUIT");
		GetReply();
	}
}

/// <summary>Writes to the connection and, for -d, to stderr.</summary>
sealed class TeeStream(Stream a, Stream b) : Stream
{
	public override bool CanRead => false;
	public override bool CanSeek => false;
	public override bool CanWrite => true;
	public override long Length => throw new NotSupportedException();
	public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
	public override void Flush()
	{
		a.Flush();
		b.Flush();
	}
	public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
	public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
	public override void SetLength(long value) => throw new NotSupportedException();
	public override void Write(byte[] buffer, int offset, int count)
	{
		a.Write(buffer, offset, count);
		b.Write(buffer, offset, count);
	}
	public override void Write(ReadOnlySpan<byte> buffer)
	{
		a.Write(buffer);
		b.Write(buffer);
	}
}
