using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MailKit.Security;
using MimeKit;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>
/// STARTTLS (smtpd.md §7, decisions #18, RFC 3207): the -c file, what is advertised and when, the reset after the
/// handshake, CVE-2011-0411, protocol versions, the chain, re-reading the file, and real TLS clients with AUTH.
/// </summary>
[NonParallelizable] // CertificateIsReReadInProcess uses the process-wide certificate cache
public class TlsTests
{
	/// <summary>Certificates made for a test (never committed): a self-signed leaf, or a CA chain; PEM files as -c wants them.</summary>
	internal static class Certs
	{
		/// <summary>An ECDSA P-256 certificate for testhost and 127.0.0.1, self-signed or signed by issuer.</summary>
		public static X509Certificate2 Make(string cn, X509Certificate2? issuer = null, bool ca = false)
		{
			using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
			var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
			req.CertificateExtensions.Add(new X509BasicConstraintsExtension(ca, false, 0, true));
			req.CertificateExtensions.Add(new X509KeyUsageExtension(
				ca ? X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign : X509KeyUsageFlags.DigitalSignature, true));
			req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
			if (!ca) {
				var san = new SubjectAlternativeNameBuilder();
				san.AddDnsName("testhost");
				san.AddIpAddress(IPAddress.Loopback);
				req.CertificateExtensions.Add(san.Build());
				req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
			}
			var from = DateTimeOffset.UtcNow.AddDays(-1);
			var to = from.AddDays(30);
			if (issuer is null)
				return req.CreateSelfSigned(from, to);
			req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
			var serial = RandomNumberGenerator.GetBytes(12);
			serial[0] &= 0x7f;
			using var c = req.Create(issuer, from, to, serial);
			return c.CopyWithPrivateKey(key);
		}

		public static string CertPem(X509Certificate2 c) => c.ExportCertificatePem() + "\n";

		public static string KeyPem(X509Certificate2 c) => c.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n";

		/// <summary>The -c file: the certificate, then the chain, then the private key.</summary>
		public static string Pem(X509Certificate2 leaf, params X509Certificate2[] chain) =>
			CertPem(leaf) + string.Concat(chain.Select(CertPem)) + KeyPem(leaf);
	}

	/// <summary>A line client inside TLS, over any stream (a socket, or smtpd's pipes).</summary>
	internal sealed class TlsLines : IDisposable
	{
		readonly SslStream ssl;
		readonly Client lines;

		public TlsLines(Stream inner, SslProtocols protocols = SslProtocols.None)
		{
			ssl = new SslStream(inner, leaveInnerStreamOpen: true);
			var hs = ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions {
				TargetHost = "testhost",
				EnabledSslProtocols = protocols,
				RemoteCertificateValidationCallback = (_, _, _, _) => true,
			});
			if (!hs.Wait(30_000))
				throw new TimeoutException("TLS handshake did not finish");
			lines = new Client(ssl);
		}

		public SslProtocols Protocol => ssl.SslProtocol;

		public string Thumbprint => ssl.RemoteCertificate!.GetCertHashString();

		public void Send(string text) => lines.Send(text);

		/// <summary>One reply line; null at the end of the connection (a close_notify or the TCP end).</summary>
		public string? Line(int timeoutMs = 30_000) => lines.Line(timeoutMs);

		public List<string> Reply() => lines.Reply();

		public string Ask(string cmd) => lines.Ask(cmd);

