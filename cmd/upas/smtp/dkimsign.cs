using System.Security.Cryptography;
using Mono.Unix.Native;
using Upas.Dkim;

namespace Upas.Smtp;

/// <summary>
/// DKIM signing of what smtp sends (dkim(6)): the keys of /mail/lib/dkim for the message's From: domain,
/// the two passes over the body, the log lines. Nothing here ever fails a delivery: a table or key that
/// cannot be used leaves the message unsigned and says so in /sys/log/smtp.
/// </summary>
static class DkimSign
{
	static void Log(string msg) => Syslog.Log("smtp", "dkim: " + msg);

	/// <summary>
	/// Signs conv's message when its From: domain is listed: reads the body once (the second read is Write's) and
	/// sets <see cref="Converter.Signature"/>. Null, or a reason to try again later (the body could be read once
	/// but not kept for the second read: the message is no longer whole on stdin).
	/// </summary>
	public static string? Sign(Converter conv, string? toLine, Action? onChunk)
	{
		var keys = Keys(conv.FromDomain);
		if (keys.Count == 0)
			return null;
		try {
			Stream? spool = null;
			if (!conv.CanRewind) {
				try {
					spool = SecondPass.Spool();
				} catch (IOException e) {
					// nothing read yet: the message can still go, unsigned
					Log($"not signed for {keys[0].Domain}: {e.Message}");
					return null;
				}
			}
			var signer = new DkimSigner(keys, DateTimeOffset.UtcNow);
			signer.Header(conv.Header(toLine));
			try {
				conv.FirstPass(spool, b => signer.Body(b), onChunk);
			} catch (IOException e) {
				spool?.Dispose();
				Log($"not signed for {keys[0].Domain}: {e.Message}");
				return $"cannot read the message twice to sign it: {e.Message}";
			}
			try {
				conv.Signature = signer.Finish();
			} catch (Exception e) when (e is DkimKeyException or CryptographicException) {
				Log($"not signed for {keys[0].Domain}: {e.Message}");	// the body is kept: it goes unsigned
				return null;
			}
			Log("signed " + string.Join(", ", keys.Select((k, i) => $"{(i == 0 ? $"d={k.Domain} " : "")}s={k.Selector} a={DkimNames.Tag(k.Key.Algorithm)}")));
			return null;
		} finally {
			foreach (var k in keys)
				k.Key.Dispose();
		}
	}

	/// <summary>The usable keys for the message's From: domain (at most one per algorithm, in table order); bad lines and keys logged.
	/// The domain is asked for only when there is a table: without one smtp does nothing more than before.</summary>
	static List<DkimSigning> Keys(Func<string?> fromDomain)
	{
		var keys = new List<DkimSigning>();
		string text;
		try {
			text = FileText.Read(Root.Path9(DkimTable.File9));
		} catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
			return keys;	// no table: nothing is signed, as before
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			Log($"cannot read {DkimTable.File9}: {e.Message}");
			return keys;
		}
		var table = DkimTable.Parse(text);
		foreach (var (line, why) in table.Errors)
			Log($"{DkimTable.File9}:{line}: {why}: line ignored");
		if (table.Entries.Count == 0 || fromDomain() is not { } domain)
			return keys;
		var lines = table.For(domain);
		var failed = new List<string>();
		foreach (var e in lines) {
			if (Load(e, out var why) is not { } key) {
				failed.Add($"s={e.Selector} key {e.KeyFile} ({DkimTable.File9}:{e.Line}): {why}");
				continue;
			}
			if (keys.Find(k => k.Key.Algorithm == key.Algorithm) is { } first) {
				Log($"s={e.Selector} of {e.Domain} ({DkimTable.File9}:{e.Line}) not used: a second {DkimNames.Tag(key.Algorithm)} key (s={first.Selector} signs)");
				key.Dispose();
				continue;
			}
			keys.Add(new DkimSigning(e.Domain, e.Selector, key));
		}
		if (failed.Count > 0)
			Log((keys.Count == 0 ? $"not signed for {lines[0].Domain}: " : $"signing for {lines[0].Domain} without ") + string.Join("; ", failed));
		return keys;
	}

	/// <summary>The key of a line, warning when others may read it; null and why when it cannot be used.</summary>
	static DkimKey? Load(DkimEntry e, out string why)
	{
		why = "";
		var path = DkimTable.HostPath(e.KeyFile);
		DkimKey key;
		try {
			key = DkimKey.Load(path);
		} catch (DkimKeyException x) {
			why = x.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? x.Message[(path.Length + 2)..] : x.Message;
			return null;
		} catch (Exception x) when (x is IOException or UnauthorizedAccessException or CryptographicException) {
			why = x.Message;
			return null;
		}
		// a signing key others can read lets them sign as the domain: used, but said
		if (Syscall.stat(path, out var st) == 0 && ((int)st.st_mode & 0x24) != 0)
			Log($"warning: key {e.KeyFile} of {e.Domain} s={e.Selector} is readable by group or others (mode {Convert.ToString((int)st.st_mode & 0xfff, 8).PadLeft(4, '0')}): chmod 600 it");
		return key;
	}
}
