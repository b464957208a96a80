using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 9 item 13, the client: whatever a server (or DNS) does, smtp ends with the documented status
/// (0 delivered, 2 retry, 1 permanent) and one-line messages, never a stack trace or an unhandled exception.
/// </summary>
[Parallelizable(ParallelScope.All)]
public class SmtpHardeningCrashTests
{
	const string D = Smtp.Domain;
	const string Msg = "Subject: x\n\nbody\n";

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		t.Write("/sys/lib/tls/smtp", "");
		return t;
	}

	static SmtpRun Run(Tree t, string input, params string[] args) => Smtp.Run(t, Encoding.Latin1.GetBytes(input), args, null, 30_000);

	/// <summary>The default dialogue up to STARTTLS, answered 220; then what the script does.</summary>
	static Action<HostileConn> AfterStartTls(Action<HostileConn> then) => c => {
		c.Say("220 mx.example.org ESMTP");
		if (!c.Until("STARTTLS"))
			return;
		c.Say("220 2.0.0 go ahead");
		then(c);
	};

	[Test]
	public void GarbageInsteadOfATlsHandshakeIsPermanent()
	{
		using var t = NewTree();
		using var srv = new HostileServer(AfterStartTls(c => {
			c.Write("this is not TLS at all\r\n"u8);
			c.Write(Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray());
			c.Line();
		}));
		var r = Run(t, Msg, "-s", "-o", D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 1);
		Assert.That(r.Err, Does.Match(@"\ntlsClient to 127\.0\.0\.1: [^\n]+\nPermanent Failure\n$"));
		Assert.That(srv.Received, Does.Not.Contain("MAIL FROM"));
	}

	[TestCase(false)]
	[TestCase(true)]
	public void AConnectionThatEndsInTheTlsHandshakeIsRetried(bool reset)
	{
		using var t = NewTree();
		using var srv = new HostileServer(AfterStartTls(c => {
			if (reset)
				c.Reset();
		}));
		var r = Run(t, Msg, "-s", "-o", D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
		Assert.That(r.Err, Does.Match(@"\ntlsClient to 127\.0\.0\.1: connection lost: [^\n]+\nRetry, Temporary Failure\n$"));
	}

	[Test]
	public void GarbageAfterTheTlsHandshakeIsRetried()
	{
		using var t = NewTree();
		using var cert = Smtp.Cert();
		using var srv = new HostileServer(AfterStartTls(c => {
			var raw = new System.Net.Sockets.NetworkStream(c.Socket, ownsSocket: false);
			c.Tls(cert);
			c.Line();	// EHLO, inside TLS
			raw.Write("250 not a TLS record\r\n"u8);
			raw.Write(new byte[] { 0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8 });
			raw.Flush();
			c.Line();
		}));
		var r = Run(t, Msg, "-s", "-o", D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
		Assert.That(srv.Received, Does.Not.Contain("MAIL FROM"));
	}

	// a script that answers like a server up to the command starting with verb, then does what end says
	static Action<HostileConn> Upto(string verb, Action<HostileConn> end) => c => {
		c.Say("220 mx.example.org ESMTP");
		while (c.Line() is { } cmd) {
			if (cmd.StartsWith(verb, StringComparison.OrdinalIgnoreCase)) {
				end(c);
				return;
			}
			var v = cmd.Split(' ')[0].ToUpperInvariant();
			c.Say(v switch { "EHLO" => "250-mx.example.org\r\n250 8BITMIME", "DATA" => "354 go", _ => "250 ok" });
			if (v == "DATA") {
				c.Data();
				c.Say("250 queued");
			}
		}
	};

	static readonly Action<HostileConn> Close = _ => { };
	static readonly Action<HostileConn> Reset = c => c.Reset();
	static readonly Action<HostileConn> HalfReplyThenReset = c => {
		c.Write("250-first line\r\n250-second li"u8);
		Thread.Sleep(100);
		c.Reset();
	};
	static readonly Action<HostileConn> NoCode = c => c.Say("hello, I am not a reply");
	static readonly Action<HostileConn> ShortCode = c => c.Say("25");

	static readonly Dictionary<string, Action<HostileConn>> EndsBy = new() {
		["close"] = Close, ["reset"] = Reset, ["half a reply, reset"] = HalfReplyThenReset, ["no code"] = NoCode, ["short code"] = ShortCode,
	};

	[Test]
	public void AtEachStageABrokenConnectionOrAReplyWithoutACodeIsRetried(
		[Values("EHLO", "MAIL", "RCPT", "DATA")] string stage,
		[Values("close", "reset", "half a reply, reset", "no code", "short code")] string end)
	{
		using var t = NewTree();
		using var srv = new HostileServer(Upto(stage, EndsBy[end]));
		var r = Run(t, Msg, D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
		Assert.That(r.Err.Split('\n')[0], Does.EndWith($" connect to {srv.Dial}:"));
	}

	[TestCase("close")]
	[TestCase("no code")]
	public void TheGreetingBrokenIsRetried(string how)
	{
		using var t = NewTree();
		using var srv = new HostileServer(c => {
			if (how == "no code")
				c.Say("hello");
		});
		var r = Run(t, Msg, D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
	}

	[TestCase(false)]
	[TestCase(true)]
	public void TheServerEndingTheConnectionDuringDataIsRetried(bool reset)
	{
		using var t = NewTree();
		using var srv = new HostileServer(Upto("DATA", c => {
			c.Say("354 go ahead");
			var buf = new byte[65536];
			c.Stream.ReadExactly(buf);
			if (reset)
				c.Reset();
		}));
		// 8 MB: the client is still writing when the connection goes
		var body = new StringBuilder(Msg);
		while (body.Length < 8 << 20)
			body.Append("a line of the body of the message, long enough\n");
		var r = Run(t, body.ToString(), D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
	}

	[Test]
	public void NoReplyToTheFinalDotIsRetried()
	{
		using var t = NewTree();
		using var srv = new HostileServer(Upto("DATA", c => {
			c.Say("354 go ahead");
			c.Data();
		}));
		var r = Run(t, Msg, D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
	}

	[Test]
	public void NoReplyToQuitIsStillADelivery()
	{
		using var t = NewTree();
		using var srv = new HostileServer(Upto("QUIT", c => c.Reset()));
		var r = Run(t, Msg, D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 0);
	}

	[Test]
	public void AuthWithABrokenConnectionIsRetried()
	{
		using var t = NewTree();
		t.Write("/usr/glenda/lib/factotum", "key proto=pass service=smtp server=127.0.0.1 user=glenda !password=secret\n");
		using var srv = new HostileServer(c => {
			c.Say("220 mx.example.org ESMTP");
			c.Line();
			c.Say("250-mx.example.org\r\n250 AUTH LOGIN PLAIN");
			c.Line();
			c.Write("334 VXNlcm5hbWU6\r\n334 "u8);
			c.Reset();
		});
		var r = Run(t, Msg, "-a", "-i", D, srv.Dial, "alice", "bob");
		NoCrash.Check(r, 2);
	}

	[Test]
	public void ADomainNameDnsCannotCarryIsPermanent()
	{
		using var t = NewTree();
		using var dns = new Dnsmasq();
		foreach (var host in new[] { new string('a', 64) + ".test", string.Join('.', Enumerable.Repeat(new string('b', 60), 5)) + ".test" }) {
			var r = Smtp.Run(t, Encoding.Latin1.GetBytes(Msg), [D, "tcp!" + host, "alice", "bob"], new Dictionary<string, string> { ["dnsserver"] = dns.Server }, 30_000);
			NoCrash.Check(r, 1);
			Assert.That(r.Err, Does.StartWith("smtp: illegal address: "));
		}
	}

	[Test]
	public void ADnsServerThatIsNotThereIsRetried()
	{
		using var t = NewTree();
		var r = Smtp.Run(t, Encoding.Latin1.GetBytes(Msg), [D, "tcp!mx.dest.test", "alice", "bob"], new Dictionary<string, string> { ["dnsserver"] = $"127.0.0.1!{Ports.Free()}" }, 60_000);
		NoCrash.Check(r, 2);
		Assert.That(r.Err, Does.StartWith("smtp: dns failure"));
	}
}