		public void Dispose() => ssl.Dispose();
	}

	const string Password = "s3cret-Pa55";
	const string Keys = "key proto=pass service=smtp user=glenda !password=" + Password + "\n";
	const string GoAhead = "220 2.0.0 Go ahead make my day";
	const string NotAvailable = "454 4.7.5 TLS not available";
	const string Helo = "client.9fans.net";

	/// <summary>A tree with smtpd.keys and a fresh certificate in /lib/smtpd.pem; returns its host path.</summary>
	static Tree TlsTree(out string certFile, out X509Certificate2 cert)
	{
		var t = new Tree();
		t.Write("/mail/lib/smtpd.keys", Keys, 0x180);
		cert = Certs.Make("testhost");
		t.Write("/lib/smtpd.pem", Certs.Pem(cert), 0x180);
		certFile = t.P("/lib/smtpd.pem");
		return t;
	}

	static string Need(string tool)
	{
		if (!Repo.Have(tool))
			Assert.Fail($"{tool} is not installed: run sys/lib/upas/prereq");
		return tool;
	}

	/// <summary>Runs a program with stdin to its end; its exit status and its stdout and stderr together.</summary>
	static (int Exit, string Output) RunTool(string prog, string stdin, params string[] args)
	{
		var psi = new ProcessStartInfo(Need(prog)) {
			UseShellExecute = false,
			RedirectStandardInput = true,
			RedirectStandardOutput = true,
			RedirectStandardError = true,
		};
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		using var p = Process.Start(psi)!;
		var o = p.StandardOutput.ReadToEndAsync();
		var e = p.StandardError.ReadToEndAsync();
		try {
			p.StandardInput.Write(stdin);
			p.StandardInput.Close();
		} catch (IOException) {
		}
		if (!p.WaitForExit(60_000)) {
			p.Kill(true);
			Assert.Fail($"{prog} did not finish within 60 s:\n{o.Result}\n{e.Result}");
		}
		return (p.ExitCode, o.Result + e.Result);
	}

	static string Port(SocketServer s) => s.Endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

	static Client Open(Tree t, params string[] flags)
	{
		var p = Process.Start(t.Start(flags))!;
		_ = p.StandardError.ReadToEndAsync();
		var c = new Client(p);
		Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
		return c;
	}

	/// <summary>Greeting, EHLO (STARTTLS offered) and STARTTLS, as a pipelining client would: STARTTLS and RSET in one write.</summary>
	static void ToStartTls(Client c, bool pipelineRset = true)
	{
		var ehlo = c.Ask("EHLO " + Helo);
		Assert.That(ehlo.Split('\n'), Does.Contain("250-STARTTLS"));
		Assert.That(ehlo.Split('\n')[^1], Is.EqualTo("250 AUTH CRAM-MD5"));
		c.Send(pipelineRset ? "STARTTLS\r\nRSET\r\n" : "STARTTLS\r\n");
		Assert.That(c.Line(), Is.EqualTo(GoAhead));
	}

	/// <summary>What must hold right after the handshake: nothing from before TLS is answered or remembered.</summary>
	static void AfterHandshake(TlsLines s)
	{
		// RFC 3207: the state is reset, so MAIL needs a new EHLO; and the RSET sent in clear behind STARTTLS
		// (CVE-2011-0411) is never answered: the first reply inside TLS is the one to MAIL
		Assert.That(s.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("503 Start by saying HELO, please."));
		var ehlo = s.Ask("EHLO " + Helo).Split('\n');
		Assert.That(ehlo[0], Is.EqualTo("250-example.com you are client.9fans.net"));
		Assert.That(ehlo, Has.None.Contains("STARTTLS"));
		Assert.That(ehlo[^1], Is.EqualTo("250 AUTH CRAM-MD5 PLAIN LOGIN"));
		Assert.That(s.Ask("STARTTLS"), Is.EqualTo("503 5.5.1 TLS already active"));
	}

	static void SendMessage(TlsLines s, string subject)
	{
		Assert.That(s.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!alice"));
		Assert.That(s.Ask("RCPT TO:<bob@example.com>"), Is.EqualTo("250 2.0.0 receiver is example.com!bob"));
		Assert.That(s.Ask("DATA"), Is.EqualTo("354 Input message; end with <CRLF>.<CRLF>"));
		Assert.That(s.Ask($"Subject: {subject}\r\n\r\nsecret stuff\r\n."), Is.EqualTo("250 2.5.0 sent"));
	}

	static void CheckDelivered(Tree t, string subject, int n = 1)
	{
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(n));
		Assert.That(caps[^1].Args, Is.EqualTo(new[] { "-r", "--", "example.com!bob" }));
		Assert.That(caps[^1].Text, Does.Contain($"Subject: {subject}\n"));
	}

	// ---- without a usable certificate

	[Test]
	public void WithoutDashCNoStartTls()
	{
		using var t = new Tree();
		var r = t.Run("EHLO client.9fans.net\r\nSTARTTLS\r\nNOOP\r\n");
		var l = Wire.Lines(r.Out);
		Assert.That(l, Has.None.Contains("STARTTLS"));
		Assert.That(Wire.AfterEhlo(l), Is.EqualTo(new[] { NotAvailable, "250 2.0.0 Nothing to see here. Move along ..." }));
		Assert.That(r.Exit, Is.EqualTo(0));
	}

	static readonly object[] BadFiles = [
		new object[] { "garbage", "this is not a certificate\n" },
		new object[] { "empty", "" },
		new object[] { "certificate without key", "CERT" },
		new object[] { "key without certificate", "KEY" },
		new object[] { "key of another certificate", "CERT+OTHERKEY" },
		new object[] { "missing", null! },
	];

	[TestCaseSource(nameof(BadFiles))]
	public void BadCertificateFile(string what, string? content)
	{
		using var t = new Tree();
		var path = t.P("/lib/smtpd.pem");
		if (content is not null) {
			var cert = Certs.Make("testhost");
			var other = Certs.Make("testhost");
			content = content switch {
				"CERT" => Certs.CertPem(cert),
				"KEY" => Certs.KeyPem(cert),
				"CERT+OTHERKEY" => Certs.CertPem(cert) + Certs.KeyPem(other),
				_ => content,
			};
			t.Write("/lib/smtpd.pem", content, 0x180);
		}
		var r = t.Run("EHLO client.9fans.net\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n", "-c", path);
		var l = Wire.Lines(r.Out);
		Assert.That(l, Has.None.Contains("250-STARTTLS"), what);
		Assert.That(Wire.AfterEhlo(l), Is.EqualTo(new[] {
			NotAvailable,
			"250 2.0.0 Nothing to see here. Move along ...",
			"221 2.0.0 Successful termination",
		}), what);
		Assert.That(r.Exit, Is.EqualTo(0));
		var logs = t.Log().Where(x => x.StartsWith("tls: ", StringComparison.Ordinal)).ToList();
		Assert.That(logs, Is.Not.Empty, what);
		Assert.That(logs, Has.All.Match($"^tls: can't use certificate {System.Text.RegularExpressions.Regex.Escape(path)}: .+"), what);
	}

	// ---- STARTTLS on a real socket and on pipes

	[TestCase(SslProtocols.Tls12)]
	[TestCase(SslProtocols.Tls13)]
	[TestCase(SslProtocols.None)]
	public void StartTlsOnASocket(SslProtocols protocols)
	{
		using var t = TlsTree(out var certFile, out var cert);
		using var srv = new SocketServer(t, ["-c", certFile]);
		using var c = srv.Connect();
		Assert.That(c.Reply(), Is.EqualTo(new[] { "220-example.com ESMTP", "220 " }));
		ToStartTls(c);
		using var s = new TlsLines(c.Stream, protocols);
		Assert.That(s.Protocol, protocols == SslProtocols.None ? Is.EqualTo(SslProtocols.Tls13) : Is.EqualTo(protocols));
		Assert.That(s.Thumbprint, Is.EqualTo(cert.Thumbprint));
		AfterHandshake(s);
		// PLAIN is allowed now without -p
		Assert.That(s.Ask("AUTH PLAIN " + AuthTests.Plain("glenda", Password)), Is.EqualTo("235 2.0.0 Authentication successful"));
		SendMessage(s, "over tls");
		Assert.That(s.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		Assert.That(s.Line(10_000), Is.Null, "smtpd hangs up after QUIT");
		CheckDelivered(t, "over tls");
		var log = t.Log();
		Assert.That(log, Does.Contain("started TLS with client.9fans.net"));
		Assert.That(log, Has.None.Contains("RSET"));
	}

	[Test]
	public void StartTlsOnPipes()
	{
		using var t = TlsTree(out var certFile, out var cert);
		using var c = Open(t, "-c", certFile, "-d");
		ToStartTls(c);
		using (var s = new TlsLines(c.Stream)) {
			Assert.That(s.Thumbprint, Is.EqualTo(cert.Thumbprint));
			AfterHandshake(s);
			Assert.That(s.Ask("AUTH LOGIN"), Is.EqualTo("334 VXNlcm5hbWU6"));
			Assert.That(s.Ask(AuthTests.B64("glenda")), Is.EqualTo("334 UGFzc3dvcmQ6"));
			Assert.That(s.Ask(AuthTests.B64(Password)), Is.EqualTo("235 2.0.0 Authentication successful"));
			SendMessage(s, "over pipes");
			Assert.That(s.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
			Assert.That(s.Line(10_000), Is.Null);
		}
		Assert.That(c.Exit(), Is.EqualTo(0));
		CheckDelivered(t, "over pipes");
		Assert.That(t.Log(), Does.Contain("started TLS with client.9fans.net"));
		// the -d trace never saw the pipelined RSET as a command, nor the password
		var trace = File.ReadAllText(Directory.GetFiles(t.P("/sys/log/smtpdb")).Single());
		Assert.That(trace, Does.Not.Contain("RSET").And.Not.Contain(Password).And.Not.Contain(AuthTests.B64(Password)));
		Assert.That(trace, Does.Contain("# log: started TLS with client.9fans.net"));
	}

	[Test]
	public void AuthenticationBeforeTlsIsForgotten()
	{
		// RFC 3207 4.2: the server discards what it learnt from the client before TLS, authentication and the
		// trust it brought included
		using var t = TlsTree(out var certFile, out _);
		using var c = Open(t, "-c", certFile, "-f");
		Assert.That(c.Ask("EHLO " + Helo), Does.Contain("250-STARTTLS"));
		var ch = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(AuthTests.CramResponse(ch, "glenda", Password)), Is.EqualTo("235 2.0.0 Authentication successful"));
		Assert.That(c.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!alice"));
		Assert.That(c.Ask("RCPT TO:<bob@elsewhere.net>"), Is.EqualTo("250 2.0.0 receiver is elsewhere.net!bob"));
		c.Send("STARTTLS\r\n");
		Assert.That(c.Line(), Is.EqualTo(GoAhead));
		using var s = new TlsLines(c.Stream);
		s.Ask("EHLO " + Helo);
		Assert.That(s.Ask("RCPT TO:<bob@elsewhere.net>"), Is.EqualTo("503 5.5.1 Need MAIL before RCPT"), "the transaction is gone");
		Assert.That(s.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("250 2.0.0 sender is 9fans.net!alice"));
		Assert.That(s.Ask("RCPT TO:<bob@elsewhere.net>"), Is.EqualTo("550 5.7.1 we don't relay.  send to your-path@[] for loopback."));
		Assert.That(s.Ask("AUTH PLAIN " + AuthTests.Plain("glenda", Password)), Is.EqualTo("235 2.0.0 Authentication successful"), "AUTH again");
		Assert.That(s.Ask("RCPT TO:<bob@elsewhere.net>"), Is.EqualTo("250 2.0.0 receiver is elsewhere.net!bob"));
		Assert.That(s.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
	}

	[Test]
	public void DashARequiresAuthenticationAgainAfterTls()
	{
		using var t = TlsTree(out var certFile, out _);
		using var c = Open(t, "-c", certFile, "-a");
		c.Ask("EHLO " + Helo);
		var ch = c.Ask("AUTH CRAM-MD5");
		Assert.That(c.Ask(AuthTests.CramResponse(ch, "glenda", Password)), Is.EqualTo("235 2.0.0 Authentication successful"));
		c.Send("STARTTLS\r\n");
		Assert.That(c.Line(), Is.EqualTo(GoAhead));
		using var s = new TlsLines(c.Stream);
		s.Ask("EHLO " + Helo);
		Assert.That(s.Ask("MAIL FROM:<alice@9fans.net>"), Is.EqualTo("530 5.7.0 Authentication required"));
		Assert.That(s.Ask("AUTH PLAIN " + AuthTests.Plain("glenda", Password)), Is.EqualTo("235 2.0.0 Authentication successful"));
		SendMessage(s, "auth after tls");
		CheckDelivered(t, "auth after tls");
	}

	// ---- failed handshakes

	[TestCase("this is not a TLS client hello\r\n")]
	[TestCase("\x16\x03\x01\x00\x05hello")]
	[TestCase("")]
	public void FailedHandshakeEndsTheSession(string garbage)
	{
		using var t = TlsTree(out var certFile, out _);
		using var c = Open(t, "-c", certFile);
		ToStartTls(c, pipelineRset: false);
		if (garbage.Length > 0) {
			c.Send(Encoding.Latin1.GetBytes(garbage));
			// smtpd may answer a malformed handshake with a TLS alert record, but never with an SMTP reply in clear
			var rest = new List<string>();
			while (c.Line(15_000) is { } l)
				rest.Add(l);
			Assert.That(rest, Has.None.Match(@"^\d\d\d[ -]"), "smtpd hangs up; nothing in clear after the 220");
			Assert.That(rest, Has.All.StartsWith("\x15\x03"), "a TLS alert at most");
		}
		// an empty garbage is the end of input in the middle of the handshake
		Assert.That(c.Exit(), Is.EqualTo(1));
		var log = t.Log();
		Assert.That(log, Does.Contain("TLS start-up failed with client.9fans.net"));
		Assert.That(log, Has.None.StartsWith("started TLS"));
	}

	[Test]
	public void FailedHandshakeOnASocket()
	{
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile]);
		using var c = srv.Connect();
		c.Reply();
		ToStartTls(c, pipelineRset: false);
		c.Send("GET / HTTP/1.0\r\n\r\n");
		Assert.That(c.Line(15_000), Is.Null);
		Assert.That(t.Log(), Does.Contain("TLS start-up failed with client.9fans.net"));
	}

	// ---- protocol versions, with OpenSSL's client

	static string[] SClient(SocketServer srv, params string[] more) =>
		["s_client", "-starttls", "smtp", "-name", Helo, "-connect", $"127.0.0.1:{Port(srv)}", .. more];

	[TestCase("-tls1", false)]
	[TestCase("-tls1_1", false)]
	[TestCase("-tls1_2", true)]
	[TestCase("-tls1_3", true)]
	public void OnlyTls12And13(string version, bool works)
	{
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile]);
		// SECLEVEL=0 lets the client really offer the old versions: the refusal must be the server's
		var (exit, output) = RunTool("openssl", "EHLO client.9fans.net\r\nQUIT\r\n",
			SClient(srv, version, "-cipher", "DEFAULT@SECLEVEL=0", "-brief", "-ign_eof"));
		if (works) {
			Assert.That(exit, Is.EqualTo(0), output);
			Assert.That(output, Does.Contain("Protocol version: " + (version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3")));
			Assert.That(output, Does.Contain("250 AUTH CRAM-MD5 PLAIN LOGIN").And.Contain("221 2.0.0 Successful termination"));
			Assert.That(t.Log(), Does.Contain("started TLS with client.9fans.net"));
		} else {
			Assert.That(exit, Is.Not.EqualTo(0), output);
			Assert.That(output, Does.Contain("alert protocol version"), "the server refused the version");
			Assert.That(output, Does.Not.Contain("250 AUTH CRAM-MD5 PLAIN LOGIN"));
			Assert.That(t.Log(), Does.Contain("TLS start-up failed with client.9fans.net"));
		}
	}

	// ---- the certificate file

	[Test]
	public void ChainIsSent()
	{
		using var t = new Tree();
		var root = Certs.Make("upas test root", ca: true);
		var mid = Certs.Make("upas test intermediate", root, ca: true);
		var leaf = Certs.Make("testhost", mid);
		t.Write("/lib/root.pem", Certs.CertPem(root));
		t.Write("/lib/chain.pem", Certs.Pem(leaf, mid), 0x180);
		t.Write("/lib/leaf.pem", Certs.Pem(leaf), 0x180);
		foreach (var (file, verifies) in new[] { ("/lib/chain.pem", true), ("/lib/leaf.pem", false) }) {
			using var srv = new SocketServer(t, ["-c", t.P(file)]);
			// the client trusts only the root: it can verify the leaf only when smtpd sends the intermediate
			var (exit, output) = RunTool("openssl", "EHLO client.9fans.net\r\nQUIT\r\n",
				SClient(srv, "-CAfile", t.P("/lib/root.pem"), "-verify_return_error", "-verify_hostname", "testhost", "-showcerts", "-ign_eof"));
			var sent = output.Split("-----BEGIN CERTIFICATE-----").Length - 1;
			if (verifies) {
				Assert.That(exit, Is.EqualTo(0), output);
				Assert.That(output, Does.Contain("Verify return code: 0 (ok)"));
				Assert.That(sent, Is.EqualTo(2), "leaf and intermediate");
				Assert.That(output, Does.Contain("CN = upas test intermediate"));
				Assert.That(output, Does.Contain("221 2.0.0 Successful termination"));
			} else {
				Assert.That(exit, Is.Not.EqualTo(0), output);
				Assert.That(output, Does.Contain("unable to get local issuer certificate"));
			}
		}
	}

	[Test]
	public void OpensslMadeCertificateAndKey()
	{
		// what an administrator would do: openssl req, then cat the certificate and the key (RSA, PKCS#8 or traditional)
		using var t = new Tree();
		var dir = t.P("/lib");
		Directory.CreateDirectory(dir);
		var (exit, output) = RunTool("openssl", "", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
			"-subj", "/CN=testhost", "-keyout", Path.Join(dir, "key.pem"), "-out", Path.Join(dir, "cert.pem"));
		Assert.That(exit, Is.EqualTo(0), output);
		t.Write("/lib/smtpd.pem", File.ReadAllText(Path.Join(dir, "key.pem")) + File.ReadAllText(Path.Join(dir, "cert.pem")), 0x180);
		using var want = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Join(dir, "cert.pem")));
		using var c = Open(t, "-c", t.P("/lib/smtpd.pem"));
		ToStartTls(c);
		using var s = new TlsLines(c.Stream);
		Assert.That(s.Thumbprint, Is.EqualTo(want.Thumbprint));
		AfterHandshake(s);
	}

	[Test]
	public void CertificateIsReReadWhenItChanges()
	{
		using var t = TlsTree(out var certFile, out var first);
		using var srv = new SocketServer(t, ["-c", certFile]);
		string Thumb()
		{
			using var c = srv.Connect();
			c.Reply();
			ToStartTls(c);
			using var s = new TlsLines(c.Stream);
			s.Ask("QUIT");
			return s.Thumbprint;
		}
		Assert.That(Thumb(), Is.EqualTo(first.Thumbprint));
		var second = Certs.Make("testhost");
		File.WriteAllText(certFile, Certs.Pem(second));
		Assert.That(Thumb(), Is.EqualTo(second.Thumbprint));
		// replaced by rename, as an ACME client does
		var third = Certs.Make("testhost");
		File.WriteAllText(certFile + ".new", Certs.Pem(third));
		File.Move(certFile + ".new", certFile, overwrite: true);
		Assert.That(Thumb(), Is.EqualTo(third.Thumbprint));
	}

	[Test]
	public void FixedCertificateIsUsedWithoutRestart()
	{
		using var t = TlsTree(out var certFile, out var cert);
		var good = File.ReadAllText(certFile);
		File.WriteAllText(certFile, "broken\n");
		using var c = Open(t, "-c", certFile);
		Assert.That(c.Ask("EHLO " + Helo), Does.Not.Contain("STARTTLS"));
		// the administrator fixes the file: the next STARTTLS reads it again
		File.WriteAllText(certFile, good);
		c.Send("STARTTLS\r\n");
		Assert.That(c.Line(), Is.EqualTo(GoAhead));
		using var s = new TlsLines(c.Stream);
		Assert.That(s.Thumbprint, Is.EqualTo(cert.Thumbprint));
		AfterHandshake(s);
	}

	[Test]
	public void BrokenCertificateAfterStartUpIsNotAvailable()
	{
		using var t = TlsTree(out var certFile, out _);
		using var c = Open(t, "-c", certFile);
		Assert.That(c.Ask("EHLO " + Helo), Does.Contain("250-STARTTLS"));
		File.WriteAllText(certFile, "broken\n");
		Assert.That(c.Ask("STARTTLS"), Is.EqualTo(NotAvailable));
		Assert.That(c.Ask("NOOP"), Does.StartWith("250 "), "still in clear, still talking");
		Assert.That(t.Log(), Has.Some.StartsWith($"tls: can't use certificate {certFile}: "));
	}

	[Test]
	public void CertificateIsReReadInProcess()
	{
		using var t = new Tree();
		var path = t.P("/lib/smtpd.pem");
		var a = Certs.Make("testhost");
		var pa = Certs.Pem(a);
		// another certificate whose file has the same size, written at once: mtime and size alone cannot tell
		X509Certificate2 b;
		string pb;
		var tries = 0;
		do {
			b = Certs.Make("testhost");
			pb = Certs.Pem(b);
		} while (pb.Length != pa.Length && ++tries < 200);
		Assert.That(pb, Has.Length.EqualTo(pa.Length));
		t.Write("/lib/smtpd.pem", pa, 0x180);
		Assert.That(TlsCert.Load(path, out var err)?.TargetCertificate.Thumbprint, Is.EqualTo(a.Thumbprint), err);
		Assert.That(TlsCert.Load(path, out err)?.TargetCertificate.Thumbprint, Is.EqualTo(a.Thumbprint), err);
		var mtime = File.GetLastWriteTimeUtc(path);
		File.WriteAllText(path, pb);
		File.SetLastWriteTimeUtc(path, mtime);
		Assert.That(TlsCert.Load(path, out err)?.TargetCertificate.Thumbprint, Is.EqualTo(b.Thumbprint), err);
		File.WriteAllText(path, "garbage");
		Assert.That(TlsCert.Load(path, out err), Is.Null);
		Assert.That(err, Is.Not.Empty);
		File.Delete(path);
		Assert.That(TlsCert.Load(path, out err), Is.Null);
		Assert.That(err, Is.EqualTo("no such file"));
	}

	// ---- real TLS clients, each authenticating and sending one message (-a: no AUTH, no mail)

	[Test]
	public void OpensslSClientSendsAMessage()
	{
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile, "-a"]);
		var input = Tree.Crlf($"""
			EHLO client.9fans.net
			AUTH PLAIN {AuthTests.Plain("glenda", Password)}
			MAIL FROM:<alice@9fans.net>
			RCPT TO:<bob@example.com>
			DATA
			Subject: s_client

			hello from openssl
			.
			QUIT

			""");
		var (exit, output) = RunTool("openssl", input, SClient(srv, "-quiet"));
		Assert.That(output, Does.Contain("235 2.0.0 Authentication successful"));
		Assert.That(output, Does.Contain("250 2.5.0 sent").And.Contain("221 2.0.0 Successful termination"));
		Assert.That(exit, Is.EqualTo(0), output);
		CheckDelivered(t, "s_client");
		Assert.That(t.Log(), Does.Contain("started TLS with client.9fans.net"));
	}

	[TestCase("LOGIN")]
	[TestCase("PLAIN")]
	[TestCase("CRAM-MD5")]
	public void Swaks(string mech)
	{
		Need("swaks");
		var support = RunTool("swaks", "", "--support").Output;
		Assert.That(support, Does.Contain("TLS supported"), "swaks needs Net::SSLeay for --tls: install libnet-ssleay-perl (sys/lib/upas/prereq)");
		Assert.That(support, Does.Contain(mech == "CRAM-MD5" ? "AUTH CRAM-MD5 supported" : "Basic AUTH supported"),
			"swaks cannot do AUTH " + mech + " here (CRAM-MD5 needs Digest::HMAC_MD5: install libdigest-hmac-perl; sys/lib/upas/prereq)");
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile, "-a"]);
		var (exit, output) = RunTool("swaks", "", "--server", $"127.0.0.1:{Port(srv)}", "--helo", Helo, "--tls",
			"--auth", mech, "--auth-user", "glenda", "--auth-password", Password,
			"--from", "alice@9fans.net", "--to", "bob@example.com", "--header", "Subject: swaks " + mech,
			"--body", "hello from swaks", "--timeout", "30");
		Assert.That(exit, Is.EqualTo(0), output);
		Assert.That(output, Does.Contain("<~  235 2.0.0 Authentication successful"), "inside TLS");
		Assert.That(output, Does.Contain("<~  250 2.5.0 sent"));
		CheckDelivered(t, "swaks " + mech);
		var log = t.Log();
		Assert.That(log, Does.Contain("started TLS with client.9fans.net"));
		Assert.That(log, Does.Contain($"auth({mech}, (protected)) from client.9fans.net"));
	}

	const string PythonClient = """
		import smtplib, ssl, sys
		ctx = ssl.create_default_context()
		ctx.check_hostname = False
		ctx.verify_mode = ssl.CERT_NONE
		s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname='client.9fans.net', timeout=30)
		s.starttls(context=ctx)
		print("tls:", s.sock.version())
		print("auth:", s.login('glenda', sys.argv[3]))
		refused = s.sendmail('alice@9fans.net', ['bob@example.com'], "Subject: smtplib\r\n\r\nhello from smtplib\r\n")
		assert refused == {}, refused
		print(s.quit())
		""";

	[Test]
	public void PythonSmtplib()
	{
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile, "-a"]);
		var (exit, output) = RunTool("python3", "", "-c", PythonClient, "127.0.0.1", Port(srv), Password);
		Assert.That(exit, Is.EqualTo(0), output);
		Assert.That(output, Does.Match(@"tls: TLSv1\.[23]"));
		Assert.That(output, Does.Contain("auth: (235, b'2.0.0 Authentication successful')"));
		CheckDelivered(t, "smtplib");
		var log = t.Log();
		Assert.That(log, Does.Contain("started TLS with client.9fans.net"));
		Assert.That(log, Does.Contain("auth(CRAM-MD5, (protected)) from client.9fans.net"), "smtplib prefers CRAM-MD5");
	}

	[TestCase("PLAIN")]
	[TestCase("LOGIN")]
	[TestCase("CRAM-MD5")]
	public void MailKitClient(string mech)
	{
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile, "-a"]);
		var m = new MimeMessage();
		m.From.Add(new MailboxAddress("Alice", "alice@9fans.net"));
		m.To.Add(new MailboxAddress("Bob", "bob@example.com"));
		m.Subject = "MailKit " + mech;
		m.Body = new TextPart("plain") { Text = "hello from MailKit\r\n" };
		var cred = new NetworkCredential("glenda", Password);
		using (var c = new MailKit.Net.Smtp.SmtpClient { LocalDomain = Helo, Timeout = 30_000 }) {
			c.ServerCertificateValidationCallback = (_, _, _, _) => true;
			c.Connect(srv.Endpoint.Address.ToString(), srv.Endpoint.Port, SecureSocketOptions.StartTls);
			Assert.That(c.IsSecure, Is.True);
			Assert.That(c.SslProtocol, Is.EqualTo(SslProtocols.Tls12).Or.EqualTo(SslProtocols.Tls13));
			Assert.That(c.AuthenticationMechanisms, Is.EquivalentTo(new[] { "CRAM-MD5", "PLAIN", "LOGIN" }));
			SaslMechanism sasl = mech switch {
				"PLAIN" => new SaslMechanismPlain(cred),
				"LOGIN" => new SaslMechanismLogin(cred),
				_ => new SaslMechanismCramMd5(cred),
			};
			c.Authenticate(sasl);
			Assert.That(c.IsAuthenticated, Is.True);
			var reply = c.Send(m);
			Assert.That(reply, Is.EqualTo("2.5.0 sent").Or.EqualTo("sent"));
			c.Disconnect(true);
		}
		CheckDelivered(t, "MailKit " + mech);
		Assert.That(t.Log(), Does.Contain($"auth({mech}, (protected)) from client.9fans.net"));
	}

	[Test]
	public void MailKitWrongPasswordFails()
	{
		using var t = TlsTree(out var certFile, out _);
		using var srv = new SocketServer(t, ["-c", certFile, "-a"]);
		using var c = new MailKit.Net.Smtp.SmtpClient { LocalDomain = Helo, Timeout = 30_000 };
		c.ServerCertificateValidationCallback = (_, _, _, _) => true;
		c.Connect(srv.Endpoint.Address.ToString(), srv.Endpoint.Port, SecureSocketOptions.StartTls);
		var e = Assert.Throws<MailKit.Security.AuthenticationException>(() => c.Authenticate(new SaslMechanismPlain("glenda", "nope")));
		Assert.That(e!.Message, Does.Contain("Authentication failed"));
		c.Disconnect(true);
	}
}
