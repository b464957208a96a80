using System.Text;
using Mono.Unix.Native;
using Upas.Dkim;

namespace Upas.Smtp;

/// <summary>
/// smtp -K rsa|ed25519 domain selector keyfile (dkim(6)): makes a signing key (RSA of 2048 bits, or Ed25519),
/// writes it to keyfile (a path as in /mail/lib/dkim) as a new file of mode 0600 — never over an existing
/// file, never through a link — and prints the line for /mail/lib/dkim and the TXT record to publish.
/// </summary>
static class DkimKeyGen
{
	public const string Usage = "usage: smtp -K rsa|ed25519 domain selector keyfile";
	const int RsaBits = 2048;
	const int MaxTxtString = 255;	// a DNS character-string

	/// <summary>The run: 0, or 1 with one line on stderr.</summary>
	public static int Run(string alg, string[] args)
	{
		var err = Console.Error;
		DkimAlgorithm? a = alg switch { "rsa" => DkimAlgorithm.RsaSha256, "ed25519" => DkimAlgorithm.Ed25519Sha256, _ => null };
		if (a is null || args.Length != 3) {
			err.WriteLine(Usage);
			return 1;
		}
		var (domain, selector, keyfile) = (args[0].TrimEnd('.').ToLowerInvariant(), args[1].ToLowerInvariant(), args[2]);
		if (!DkimTable.IsName(domain)) {
			err.WriteLine($"smtp: bad domain {EnvAddr.Printable(domain)}");
			return 1;
		}
		if (!DkimTable.IsName(selector)) {
			err.WriteLine($"smtp: bad selector {EnvAddr.Printable(selector)}");
			return 1;
		}
		// the table's line must be one that parses back
		if (keyfile.Length == 0 || keyfile.Any(c => char.IsControl(c) || c is ' ' or '\t' or '#')) {
			err.WriteLine($"smtp: key file name {EnvAddr.Printable(keyfile)}: a blank, # or control character cannot be written in {DkimTable.File9}");
			return 1;
		}
		var path = DkimTable.HostPath(keyfile);
		// O_EXCL refuses any existing name, a symbolic link (even a dangling one) included: nothing is overwritten or followed
		var fd = Syscall.open(path, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, (FilePermissions)0x180);
		if (fd < 0) {
			var e = Stdlib.GetLastError();
			err.WriteLine(e is Errno.EEXIST or Errno.ELOOP
				? $"smtp: {path} exists: not overwritten (remove it first to make a new key)"
				: $"smtp: cannot create {path}: {Stdlib.strerror(e)}");
			return 1;
		}
		string record;
		try {
			using var key = DkimKey.Generate(a.Value, RsaBits);
			record = key.DnsRecord();
			if (Syscall.fchmod(fd, (FilePermissions)0x180) != 0 || !Fd.WriteAll(fd, Encoding.ASCII.GetBytes(key.PrivatePem())) || Syscall.fsync(fd) != 0) {
				var e = Stdlib.GetLastError();
				throw new IOException(Stdlib.strerror(e));
			}
		} catch (Exception e) when (e is IOException or DkimKeyException or System.Security.Cryptography.CryptographicException) {
			Syscall.close(fd);
			Syscall.unlink(path);	// no half-written key is left to be used
			err.WriteLine($"smtp: cannot write {path}: {e.Message}");
			return 1;
		}
		if (Syscall.close(fd) != 0) {
			var e = Stdlib.GetLastError();
			Syscall.unlink(path);
			err.WriteLine($"smtp: cannot write {path}: {Stdlib.strerror(e)}");
			return 1;
		}
		Console.Out.Write($"{domain} {selector} {keyfile}\n{selector}._domainkey.{domain}. IN TXT ( {ZoneStrings(record)} )\n");
		return 0;
	}

	/// <summary>The record as quoted zone-file strings of at most 255 bytes: the tags before p=, then p= cut in pieces.</summary>
	public static string ZoneStrings(string record)
	{
		var parts = new List<string>();
		var p = record.IndexOf("p=", StringComparison.Ordinal);
		if (p > 0)
			parts.Add(record[..p]);
		for (var i = Math.Max(p, 0); i < record.Length; i += MaxTxtString)
			parts.Add(record.Substring(i, Math.Min(MaxTxtString, record.Length - i)));
		return string.Join(' ', parts.Select(s => "\"" + s + "\""));
	}
}
