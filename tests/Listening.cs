using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>bin/upas/smtpd -L on a free loopback port, stopped (SIGTERM, then kill) when disposed.</summary>
sealed class Listening : IDisposable
{
	public Process P { get; }
	public IPEndPoint Endpoint { get; }

	public Listening(Tree t, string bind = "127.0.0.1", params string[] flags) : this(t, null, bind, flags)
	{
	}

	public Listening(Tree t, IDictionary<string, string>? env, string bind = "127.0.0.1", params string[] flags)
	{
		var addr = IPAddress.Parse(bind);
		var port = Ports.Free(bind);
		Endpoint = new IPEndPoint(addr, port);
		var host = addr.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{bind}]" : bind;
		var psi = t.Start(["-L", $"tcp!{host}!{port}", .. flags], env, netdir: false);
		P = Process.Start(psi)!;
		for (var i = 0; i < 400; i++) {
			if (Listens(port))
				return;
			Thread.Sleep(25);
		}
		Assert.Fail("smtpd -L did not start listening: " + P.StandardError.ReadToEnd());
	}

	// a connection would itself be a session: look at the kernel's table instead
	internal static bool Listens(int port)
	{
		var hex = $":{port:X4} ";
		foreach (var f in new[] { "/proc/net/tcp", "/proc/net/tcp6" }) {
			if (File.Exists(f) && File.ReadLines(f).Skip(1).Any(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var local, _, "0A", ..] && local.EndsWith(hex.Trim(), StringComparison.Ordinal)))
				return true;
		}
		return false;
	}

	public Client Connect(string? from = null)
	{
		var tcp = from is null ? new TcpClient(Endpoint.AddressFamily) : new TcpClient(new IPEndPoint(IPAddress.Parse(from), 0));
		tcp.Connect(Endpoint);
		return new Client(tcp.GetStream());
	}

	public int Stop()
	{
		Signal("TERM");
		if (!P.WaitForExit(60_000))
			Assert.Fail("smtpd -L did not stop on SIGTERM");
		return P.ExitCode;
	}

	public void Signal(string sig) => Process.Start("kill", ["-" + sig, P.Id.ToString()])!.WaitForExit();

	public void Dispose()
	{
		if (!P.HasExited) {
			P.Kill(true);
			P.WaitForExit(10_000);
		}
		P.Dispose();
	}
}
