using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// A hostile SMTP server for the client's hardening tests: every connection on a loopback address runs a
/// script against the raw socket (it may send anything, cut the connection, reset it, speak TLS or not);
/// every byte the client sends is recorded. Stops when disposed.
/// </summary>
sealed class HostileServer : IDisposable
{
	readonly List<TcpListener> listeners = [];
	readonly CancellationTokenSource stop = new();
	readonly List<Task> loops = [];
	readonly MemoryStream received = new();
	int connections;

	public int Port { get; }
	public string Dial => $"tcp!127.0.0.1!{Port}";
	/// <summary>How many connections were accepted.</summary>
	public int Connections => Volatile.Read(ref connections);
	/// <summary>Every byte received on every connection (plain text inside TLS), as Latin-1.</summary>
	public string Received {
		get {
			lock (received)
				return Encoding.Latin1.GetString(received.ToArray());
		}
	}

	/// <summary>Listens on every address of binds (one port for all: the first free one, or port).</summary>
	public HostileServer(Action<HostileConn> script, string[]? binds = null, int port = 0)
	{
		foreach (var b in binds ?? ["127.0.0.1"]) {
			var l = new TcpListener(IPAddress.Parse(b), port);
			l.Start();
			port = ((IPEndPoint)l.LocalEndpoint).Port;
			listeners.Add(l);
		}
		Port = port;
		foreach (var l in listeners)
			loops.Add(Task.Run(() => Loop(l, script)));
	}

	/// <summary>Tries to listen on port (25 needs root; another program may hold it): null when it cannot.</summary>
	public static HostileServer? TryOn(int port, Action<HostileConn> script, params string[] binds)
	{
		try {
			return new HostileServer(script, binds, port);
		} catch (SocketException) {
			return null;
		}
	}

	async Task Loop(TcpListener l, Action<HostileConn> script)
	{
		while (!stop.IsCancellationRequested) {
			Socket s;
			try {
				s = await l.AcceptSocketAsync(stop.Token);
			} catch (Exception) {
				return;
			}
			Interlocked.Increment(ref connections);
			_ = Task.Run(() => {
				var c = new HostileConn(s, Record);
				try {
					script(c);
				} catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or AuthenticationException) {
				} finally {
					c.Dispose();
				}
			});
		}
	}

	void Record(ReadOnlySpan<byte> b)
	{
		lock (received)
			received.Write(b);
	}

	/// <summary>The server's own "accept everything" dialogue, for a server that should never be reached.</summary>
	public static void Accepting(HostileConn c)
	{
		c.Say("220 victim.example ESMTP");
		Serve(c);
	}

	/// <summary>The rest of that dialogue, after the greeting.</summary>
	public static void Serve(HostileConn c)
	{
		while (c.Line() is { } cmd) {
			var verb = cmd.Split(' ')[0].ToUpperInvariant();
			c.Say(verb switch { "DATA" => "354 go", "QUIT" => "221 bye", _ => "250 ok" });
			if (verb == "DATA") {
				c.Data();
				c.Say("250 queued");
			}
			if (verb == "QUIT")
				return;
		}
	}

	public void Dispose()
	{
		stop.Cancel();
		foreach (var l in listeners)
			l.Stop();
		try {
			Task.WaitAll([.. loops], 5000);
		} catch (AggregateException) {
		}
	}
}

/// <summary>One connection of a <see cref="HostileServer"/>.</summary>
sealed class HostileConn(Socket sock, HostileConn.Recorder record) : IDisposable
{
	public delegate void Recorder(ReadOnlySpan<byte> b);

	public Socket Socket => sock;
	public Stream Stream { get; private set; } = new NetworkStream(sock, ownsSocket: false);
	readonly byte[] buf = new byte[65536];
	int pos, len;

	int Byte()
	{
		if (pos >= len) {
			len = Stream.Read(buf, 0, buf.Length);
			pos = 0;
			if (len <= 0)
				return -1;
			record(buf.AsSpan(0, len));
		}
		return buf[pos++];
	}

	/// <summary>A line without CR LF; null at the end of the connection.</summary>
	public string? Line()
	{
		var sb = new StringBuilder();
		for (;;) {
			var c = Byte();
			if (c < 0)
				return null;
			if (c == '\n')
				return sb.ToString().TrimEnd('\r');
			sb.Append((char)c);
		}
	}

	/// <summary>Reads up to CR LF . CR LF; false when the connection ends first.</summary>
	public bool Data()
	{
		uint tail = 0x0d0a;
		for (;;) {
			var c = Byte();
			if (c < 0)
				return false;
			tail = (tail << 8) | (uint)c;
			if (tail == 0x0a2e0d0a)
				return true;
		}
	}

	/// <summary>Reads and answers commands (any 2xx/3xx as the default dialogue would) until one starting with verb; false at the end.</summary>
	public bool Until(string verb)
	{
		while (Line() is { } cmd) {
			if (cmd.StartsWith(verb, StringComparison.OrdinalIgnoreCase))
				return true;
			Say(cmd.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase) ? "250-victim.example\r\n250-STARTTLS\r\n250 8BITMIME" : "250 ok");
		}
		return false;
	}

	public void Say(string text) => Write(Encoding.Latin1.GetBytes(text + "\r\n"));

	public void Write(ReadOnlySpan<byte> b)
	{
		Stream.Write(b);
		Stream.Flush();
	}

	/// <summary>TLS as a server with cert over the connection so far.</summary>
	public void Tls(X509Certificate2 cert)
	{
		var ssl = new SslStream(Stream);
		ssl.AuthenticateAsServer(cert);
		Stream = ssl;
		pos = len = 0;
	}

	/// <summary>Ends the connection with a TCP reset instead of a FIN.</summary>
	public void Reset()
	{
		sock.LingerState = new LingerOption(true, 0);
		sock.Close();
	}

	public void Dispose()
	{
		try {
			sock.Shutdown(SocketShutdown.Both);
		} catch (Exception e) when (e is SocketException or ObjectDisposedException) {
		}
		sock.Dispose();
	}
}

/// <summary>What every hardening test asks of a failed run: the documented status and no crash text.</summary>
static class NoCrash
{
	public static void Check(SmtpRun r, int exit)
	{
		Assert.That(r.Err, Does.Not.Contain("   at "), "a stack trace");
		Assert.That(r.Err, Does.Not.Contain("Unhandled exception"));
		Assert.That(r.Err, Does.Not.Contain("internal error"));
		Assert.That(r.Exit, Is.EqualTo(exit), r.Err);
		if (exit != 0)
			Assert.That(r.StatusLine, Is.EqualTo(exit == 2 ? "Retry, Temporary Failure" : "Permanent Failure"), r.Err);
	}
}
