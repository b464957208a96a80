using System.Diagnostics;
using System.Net.Sockets;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>The example systemd units and inetd.conf line of sys/lib/upas/ are valid and their commands serve mail.</summary>
public class ServiceFileTests
{
	static string Shipped(string name) => File.ReadAllText(Path.Join(Repo.Dir, "sys/lib/upas", name));

	[Test]
	public void SystemdUnitsVerify()
	{
		if (!Repo.Have("systemd-analyze"))
			Assert.Fail("systemd-analyze is missing (sys/lib/upas/prereq installs systemd)");
		var dir = Path.Join(Path.GetTempPath(), "units-" + Guid.NewGuid().ToString("N")[..8]);
		Directory.CreateDirectory(dir);
		try {
			foreach (var f in new[] { "upas-smtpd.socket", "upas-smtpd@.service", "upas-smtpd-listen.service" })
				File.WriteAllText(Path.Join(dir, f), Shipped("systemd/" + f).Replace("/usr/local/plan9", Repo.Dir));
			var psi = new ProcessStartInfo("systemd-analyze") { RedirectStandardError = true, RedirectStandardOutput = true };
			foreach (var a in new[] { "verify", "--man=no", Path.Join(dir, "upas-smtpd.socket"), Path.Join(dir, "upas-smtpd-listen.service") })
				psi.ArgumentList.Add(a);
			using var p = Process.Start(psi)!;
			var err = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
			p.WaitForExit();
			Assert.That(p.ExitCode, Is.EqualTo(0), err);
			Assert.That(err.Split('\n').Where(l => l.Contains(dir)), Is.Empty, err);
		} finally {
			Directory.Delete(dir, true);
		}
	}

	[Test]
	public void PerConnectionUnitRunsSmtpdOnTheSocket()
	{
		var socket = Shipped("systemd/upas-smtpd.socket");
		var service = Shipped("systemd/upas-smtpd@.service");
		Assert.That(socket, Does.Contain("\nAccept=yes\n"));
		Assert.That(service, Does.Contain("\nStandardInput=socket\n"));
		Assert.That(service, Does.Contain("\nStandardOutput=socket\n"));
		// what systemd then runs is smtpd with the socket as stdin and stdout: socat's nofork does the same
		var exec = service.Split('\n').Single(l => l.StartsWith("ExecStart=")).Split(' ', 2);
		Assert.That(exec[0], Is.EqualTo("ExecStart=/usr/local/plan9/bin/upas/smtpd"));
		Serves(exec[1].Split(' '));
	}

	[Test]
	public void InetdLineRunsSmtpdOnTheSocket()
	{
		var line = Shipped("inetd.conf").Split('\n').Single(l => l.StartsWith("smtp"));
		var f = line.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
		Assert.That(f[..5], Is.EqualTo(new[] { "smtp", "stream", "tcp", "nowait", "mail" }));
		Assert.That(f[5], Is.EqualTo("/usr/local/plan9/bin/upas/smtpd"));
		Assert.That(f[6], Is.EqualTo("smtpd"));
		Serves(f[7..]);
	}

	static void Serves(string[] flags)
	{
		using var t = new Tree();
		using var s = new SocketServer(t, flags);
		using var c = s.Connect();
		Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
		Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
		Assert.That(c.Ask("MAIL FROM:<a@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!a"));
		Assert.That(c.Ask("RCPT TO:<b@elsewhere.net>"), Is.EqualTo("550 5.7.1 we don't relay.  send to your-path@[] for loopback."), "-f is in force");
	}

