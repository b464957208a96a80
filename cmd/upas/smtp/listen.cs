using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Upas.Smtpd;

/// <summary>
/// -L dialstring: smtpd as its own listener. Each connection is served in this process exactly as if
/// listen(8) had started a fresh smtpd for it: same flags, smtpd.conf read anew, its own session, policy
/// and trace. Limits (smtpd.conf maxsessions, maxperip) are answered with 421; SIGTERM stops accepting
/// and lets sessions finish for DrainSeconds; SIGHUP is harmless (every log line opens its file anew).
/// </summary>
static class Listener
{
	public const int DrainSeconds = 30;

	public static async Task<int> RunAsync(Options opt)
	{
		Conf.Reuse = true; // smtpd.conf is still looked at for every connection, but parsed only when it changed
		var socks = new List<Socket>();
		foreach (var ds in opt.Listen) {
			if (Announce(ds, out var err) is not { } s) {
				Console.Error.WriteLine($"smtpd: can't announce {ds}: {err}");
				foreach (var x in socks)
					x.Dispose();
				return 1;
			}
			socks.Add(s);
		}
		using var stop = new CancellationTokenSource();
		void Stop(PosixSignalContext c)
		{
			c.Cancel = true;
			stop.Cancel();
		}
		using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
		using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
		using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => {
			c.Cancel = true; // log files are opened for every line: a rotated log is picked up by itself
			Syslog.Log("smtpd", "note: hangup: logs reopened");
		});
		var sessions = new Sessions();
		var loops = socks.Select(s => Accept(s, opt, sessions, stop.Token)).ToArray();
		try {
			await Task.Delay(Timeout.Infinite, stop.Token);
		} catch (OperationCanceledException) {
		}
		foreach (var s in socks)
			s.Dispose();
		await Task.WhenAll(loops);
		await sessions.DrainAsync(TimeSpan.FromSeconds(DrainSeconds));
		return 0;
	}

	/// <summary>A listening socket for tcp!addr!port, tcp!*!smtp or tcp![::1]!port.</summary>
	public static Socket? Announce(string dialstring, out string? err)
	{
		err = null;
		var ds = DialString.Parse(dialstring);
		if (ds is null || !ds.IsTcp || ds.Port is not { } port) {
			err = "bad dial string";
			return null;
		}
		var host = ds.Host.Trim('[', ']');
		IPAddress addr;
		if (host == "*")
			addr = IPAddress.IPv6Any;
		else if (!IPAddress.TryParse(host, out addr!)) {
			err = "not an address";
			return null;
		}
		var s = new Socket(addr.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
		try {
			if (host == "*")
				s.DualMode = true; // * is every address, IPv4 and IPv6
			s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
			s.Bind(new IPEndPoint(addr, port));
			s.Listen(128);
			return s;
		} catch (SocketException e) {
			s.Dispose();
			err = e.Message;
			return null;
		}
	}

	static async Task Accept(Socket listener, Options opt, Sessions sessions, CancellationToken stop)
	{
		while (!stop.IsCancellationRequested) {
			Socket c;
			try {
				c = await listener.AcceptAsync(stop);
			} catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) {
				if (stop.IsCancellationRequested)
					return;
				continue;
			}
			_ = Task.Run(() => Serve(c, opt, sessions));
		}
	}

	static async Task Serve(Socket c, Options opt, Sessions sessions)
	{
		var rsys = c.RemoteEndPoint is IPEndPoint r ? NetConn.Text(r.Address) : "???";
		var lsys = c.LocalEndPoint is IPEndPoint l ? NetConn.Text(l.Address) : "???";
		await using var stream = new NetworkStream(c, ownsSocket: true);
		var conf = Conf.Load(_ => { }); // the session reads it again and logs its bad lines
		var why = sessions.TryEnter(rsys, conf.MaxSessions, conf.MaxPerIp);
		if (why is not null) {
			Syslog.Log("smtpd", $"{why}: refused {rsys}");
			var dom = opt.Domain ?? conf.DefaultDomain ?? Syslog.SysName;
			var line = why == "too many sessions"
				? $"421 4.3.2 {dom} too many connections, try again later\r\n"
				: $"421 4.7.0 {dom} too many connections from {rsys}, try again later\r\n";
			try {
				// a client that does not read gets no longer than this to take it
				using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
				await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(line), cts.Token);
			} catch (Exception e) when (e is IOException or OperationCanceledException) {
			}
			return;
		}
		try {
			await Program.Serve(opt, new NetConn { Stream = stream, Lsys = lsys, Rsys = rsys }); // logs a failure itself
		} finally {
			sessions.Leave(rsys);
		}
	}

	/// <summary>
	/// What maxperip counts: an IPv4 address, or an IPv6 address's /64, since one host is given a whole
	/// /64 and could otherwise open maxperip sessions from each of its 2^64 addresses.
	/// </summary>
	public static string ClientKey(string rsys)
	{
		if (IpNet.Addr(rsys) is not { } a)
			return rsys;
		if (a.AddressFamily != AddressFamily.InterNetworkV6)
			return a.ToString();
		var b = a.GetAddressBytes();
		Array.Clear(b, 8, 8);
		return new IPAddress(b) + "/64";
	}

	/// <summary>The sessions running now, in all and per client address (an IPv6 client: per /64).</summary>
	sealed class Sessions
	{
		readonly Lock sync = new();
		readonly Dictionary<string, int> perIp = [];
		int total;
		readonly TaskCompletionSource idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
		bool draining;

		public string? TryEnter(string rsys, int max, int maxPerIp)
		{
			var key = ClientKey(rsys);
			lock (sync) {
				if (total >= max)
					return "too many sessions";
				var n = perIp.GetValueOrDefault(key);
				if (n >= maxPerIp)
					return "too many sessions from one address";
				perIp[key] = n + 1;
				total++;
				return null;
			}
		}

		public void Leave(string rsys)
		{
			var key = ClientKey(rsys);
			lock (sync) {
				if (--perIp[key] == 0)
					perIp.Remove(key);
				if (--total == 0 && draining)
					idle.TrySetResult();
			}
		}

		public async Task DrainAsync(TimeSpan limit)
		{
			lock (sync) {
				draining = true;
				if (total == 0)
					return;
			}
			await Task.WhenAny(idle.Task, Task.Delay(limit));
		}
	}
}
