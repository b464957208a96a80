namespace Upas.Smtpd;

/// <summary>upas/smtpd: one SMTP session on stdin/stdout, as listen(8), inetd or systemd start it.</summary>
static class Program
{
	static async Task<int> Main(string[] argv)
	{
		var opt = Options.Parse(argv);
		if (opt is null) {
			Console.Error.WriteLine(Options.Usage);
			return 1;
		}
		if (opt.Listen.Count > 0)
			return await Listener.RunAsync(opt);
		var conn = NetConn.Open(opt.NetDir, out var err);
		if (conn is null) {
			Console.Error.WriteLine($"smtpd: can't get remote system's address: {err}");
			return 1;
		}
		return await Serve(opt, conn);
	}

	/// <summary>
	/// Everything after the connection is known: config, -k, the session. A session that fails is logged and
	/// ends alone, status 1: under -L the listener goes on, and no stack trace reaches stderr (under inetd or
	/// listen1 the client's connection).
	/// </summary>
	public static async Task<int> Serve(Options opt, NetConn conn)
	{
		try {
			return await RunSession(opt, conn);
		} catch (Exception e) {
			Syslog.Log("smtpd", $"session with {conn.Rsys} failed: {e.GetType().Name}: {e.Message}");
			return 1;
		}
	}

	static async Task<int> RunSession(Options opt, NetConn conn)
	{
		if (Policy.Killed(conn.Rsys, opt.Kill))
			return 1; // -k: nothing sent, nothing logged, nothing read
		var conf = Conf.Load(m => Syslog.Log("smtpd", m));
		var policy = new Policy(conf, conn.Rsys, conn.Lsys, m => Syslog.Log("smtpd", m)) {
			ResolveHost = h => Resolver.Addresses(h, conf.DnsServers),
			Mailer = LocalDeliver.For(opt),
		};
		using var trace = opt.Debug ? Trace.Open(DateTime.Now, m => Syslog.Log("smtpd", m)) : Trace.Off;
		var s = new Session(opt, conf, policy, conn, trace);
		return await s.RunAsync();
	}
}
