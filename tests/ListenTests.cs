using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>smtpd -L: its own listener, each connection served as a fresh smtpd would serve it.</summary>
public class ListenTests
{
	static void Greeted(Client c)
	{
		Assert.That(c.Line(), Is.EqualTo("220-example.com ESMTP"));
		Assert.That(c.Line(), Is.EqualTo("220 "));
	}

	[Test]
	public void ServesAMessage()
	{
		using var t = new Tree();
		using var l = new Listening(t);
		var c = l.Connect();
		Greeted(c);
		Assert.That(c.Ask("EHLO client.9fans.net"), Does.StartWith("250-example.com you are client.9fans.net"));
		Assert.That(c.Ask("MAIL FROM:<a@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!a"));
		Assert.That(c.Ask("RCPT TO:<b@example.com>"), Is.EqualTo("250 2.0.0 receiver is example.com!b"));
		Assert.That(c.Ask("DATA"), Does.StartWith("354"));
		Assert.That(c.Ask("Subject: x\r\n\r\nhello\r\n."), Is.EqualTo("250 2.5.0 sent"));
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(c.Line(), Is.Null);
		Assert.That(t.Captures().Single().Args, Is.EqualTo(new[] { "-r", "--", "example.com!b" }));
		Assert.That(t.Log()[0], Is.EqualTo("ehlo from 127.0.0.1 as client.9fans.net"));
		Assert.That(l.Stop(), Is.EqualTo(0));
	}

	[Test]
	public void SessionsAreIsolated()
	{
		// one trusted peer (ournets) and one not, one on the greylist whitelist and one not, at the same time
		using var t = new Tree(Tree.DefaultConf + "ournets 127.0.0.3/32\n");
		t.Write("/mail/grey/whitelist", "127.0.0.3/32\n"); // a bare address would cover the whole /24
		using var l = new Listening(t, "127.0.0.1", "-f", "-g");
		var a = l.Connect("127.0.0.2");
		var b = l.Connect("127.0.0.3");
		Greeted(a);
		Greeted(b);
		a.Ask("HELO a.9fans.net");
		b.Ask("HELO b.9fans.net");
		a.Ask("MAIL FROM:<a@9fans.net>");
		b.Ask("MAIL FROM:<b@9fans.net>");
		Assert.That(a.Ask("RCPT TO:<x@elsewhere.net>"), Is.EqualTo("550 5.7.1 we don't relay.  send to your-path@[] for loopback."));
		Assert.That(b.Ask("RCPT TO:<x@elsewhere.net>"), Is.EqualTo("250 2.0.0 receiver is elsewhere.net!x"));
		Assert.That(a.Ask("RCPT TO:<y@example.com>"), Is.EqualTo("250 2.0.0 receiver is example.com!y"));
		Assert.That(a.Ask("DATA"), Is.EqualTo("451 4.7.1 please try again soon from the same IP."));
		Assert.That(a.Line(), Is.Null);
		Assert.That(b.Ask("DATA"), Does.StartWith("354"));
		Assert.That(b.Ask("\r\nhi\r\n."), Is.EqualTo("250 2.5.0 sent"));
		Assert.That(t.Captures().Single().Args, Is.EqualTo(new[] { "-r", "--", "elsewhere.net!x" }));
		var log = t.Log();
		Assert.That(log, Does.Contain("Bad Forward 9fans.net!a (a.9fans.net/127.0.0.2) (elsewhere.net!x)"));
		Assert.That(log, Does.Contain("no recent call from 127.0.0.2 for a rcpt; rejecting with temporary failure"));
		Assert.That(Directory.Exists(t.P("/mail/grey/tmp/127.0.0.1/127.0.0.3")), Is.False);
	}

