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
		var l = new TcpListener(System.Net.IPAddress.Loopback, 0);
		l.Start();
		var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
		l.Stop();
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
}
