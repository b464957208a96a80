namespace Upas.Smtpd;

/// <summary>AUTH (smtpd.md §9).</summary>
sealed partial class Session
{
	async Task Auth(Cmd cmd)
	{
		if (Rejected())
			return;
		var mech = cmd.Value.ToUpperInvariant();
		Log($"auth({cmd.Value}, (protected)) from {him}");
		if (authenticated) {
			rc++;
			Reply("503 5.5.2 Bad sequence of commands");
			return;
		}
		switch (mech) {
		case "PLAIN":
		case "LOGIN":
			if (!passwordInClear) {
				rc++;
				Reply("538 5.7.1 Encryption required for requested authentication mechanism");
				return;
			}
			break;
		case "CRAM-MD5":
			break;
		default:
			rc++;
			Reply($"501 5.5.1 Unrecognised authentication type {cmd.Value}");
			return;
		}
		await Task.CompletedTask;
		authenticated = false;
		rc++;
		if (mech == "CRAM-MD5")
			Reply("501 5.7.5 Couldn't get CRAM-MD5 challenge");
		else
			Reply("535 5.7.1 Authentication failed");
	}
}
