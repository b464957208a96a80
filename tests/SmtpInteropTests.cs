using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>The client against real servers on 127.0.0.1: our smtpd (under socat), Python's aiosmtpd, Postfix's smtp-sink.</summary>
[Parallelizable(ParallelScope.All)]
public class SmtpInteropTests
{
	const string D = Smtp.Domain;
	const string Me = "gnot.cs.bell-labs.com";
	const string Msg = "Message-ID: <rt1@gnot.cs.bell-labs.com>\nSubject: round trip\nX-Bytes: caf\xe9\n\nbody\n.starts with a dot\n..two\n\nlast line\n";

	static Tree NewTree()
	{
		var t = new Tree();
		Smtp.Logs(t);
		return t;
	}

	/// <summary>smtp → smtpd → mailer: what the mailer gets after smtpd's envelope and Received: lines is
	/// exactly what smtp -f prints, CR LF and dot-stuffing undone.</summary>
	[Test]
	public void RoundTripThroughSmtpd()
	{
		using var t = NewTree();
		using var srv = new SocketServer(t, []);
		var dial = $"tcp!127.0.0.1!{srv.Endpoint.Port}";
		var r = Smtp.Run(t, Msg, D, dial, "alice", "bob@example.com", "example.com!carol");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		var f = Smtp.Run(t, Msg, "-f", D, dial, "alice", "bob@example.com");
		var filtered = f.Out.Replace("\r\n", "\n").Replace("\n..", "\n.");
		// -f never writes To: (no RCPT was sent); a delivery adds it after the added From: (Msg has a Message-ID)
		var want = Regex.Replace(filtered, "^(From: .*\n)", "$1To: bob@example.com, carol@example.com\n");
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1));
		Assert.That(caps[0].Args[^2..], Is.EqualTo(new[] { "example.com!bob", "example.com!carol" }));
		var text = caps[0].Text;
		Assert.That(text, Does.StartWith($"From {Me}!alice "));
		// smtpd's Authentication-Results (issue 12) comes first: bell-labs.com is outside the test DNS's zones
		var lines = text.Split('\n', 7);
		Assert.That(lines[1..5], Is.EqualTo(new[] { "Authentication-Results: example.com;", $"\tspf=temperror smtp.mailfrom=alice@{Me};", "\tdkim=none;", $"\tdmarc=temperror header.from={Me}" }));
		Assert.That(lines[5], Does.StartWith("Received: from gnot.cs.bell-labs.com ([127.0.0.1]) by "));
		Assert.That(lines[6], Is.EqualTo(want));
		Assert.That(t.Log("smtp"), Is.EqualTo(new[] { $"alice sent {Encoding.Latin1.GetByteCount(Msg) + "From: alice@gnot.cs.bell-labs.com\r\nTo: bob@example.com, carol@example.com\r\n".Length} bytes to bob@example.com, carol@example.com" }));
	}

	/// <summary>smtp -a against our smtpd -a -c: STARTTLS with the thumbprint checked, AUTH with the password from
	/// $HOME/lib/factotum or from a factotum speaking 9P in $NAMESPACE.</summary>
	[TestCase(false)]
	[TestCase(true)]
	public void AuthOverStartTlsThroughSmtpd(bool ninep)
	{
		using var t = NewTree();
		var cert = TlsTests.Certs.Make("mx.9fans.net");
		t.Write("/sys/lib/tls/smtpd.pem", TlsTests.Certs.Pem(cert), 0x180);
		t.Write("/mail/lib/smtpd.keys", "key proto=pass service=smtp user=glenda !password='s3 cret'\n", 0x180);
		t.Write("/sys/lib/tls/smtp", $"x509 sha1={cert.GetCertHashString()} cn=mx.9fans.net\n");
		using var srv = new SocketServer(t, ["-a", "-c", t.P("/sys/lib/tls/smtpd.pem")]);
		var dial = $"tcp!127.0.0.1!{srv.Endpoint.Port}";
		const string key = "key proto=pass service=smtp server=127.0.0.1 user=glenda !password='s3 cret'\n";
		var env = new Dictionary<string, string>();
		NinepServer? factotum = null;
		if (ninep) {
			var ns = t.P("/tmp/ns");
			Directory.CreateDirectory(ns);
			File.SetUnixFileMode(ns, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
			factotum = new NinepServer(Path.Join(ns, "factotum"), key);
			env["NAMESPACE"] = ns;
		} else
			t.Write("/usr/glenda/lib/factotum", key);
		using (factotum) {
			var r = Smtp.Run(t, Encoding.Latin1.GetBytes(Msg), ["-a", D, dial, "alice", "bob@example.com"], env);
			Assert.That(r.Exit, Is.EqualTo(0), r.Err);
			Assert.That(t.Captures(), Has.Count.EqualTo(1));
			var log = t.Log();
			Assert.That(log, Does.Contain($"started TLS with {Me}"));
			Assert.That(log, Has.Some.Match(@"^auth\((LOGIN|PLAIN), \(protected\)\) from " + Regex.Escape(Me) + "$"));
			Assert.That(string.Join("\n", t.Log("smtp")), Does.Contain($"started TLS to"));
			if (factotum is not null)
				Assert.That(factotum.Log, Has.Some.Contains("server=127.0.0.1"));
		}
	}

	[Test]
	public void SmtpdRefusesAnUnknownRelay()
	{
		using var t = NewTree();
		using var srv = new SocketServer(t, ["-f"]);
		var dial = $"tcp!127.0.0.1!{srv.Endpoint.Port}";
		var r = Smtp.Run(t, Msg, D, dial, "alice", "bob@elsewhere.org", "carol@example.com");
		Assert.That(r.Exit, Is.EqualTo(1), r.Err);
		Assert.That(r.Err, Does.Contain("  mail to bob@elsewhere.org failed: 5"));
		Assert.That(t.Captures(), Has.Count.EqualTo(1));
	}

	static int Port() => Ports.Free();

	static void WaitListening(int port, Process p)
	{
		for (var i = 0; i < 400; i++) {
			if (p.HasExited)
				Assert.Fail($"server exited: {p.StandardError.ReadToEnd()}");
			try {
				using var c = new TcpClient();
				c.Connect(IPAddress.Loopback, port);
				return;
			} catch (SocketException) {
				Thread.Sleep(25);
			}
		}
		Assert.Fail("server did not start listening");
	}

	sealed class Server(Process p) : IDisposable
	{
		public void Dispose()
		{
			try {
				p.Kill(true);
				p.WaitForExit(5000);
			} catch (InvalidOperationException) {
			}
			p.Dispose();
		}
	}

	/// <summary>A Python aiosmtpd server that saves each message as it came (after dot-unstuffing) and its envelope; it stops by itself after 60 s.</summary>
	static Server Aiosmtpd(Tree t, int port)
	{
		if (!File.Exists("/usr/bin/python3") || Process.Start(new ProcessStartInfo("/usr/bin/python3", "-c \"import aiosmtpd\"") { UseShellExecute = false })!.WaitForExitAsync().Wait(30_000) is false)
			Assert.Fail("python3-aiosmtpd is not installed (sys/lib/upas/prereq installs it)");
		t.Write("/aio.py", """
			import sys, time
			from aiosmtpd.controller import Controller
			out = sys.argv[2]
			n = 0
			class Saver:
			    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
			        if address.startswith('nobody@'):
			            return '550 5.1.1 no such user'
			        if address.startswith('later@'):
			            return '451 4.3.0 try again'
			        envelope.rcpt_tos.append(address)
			        return '250 OK'
			    async def handle_DATA(self, server, session, envelope):
			        global n
			        n += 1
			        with open(f'{out}/{n}.msg', 'wb') as f:
			            f.write(envelope.original_content)
			        with open(f'{out}/{n}.env', 'w') as f:
			            f.write(envelope.mail_from + '\n' + '\n'.join(envelope.rcpt_tos) + '\n')
			        return '250 2.0.0 saved'
			c = Controller(Saver(), hostname='127.0.0.1', port=int(sys.argv[1]))
			c.start()
			time.sleep(60)
			c.stop()

			""");
		Directory.CreateDirectory(t.P("/aio"));
		var psi = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardError = true };
		psi.ArgumentList.Add(t.P("/aio.py"));
		psi.ArgumentList.Add(port.ToString());
		psi.ArgumentList.Add(t.P("/aio"));
		var p = Process.Start(psi)!;
		WaitListening(port, p);
		return new Server(p);
	}

	[Test]
	public void Aiosmtpd()
	{
		using var t = NewTree();
		var port = Port();
		using var srv = Aiosmtpd(t, port);
		var dial = $"tcp!127.0.0.1!{port}";
		var r = Smtp.Run(t, Msg, D, dial, "example.org!alice", "bob@example.org", "carol");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Assert.That(t.Read("/aio/1.env"), Is.EqualTo("alice@example.org\nbob@example.org\ncarol@127.0.0.1\n"));
		var f = Smtp.Run(t, Msg, "-f", D, dial, "example.org!alice", "bob@example.org");
		var want = Regex.Replace(f.Out.Replace("\r\n..", "\r\n."), "^(From: .*\r\n)", "$1To: bob@example.org, carol@127.0.0.1\r\n");
		Assert.That(Encoding.Latin1.GetString(File.ReadAllBytes(t.P("/aio/1.msg"))), Is.EqualTo(want));
	}

	[Test]
	public void AiosmtpdPerRecipientFailures()
	{
		using var t = NewTree();
		var port = Port();
		using var srv = Aiosmtpd(t, port);
		var dial = $"tcp!127.0.0.1!{port}";
		var r = Smtp.Run(t, Msg, D, dial, "alice", "bob@example.org", "nobody@example.org");
		Assert.That(r.Exit, Is.EqualTo(1));
		Assert.That(t.Log("smtp.fail"), Is.EqualTo(new[] { $"delivery to nobody@example.org at {dial} failed: 550 5.1.1 no such user" }));
		Assert.That(File.Exists(t.P("/aio/1.msg")), Is.True);
		var r2 = Smtp.Run(t, Msg, D, dial, "alice", "bob@example.org", "later@example.org");
		Assert.That(r2.Exit, Is.EqualTo(2));
		Assert.That(File.Exists(t.P("/aio/2.msg")), Is.False);
		var p = Smtp.Run(t, "", "-p", D, dial, "/dev/null", "bob@example.org", "nobody@example.org");
		Assert.That(p.Exit, Is.EqualTo(0), p.Err);
		var p2 = Smtp.Run(t, "", "-p", D, dial, "/dev/null", "nobody@example.org");
		Assert.That(p2.Exit, Is.EqualTo(1));
	}

	/// <summary>Postfix's smtp-sink, stopped by timeout(1) after 60 s at the latest.</summary>
	static Server Sink(Tree t, int port, params string[] flags)
	{
		if (!File.Exists("/usr/sbin/smtp-sink"))
			Assert.Fail("smtp-sink is not installed (sys/lib/upas/prereq installs postfix)");
		Directory.CreateDirectory(t.P("/sink"));
		var psi = new ProcessStartInfo("timeout") { UseShellExecute = false, RedirectStandardError = true };
		foreach (var a in new[] { "60", "/usr/sbin/smtp-sink", "-u", "root", "-d", t.P("/sink/%H%M%S.") }.Concat(flags).Concat([$"127.0.0.1:{port}", "10"]))
			psi.ArgumentList.Add(a);
		var p = Process.Start(psi)!;
		WaitListening(port, p);
		return new Server(p);
	}

	[Test]
	public void SmtpSink()
	{
		using var t = NewTree();
		var port = Port();
		using var srv = Sink(t, port);
		var r = Smtp.Run(t, Msg, D, $"tcp!127.0.0.1!{port}", "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(0), r.Err);
		Thread.Sleep(200);
		var dump = Encoding.Latin1.GetString(File.ReadAllBytes(Directory.GetFiles(t.P("/sink")).Single()));
		Assert.That(dump, Does.Contain($"X-Helo-Args: {Me}").And.Contain("X-Rcpt-Args: <bob@example.org>").And.Contain("Subject: round trip"));
		Assert.That(dump, Does.Contain("\n.starts with a dot").And.Contain("\n..two"));
	}

	[TestCase("-f", "RCPT", 1)]
	[TestCase("-r", "RCPT", 2)]
	[TestCase("-f", "DATA", 1)]
	[TestCase("-r", ".", 2)]
	[TestCase("-Q", "MAIL", 2)]
	public void SmtpSinkRefuses(string how, string command, int exit)
	{
		using var t = NewTree();
		var port = Port();
		using var srv = Sink(t, port, how, command);
		var r = Smtp.Run(t, Msg, D, $"tcp!127.0.0.1!{port}", "alice", "bob@example.org");
		Assert.That(r.Exit, Is.EqualTo(exit), r.Err);
	}
}