	[Test]
	public void TooManySessionsFromOneAddress()
	{
		using var t = new Tree(Tree.DefaultConf + "maxperip 1\nmaxsessions 2\n");
		using var l = new Listening(t);
		var a = l.Connect("127.0.0.2");
		Greeted(a);
		var b = l.Connect("127.0.0.2");
		Assert.That(b.Line(), Is.EqualTo("421 4.7.0 example.com too many connections from 127.0.0.2, try again later"));
		Assert.That(b.Line(), Is.Null);
		var c = l.Connect("127.0.0.3");
		Greeted(c);
		var d = l.Connect("127.0.0.4");
		Assert.That(d.Line(), Is.EqualTo("421 4.3.2 example.com too many connections, try again later"));
		Assert.That(a.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(t.Log(), Is.EqualTo(new[] { "too many sessions from one address: refused 127.0.0.2", "too many sessions: refused 127.0.0.4" }));
	}

	[Test]
	public void ACrashingSessionEndsAloneAndTheListenerGoesOn()
	{
		using var t = new Tree();
		using var l = new Listening(t, new Dictionary<string, string> { ["smtpdfault"] = "XCRASH" });
		var a = l.Connect();
		Greeted(a);
		Assert.That(a.Ask("HELO client.9fans.net"), Does.StartWith("250 "));
		var b = l.Connect();
		Greeted(b);
		b.Send("XCRASH here\r\n");
		Assert.That(b.Line(), Is.Null, "the failed session's connection is closed");
		Assert.That(a.Ask("NOOP"), Is.EqualTo("250 2.0.0 Nothing to see here. Move along ..."));
		var c = l.Connect();
		Greeted(c);
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(a.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(l.P.HasExited, Is.False);
		Assert.That(t.Log(), Has.Some.EqualTo("session with 127.0.0.1 failed: InvalidOperationException: $smtpdfault XCRASH"));
	}

	[Test]
	public void ACrashingSessionOnStdinIsLoggedWithoutAStackTrace()
	{
		using var t = new Tree();
		var r = t.Run("HELO client.9fans.net\r\nXCRASH\r\n"u8.ToArray(), [], new Dictionary<string, string> { ["smtpdfault"] = "XCRASH" });
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Out, Does.Not.Contain("Exception").And.Not.Contain(" at "));
		Assert.That(r.Err, Is.Empty);
		Assert.That(t.Log(), Has.Some.EqualTo("session with 127.0.0.2 failed: InvalidOperationException: $smtpdfault XCRASH"));
	}

	[Test]
	public void SigtermStopsAcceptingAndLetsSessionsFinish()
	{
		using var t = new Tree();
		using var l = new Listening(t);
		var a = l.Connect();
		Greeted(a);
		a.Ask("HELO client.9fans.net");
		l.Signal("TERM");
		Thread.Sleep(500);
		Assert.That(() => l.Connect(), Throws.InstanceOf<SocketException>());
		Assert.That(l.P.HasExited, Is.False);
		Assert.That(a.Ask("NOOP"), Is.EqualTo("250 2.0.0 Nothing to see here. Move along ..."));
		Assert.That(a.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(l.P.WaitForExit(10_000), Is.True);
		Assert.That(l.P.ExitCode, Is.EqualTo(0));
	}

	[Test]
	public void SighupDoesNotStopIt()
	{
		using var t = new Tree();
		using var l = new Listening(t);
		l.Signal("HUP");
		Thread.Sleep(300);
		var c = l.Connect();
		Greeted(c);
		Assert.That(t.Log(), Is.EqualTo(new[] { "note: hangup: logs reopened" }));
	}

	[Test]
	public void IPv6Listener()
	{
		using var t = new Tree();
		using var l = new Listening(t, "::1", "-f");
		var c = l.Connect();
		Greeted(c);
		c.Ask("HELO client.9fans.net");
		c.Ask("MAIL FROM:<a@9fans.net>");
		Assert.That(c.Ask("RCPT TO:<me@[]>"), Is.EqualTo("250 2.0.0 receiver is [::1]!me"));
	}

	[Test]
	public void BadDialString()
	{
		using var t = new Tree();
		var r = t.Run(System.Text.Encoding.Latin1.GetBytes(""), ["-L", "tcp!no.such.address!25"], null, netdir: false);
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(r.Err, Is.EqualTo("smtpd: can't announce tcp!no.such.address!25: not an address\n"));
	}

	[Test]
	public void SameDialogueAsUnderSocat()
	{
		var dialogue = new[] {
			"EHLO client.9fans.net", "MAIL FROM:<a@9fans.net>", "RCPT TO:<b@example.com>", "RCPT TO:<c>", "DATA",
			"From: alice\r\nSubject: same\r\n\r\nbody\r\n..dot\r\n.", "VRFY x y", "RSET", "QUIT",
		};
		List<string> Talk(Client c)
		{
			var replies = new List<string>();
			replies.AddRange(c.Reply());
			foreach (var cmd in dialogue)
				replies.Add(c.Ask(cmd));
			return replies;
		}
		using var t1 = new Tree();
		List<string> viaSocat;
		using (var s = new SocketServer(t1, []))
		using (var c = s.Connect())
			viaSocat = Talk(c);
		using var t2 = new Tree();
		List<string> viaListen;
		using (var l = new Listening(t2))
			viaListen = Talk(l.Connect());
		Assert.That(viaListen, Is.EqualTo(viaSocat));
		Assert.That(Tree.NoDates(t2.Captures().Single().Text), Is.EqualTo(Tree.NoDates(t1.Captures().Single().Text)));
		Assert.That(t2.Log(), Is.EqualTo(t1.Log()));
	}
}
