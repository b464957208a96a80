namespace Upas.Smtpd;

/// <summary>STARTTLS (smtpd.md §7).</summary>
sealed partial class Session
{
	bool TlsAvailable() => false;

	async Task StartTls()
	{
		await Task.CompletedTask;
		tls = false;
		Reply("454 4.7.5 TLS not available");
	}
}
