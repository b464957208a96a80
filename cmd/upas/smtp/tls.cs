using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Upas.Smtpd;

/// <summary>
/// -c certfile: one PEM file holding the certificate chain and its private key (decisions #18),
/// checked at start-up and re-read whenever it changes.
/// </summary>
static class TlsCert
{
	static readonly Lock Sync = new();
	// keyed on the contents, not on mtime and size: a new certificate written within one clock tick, or copied
	// with its times kept, may well have the same size
	static (string Path, byte[] Data, SslStreamCertificateContext Ctx)? cache;

	/// <summary>The server certificate context, or null (and a reason) when the file is unusable.</summary>
	public static SslStreamCertificateContext? Load(string path, out string? err)
	{
		err = null;
		try {
			byte[] data;
			try {
				data = File.ReadAllBytes(path);
			} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
				err = "no such file";
				return null;
			}
			lock (Sync) {
				if (cache is { } c && c.Path == path && c.Data.AsSpan().SequenceEqual(data))
					return c.Ctx;
			}
			// one read: the certificate, the chain and the key all come from the same version of the file
			var pem = System.Text.Encoding.ASCII.GetString(data);
			var leaf = X509Certificate2.CreateFromPem(pem, pem);
			if (!leaf.HasPrivateKey) {
				err = "no private key";
				return null;
			}
			var all = new X509Certificate2Collection();
			all.ImportFromPem(pem);
			var chain = new X509Certificate2Collection();
			foreach (var x in all) {
				if (x.Thumbprint != leaf.Thumbprint)
					chain.Add(x);
			}
			var ctx = SslStreamCertificateContext.Create(leaf, chain, offline: true);
			lock (Sync)
				cache = (path, data, ctx);
			return ctx;
		} catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException) {
			err = e.Message;
			return null;
		}
	}
}

/// <summary>STARTTLS (smtpd.md §7, RFC 3207).</summary>
sealed partial class Session
{
	SslStreamCertificateContext? certCtx;
	bool certChecked;
	SslStream? ssl;

	/// <summary>Loads -c at start-up; a bad file is logged and STARTTLS is not offered.</summary>
	bool TlsAvailable()
	{
		if (opt.CertFile is null)
			return false;
		if (!certChecked) {
			certChecked = true;
			certCtx = TlsCert.Load(opt.CertFile, out var err);
			if (certCtx is null)
				Log($"tls: can't use certificate {opt.CertFile}: {err}");
		}
		return certCtx is not null;
	}

	async Task StartTls()
	{
		if (tls) {
			Reply("503 5.5.1 TLS already active");
			return;
		}
		certChecked = false; // re-read: the file may have changed since start-up
		if (!TlsAvailable()) {
			Reply("454 4.7.5 TLS not available");
			return;
		}
		Reply("220 2.0.0 Go ahead make my day");
		await io.FlushAsync();
		// whatever the client sent after STARTTLS was sent in clear: throw it away (CVE-2011-0411)
		io.DiscardBuffered();
		ssl = new SslStream(io.Input, leaveInnerStreamOpen: true);
		try {
			using var cts = new CancellationTokenSource(ReadLimit());
			await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions {
				ServerCertificateContext = certCtx,
				EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
				ClientCertificateRequired = false,
			}, cts.Token);
		} catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or System.ComponentModel.Win32Exception) {
			Log($"TLS start-up failed with {him}");
			trace.Line($"# tls: {e.Message}");
			throw new Hangup(1);
		}
		io.Replace(ssl);
		tls = true;
		passwordInClear = true;
		Log($"started TLS with {him}");
		// RFC 3207 4.2: forget everything learnt before TLS; the client says EHLO again
		him = "";
		saidHello = false;
		ResetTransaction();
		ForgetAuthentication();
	}

	/// <summary>At the end of the session: a TLS close_notify, so the client sees an orderly end, not a truncation.</summary>
	async Task EndTls()
	{
		if (!tls || ssl is null)
			return;
		try {
			await ssl.ShutdownAsync().WaitAsync(TimeSpan.FromSeconds(5));
		} catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or TimeoutException or AuthenticationException or NotSupportedException) {
			// the client is gone
		}
	}
}
