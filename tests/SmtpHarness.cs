using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>What one run of bin/upas/smtp did.</summary>
sealed record SmtpRun(byte[] Stdout, string Err, int Exit)
{
	public string Out => Encoding.Latin1.GetString(Stdout);
	/// <summary>The Plan 9 status string: the last line of stderr ("" on success).</summary>
	public string StatusLine => Exit == 0 ? "" : Err.TrimEnd('\n').Split('\n')[^1];
}

/// <summary>Runs the client in a tree (PLAN9=tree), as system "gnot" (smtpd takes a HELO with its own name for a lie).</summary>
static class Smtp
{
	public const string Domain = ".cs.bell-labs.com";

	public static void Logs(Tree t)
	{
		t.Write("/sys/log/smtp", "");
		t.Write("/sys/log/smtp.fail", "");
	}

	public static ProcessStartInfo Start(Tree t, IEnumerable<string> args, IDictionary<string, string>? env = null)
	{
		var psi = t.Prog(Repo.Bin("smtp"), args);
		psi.Environment["site"] = "gnot";
		psi.Environment["TZ"] = "GMT";
		psi.Environment["HOME"] = t.P("/usr/glenda");
		psi.Environment["user"] = "glenda";
		if (env is not null)
			foreach (var (k, v) in env)
				psi.Environment[k] = v;
		return psi;
	}

	public static SmtpRun Run(Tree t, string input, params string[] args) => Run(t, Encoding.Latin1.GetBytes(input), args, null);

	public static SmtpRun Run(Tree t, byte[] input, IEnumerable<string> args, IDictionary<string, string>? env, int limitMs = 60_000)
	{
		var (outp, err, exit) = Tree.Exec(Start(t, args, env), input, limitMs);
		return new SmtpRun(outp, err, exit);
	}

	/// <summary>A self-signed server certificate with its key, usable by SslStream.</summary>
	public static X509Certificate2 Cert(string cn = "mx.example.org")
	{
		using var rsa = RSA.Create(2048);
		var req = new CertificateRequest($"CN={cn}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
		using var c = req.CreateSelfSigned(DateTimeOffset.Now.AddDays(-1), DateTimeOffset.Now.AddDays(30));
		return X509CertificateLoader.LoadPkcs12(c.Export(X509ContentType.Pfx), null);
	}

	/// <summary>A free loopback port, for a connection that must be refused.</summary>
	public static int FreePort() => Ports.Free();
}

/// <summary>
/// A scripted SMTP server on 127.0.0.1 for the client tests: it answers each command through
/// <see cref="Answer"/> (null: the default answer), records the commands and the messages, and
/// can do STARTTLS with a given certificate. Stops when disposed.
/// </summary>
sealed class ScriptServer : IDisposable
{
	readonly TcpListener listener;
	readonly CancellationTokenSource stop = new();
	readonly Task loop;
	public IPEndPoint Endpoint { get; }
	public string Dial => $"tcp!127.0.0.1!{Endpoint.Port}";

	public string? Greeting = "220 mx.example.org ESMTP";
	public Func<string, string?> Answer = _ => null;
	public string DataReply = "250 2.0.0 ok";
	public X509Certificate2? Cert;
	public bool KeepMessages = true;
	public ConcurrentQueue<string> Commands { get; } = new();
	public ConcurrentQueue<byte[]> Messages { get; } = new();
	public long Received;	// bytes of DATA seen in all

	public ScriptServer(string bind = "127.0.0.1", int port = 0)
	{
		listener = new TcpListener(IPAddress.Parse(bind), port);
		listener.Start();
		Endpoint = (IPEndPoint)listener.LocalEndpoint;
		loop = Task.Run(Loop);
	}

	public string[] Log => Commands.ToArray();

	async Task Loop()
	{
		while (!stop.IsCancellationRequested) {
			TcpClient c;
			try {
				c = await listener.AcceptTcpClientAsync(stop.Token);
			} catch (Exception) {
				return;
			}
			_ = Task.Run(() => {
				try {
					using (c)
						Session(c.GetStream());
				} catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or AuthenticationException) {
				}
			});
		}
	}

	string Default(string cmd, bool tls)
	{
		var verb = cmd.Split(' ', 2)[0].ToUpperInvariant();
		return verb switch {
			"EHLO" => "250-mx.example.org\r\n250-8BITMIME\r\n" + (Cert is not null && !tls ? "250-STARTTLS\r\n" : "") + "250 SIZE 100000000",
			"HELO" => "250 mx.example.org",
			"MAIL" => "250 2.1.0 sender ok",
			"RCPT" => "250 2.1.5 recipient ok",
			"DATA" => "354 go ahead",
			"QUIT" => "221 2.0.0 bye",
			"STARTTLS" => "220 2.0.0 ready",
			"NOOP" => "250 2.0.0 ok",
			_ => "502 5.5.2 what?",
		};
	}

	void Session(Stream s)
	{
		var r = new LineReader(s);
		var tls = false;
		void Say(string text)
		{
			s.Write(Encoding.Latin1.GetBytes(text + "\r\n"));
			s.Flush();
		}
		if (Greeting is not null)
			Say(Greeting);
		for (;;) {
			var cmd = r.Line();
			if (cmd is null)
				return;
			Commands.Enqueue(cmd);
			var a = Answer(cmd);
			if (a == "<close>")
				return;
			var reply = a ?? Default(cmd, tls);
			Say(reply);
			var verb = cmd.Split(' ', 2)[0].ToUpperInvariant();
			if (verb == "QUIT")
				return;
			if (verb == "STARTTLS" && reply.StartsWith('2') && Cert is not null) {
				var ssl = new SslStream(s);
				ssl.AuthenticateAsServer(Cert);
				s = ssl;
				r = new LineReader(s);
				tls = true;
				Commands.Enqueue("<tls>");
			}
			if (verb == "DATA" && reply.StartsWith('3')) {
				var m = r.Data(KeepMessages, out var n);
				Interlocked.Add(ref Received, n);
				if (m is null)
					return;
				Messages.Enqueue(m);
				Say(DataReply);
			}
		}
	}

	sealed class LineReader(Stream s)
	{
		readonly byte[] buf = new byte[65536];
		int pos, len;

		int Byte()
		{
			if (pos >= len) {
				len = s.Read(buf, 0, buf.Length);
				pos = 0;
				if (len <= 0)
					return -1;
			}
			return buf[pos++];
		}

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

		/// <summary>The message up to CR LF . CR LF (without the final ". CR LF"); null when the connection ends first.</summary>
		public byte[]? Data(bool keep, out long n)
		{
			var m = new MemoryStream();
			n = 0;
			// last bytes seen, to find CR LF . CR LF; a message of just ". CR LF" counts as empty
			uint tail = 0x0d0a;	// the last four bytes, as if preceded by CR LF
			for (;;) {
				var c = Byte();
				if (c < 0)
					return null;
				n++;
				tail = (tail << 8) | (uint)c;
				if (keep)
					m.WriteByte((byte)c);
				// ... CR LF . CR LF
				if (tail == 0x0a2e0d0a) {
					if (keep)
						m.SetLength(m.Length - 3);
					return keep ? m.ToArray() : [];
				}
			}
		}
	}

	public void Dispose()
	{
		stop.Cancel();
		listener.Stop();
		try {
			loop.Wait(5000);
		} catch (AggregateException) {
		}
	}
}
