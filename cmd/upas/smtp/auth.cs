using System.Security.Cryptography;
using System.Text;

namespace Upas.Smtpd;

/// <summary>AUTH PLAIN, LOGIN and CRAM-MD5 (smtpd.md §9, RFC 4954), checked against /mail/lib/smtpd.keys.</summary>
sealed partial class Session
{
	// Failures 1-2 are answered at once, 3-4 after a pause, the 5th ends the session.
	public const int AuthFreeFailures = 2;
	public const int AuthSlowSeconds = 5;
	public const int AuthMaxFailures = 5;
	int authFailures;
	bool trustedBeforeAuth;

	sealed class AuthAbort(string reply) : Exception
	{
		public string ReplyLine { get; } = reply;
	}

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
		if (mech is not ("PLAIN" or "LOGIN" or "CRAM-MD5")) {
			rc++;
			Reply($"501 5.5.1 Unrecognised authentication type {cmd.Value}");
			return;
		}
		if (mech is "PLAIN" or "LOGIN" && !passwordInClear) {
			rc++;
			Reply("538 5.7.1 Encryption required for requested authentication mechanism");
			return;
		}
		var keys = SmtpdKeys.Load(Log);
		string? user;
		try {
			user = mech switch {
				"PLAIN" => await Plain(cmd.Arg2, keys),
				"LOGIN" => await Login(cmd.Arg2, keys),
				_ => await CramMd5(keys),
			};
		} catch (AuthAbort a) {
			rc++;
			Reply(a.ReplyLine);
			return;
		}
		if (user is null) {
			rc++;
			authFailures++;
			if (authFailures >= AuthMaxFailures) {
				Log($"too many authentication failures from {him} ({rsys})");
				Reply("421 4.7.0 Too many authentication failures");
				throw new Hangup(1);
			}
			if (authFailures > AuthFreeFailures) {
				await io.FlushAsync();
				await Task.Delay(TimeSpan.FromSeconds(AuthSlowSeconds));
			}
			Reply("535 5.7.1 Authentication failed");
			return;
		}
		authenticated = true;
		authUser = user;
		trustedBeforeAuth = policy.Trusted;
		policy.Trusted = true;
		Reply("235 2.0.0 Authentication successful");
	}

	/// <summary>After STARTTLS (RFC 3207 4.2): the client is no longer authenticated, nor trusted because it was.</summary>
	void ForgetAuthentication()
	{
		if (!authenticated)
			return;
		authenticated = false;
		policy.Trusted = trustedBeforeAuth;
	}

	/// <summary>One continuation line, decoded; "*" cancels (RFC 4954 4).</summary>
	async Task<byte[]> Continue(string challenge)
	{
		Reply(challenge);
		io.Quiet = true;
		var (st, line) = await io.ReadLineAsync(ReadLimit());
		io.Quiet = false;
		if (st == ReadStatus.Eof)
			throw new Hangup(0);
		if (st == ReadStatus.Timeout)
			TimedOut();
		if (st == ReadStatus.TooLong)
			throw new AuthAbort("500 5.5.2 line too long");
		trace.Line("(protected)");
		if (line.Trim() == "*")
			throw new AuthAbort("501 5.7.0 Authentication cancelled");
		return Decode(line);
	}

	static byte[] Decode(string s)
	{
		try {
			return Convert.FromBase64String(s.Trim());
		} catch (FormatException) {
			throw new AuthAbort("501 5.5.4 Cannot decode base64");
		}
	}

	/// <summary>authzid NUL user NUL password.</summary>
	async Task<string?> Plain(string? initial, List<FactotumKey> keys)
	{
		var blob = initial is null ? await Continue("334 ") : initial == "=" ? [] : Decode(initial);
		var parts = Encoding.UTF8.GetString(blob).Split('\0');
		if (parts.Length != 3) {
			Log("authentication failed: malformed PLAIN response");
			return null;
		}
		return Check(keys, parts[1], parts[2]);
	}

	async Task<string?> Login(string? initial, List<FactotumKey> keys)
	{
		var user = Encoding.UTF8.GetString(initial is null ? await Continue("334 VXNlcm5hbWU6") : Decode(initial));
		var pass = Encoding.UTF8.GetString(await Continue("334 UGFzc3dvcmQ6"));
		return Check(keys, user, pass);
	}

	string? Check(List<FactotumKey> keys, string user, string pass)
	{
		var secret = SmtpdKeys.Secret(keys, user);
		if (secret is null) {
			Log($"authentication failed: no key for {user}");
			return null;
		}
		if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(pass))) {
			Log($"authentication failed: wrong password for {user}");
			return null;
		}
		return user;
	}

	async Task<string?> CramMd5(List<FactotumKey> keys)
	{
		if (keys.Count == 0)
			throw new AuthAbort("501 5.7.5 Couldn't get CRAM-MD5 challenge");
		var r = RandomNumberGenerator.GetBytes(16);
		var challenge = $"<{BitConverter.ToUInt32(r, 0):x}{BitConverter.ToUInt32(r, 4):x}.{BitConverter.ToUInt32(r, 8):x}{BitConverter.ToUInt32(r, 12):x}@{dom}>";
		var resp = Encoding.UTF8.GetString(await Continue("334 " + Convert.ToBase64String(Encoding.ASCII.GetBytes(challenge))));
		var sp = resp.LastIndexOf(' ');
		if (sp <= 0)
			throw new AuthAbort("501 5.5.4 Poorly formed CRAM-MD5 response");
		var user = resp[..sp];
		var secret = SmtpdKeys.Secret(keys, user);
		if (secret is null) {
			Log($"authentication failed: no key for {user}");
			return null;
		}
		var want = Convert.ToHexStringLower(HMACMD5.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(challenge)));
		if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(want), Encoding.ASCII.GetBytes(resp[(sp + 1)..].ToLowerInvariant()))) {
			Log($"authentication failed: wrong CRAM-MD5 digest for {user}");
			return null;
		}
		return user;
	}
}