	[Test]
	public void ListenerUnitCommandServes()
	{
		var service = Shipped("systemd/upas-smtpd-listen.service");
		var exec = service.Split('\n').Single(l => l.StartsWith("ExecStart=")).Split(' ').Skip(1).ToArray();
		Assert.That(exec, Is.EqualTo(new[] { "-f", "-L", "tcp!*!smtp" }));
		var port = Ports.Free();
		using var t = new Tree();
		var psi = t.Start(["-f", "-L", $"tcp!*!{port}"], netdir: false);
		using var p = Process.Start(psi)!;
		try {
			Client? c = null;
			for (var i = 0; i < 200 && c is null; i++) {
				try {
					var tcp = new TcpClient();
					tcp.Connect(System.Net.IPAddress.Loopback, port);
					c = new Client(tcp.GetStream());
				} catch (SocketException) {
					Thread.Sleep(25);
				}
			}
			Assert.That(c, Is.Not.Null, "the listener did not start");
			Assert.That(c!.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
			Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
			Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
			Assert.That(p.WaitForExit(40_000), Is.True);
			Assert.That(p.ExitCode, Is.EqualTo(0));
		} finally {
			if (!p.HasExited)
				p.Kill(true);
		}
	}

	/// <summary>Starts a per-connection listener program serving smtpd on a free loopback port; the port.</summary>
	static (Process P, int Port) PerConnection(Tree t, Func<int, string[]> argv, IDictionary<string, string>? env = null)
	{
		var port = Ports.Free();
		var a = argv(port);
		var psi = new ProcessStartInfo(a[0]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
		foreach (var w in a.Skip(1))
			psi.ArgumentList.Add(w);
		psi.Environment["PLAN9"] = t.Dir;
		if (env is not null)
			foreach (var (k, v) in env)
				psi.Environment[k] = v;
		var p = Process.Start(psi)!;
		for (var i = 0; i < 400 && !Listening.Listens(port); i++)
			Thread.Sleep(25);
		Assert.That(Listening.Listens(port), Is.True, "the listener did not start");
		return (p, port);
	}

	static Client Dial(int port)
	{
		var tcp = new TcpClient();
		tcp.Connect(System.Net.IPAddress.Loopback, port);
		return new Client(tcp.GetStream());
	}

	/// <summary>ucspi-tcp's tcpserver (socket on 0 and 1, TCPREMOTEIP): a session, the client's address in the log.</summary>
	[Test]
	public void TcpserverRunsSmtpd()
	{
		if (!Repo.Have("tcpserver"))
			Assert.Fail("tcpserver is missing (sys/lib/upas/prereq installs ucspi-tcp)");
		using var t = new Tree();
		var (p, port) = PerConnection(t, port => ["tcpserver", "-q", "-H", "-R", "-l", "0", "127.0.0.1", port.ToString(), Repo.Bin("smtpd"), "-f"]);
		try {
			using var c = Dial(port);
			Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
			Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
			Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
			Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.1 as client.9fans.net" }));
		} finally {
			p.Kill(true);
			p.WaitForExit(10_000);
		}
	}

	/// <summary>
	/// Plan 9's listen1 (plan9port's, which Debian does not package) runs the command with the connection as
	/// its standard input, output AND error: this listener does exactly that in a few lines of Python.
	/// Nothing but replies reaches the client, not even when the session fails.
	/// </summary>
	const string Listen1 = """
		import os, socket, sys
		s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(5)
		while True:
		    c, _ = s.accept()
		    if os.fork() == 0:
		        s.close()
		        for fd in (0, 1, 2):
		            os.dup2(c.fileno(), fd)
		        c.close()
		        os.execv(sys.argv[2], sys.argv[2:])
		    c.close()
		    while True:
		        try:
		            if os.waitpid(-1, os.WNOHANG)[0] == 0: break
		        except ChildProcessError: break
		""";

	[Test]
	public void Listen1StyleStandardErrorOnTheConnection()
	{
		using var t = new Tree();
		t.Write("/listen1.py", Listen1);
		var (p, port) = PerConnection(t, port => ["python3", t.P("/listen1.py"), port.ToString(), Repo.Bin("smtpd"), "-f"],
			new Dictionary<string, string> { ["smtpdfault"] = "XCRASH" });
		try {
			using (var c = Dial(port)) {
				Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
				Assert.That(c.Ask("HELO client.9fans.net"), Is.EqualTo("250 example.com you are client.9fans.net"));
				Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
				Assert.That(c.Line(), Is.Null);
			}
			using (var c = Dial(port)) {
				Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
				c.Send("XCRASH\r\n");
				Assert.That(c.Line(), Is.Null, "a failed session says nothing more on its connection");
			}
			Assert.That(t.Log(), Is.EqualTo(new[] { "helo from 127.0.0.1 as client.9fans.net", "session with 127.0.0.1 failed: InvalidOperationException: $smtpdfault XCRASH" }));
		} finally {
			p.Kill(true);
			p.WaitForExit(10_000);
		}
	}
}
