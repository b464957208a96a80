using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using Upas.Dkim;

namespace Upas.Tests;

/// <summary>
/// DKIM against real peers over real DNS: keys served by dnsmasq (long records as several strings, a huge key over
/// TCP, a refusing server) through DnsQuery; opendkim-testmsg verifying our signatures and signing for us.
/// </summary>
public class DkimVerifyInteropTests
{
	/// <summary>A TXT record of any length, as dnsmasq's raw --dns-rr: character-strings of at most 255 bytes.</summary>
	internal static DnsRecord LongTxt(string name, string text) => DnsRecord.RawTxt(name, text);

	static string Huge => "v=DKIM1; k=rsa; p=" + new string('A', 2000) + "AQAB";

	[Test]
	public void KeysFromDnsmasq()
	{
		var rsa = DkimTests.Rsa.Value.DnsRecord();
		Assert.That(rsa.Length, Is.GreaterThan(255), "the 2048-bit key needs several strings");
		using var dns = new Dnsmasq(
			LongTxt("rsa._domainkey.example.com", rsa),
			DnsRecord.Txt("ed._domainkey.example.com", DkimTests.Ed.Value.DnsRecord()),
			LongTxt("big._domainkey.example.com", "v=DKIM1; k=rsa; p=" + BigKey.Value),
			DnsRecord.Broken("broken.test"));
		var q = new DnsQuery([dns.Server]);
		string Sign(string d, string s, DkimKey k) => Encoding.Latin1.GetString(Ours.Sign(DkimTests.Header, DkimTests.Body, DkimTests.Now, new DkimSigning(d, s, k)));
		var msg = Sign("example.com", "rsa", DkimTests.Rsa.Value) + Sign("example.com", "ed", DkimTests.Ed.Value)
			+ Sign("example.com", "big", DkimTests.Rsa.Value) + Sign("broken.test", "x", DkimTests.Ed.Value)
			+ Sign("example.com", "none", DkimTests.Ed.Value);
		// each Sign gave fields + the message: keep the fields of all and one message
		var fields = string.Concat(msg.Split("From: Alice")[..^1].Select(p => p[p.IndexOf("DKIM-Signature:", StringComparison.Ordinal)..]));
		var whole = fields + "From: Alice" + msg.Split("From: Alice")[^1];
		var o = Ours.Verify(Encoding.Latin1.GetBytes(whole), q);
		Assert.That(o.Select(x => $"{x.Selector} {DkimNames.Name(x.Result)} {x.Detail}"), Is.EqualTo(new[] {
			"rsa pass signature verified",
			"ed pass signature verified",
			"big permerror key record: RSA key of 16384 bits (allowed 1024 to 8192)",
			"x temperror key lookup failed (DNS)",
			"none permerror no key",
		}), dns.Log);
	}

	static readonly Lazy<string> BigKey = new(() => {
		var n = System.Security.Cryptography.RandomNumberGenerator.GetBytes(2048);
		n[0] |= 0x80;
		using var r = System.Security.Cryptography.RSA.Create();
		r.ImportParameters(new System.Security.Cryptography.RSAParameters { Modulus = n, Exponent = [1, 0, 1] });
		return Convert.ToBase64String(r.ExportSubjectPublicKeyInfo());
	});

	// ---- opendkim ----

	const string Testmsg = "/usr/sbin/opendkim-testmsg";

	/// <summary>
	/// opendkim-testmsg on the message, verifying; it has no option for test keys and asks the system resolver, so it
	/// runs in its own network and mount namespaces (root) where /etc/resolv.conf names a dnsmasq on 127.0.0.1:53
	/// serving records. Its stderr and exit status ("" and 0 for a good signature).
	/// </summary>
	static (string Err, int Exit) OpendkimVerify(byte[] msg, params DnsRecord[] records)
	{
		if (!File.Exists(Testmsg))
			Assert.Fail($"{Testmsg} is missing: install opendkim-tools (sys/lib/upas/prereq does)");
		var dir = Directory.CreateTempSubdirectory("opendkim").FullName;
		try {
			File.WriteAllText($"{dir}/resolv.conf", "nameserver 127.0.0.1\n");
			File.WriteAllText($"{dir}/run", """
				set -e
				resolv=$1; shift
				ip link set lo up
				mount --bind "$resolv" /etc/resolv.conf
				/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
					--listen-address=127.0.0.1 --port=53 --user="$(id -un)" --pid-file= --local=/example.com/ "$@" </dev/null 2>/dev/null &
				d=$!
				trap 'kill $d; wait $d 2>/dev/null' EXIT
				i=0
				while ! grep -q ':0035 ' /proc/net/udp; do i=$((i+1)); [ $i -lt 200 ] || { echo dnsmasq did not start >&2; exit 99; }; sleep 0.05; done
				set +e
				/usr/sbin/opendkim-testmsg
				echo "exit $?" >&2
				""");
			var psi = new ProcessStartInfo("unshare", ["--mount", "--net", "sh", $"{dir}/run", $"{dir}/resolv.conf", .. records.Select(r => r.Option)]) {
				UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
			};
			var (_, err, exit) = Tree.Exec(psi, msg, 30_000);
			var last = err.TrimEnd('\n').Split('\n')[^1];
			if (exit != 0 || !last.StartsWith("exit ", StringComparison.Ordinal))
				Assert.Fail($"could not run opendkim-testmsg in a namespace (root and unshare needed): {err}");
			return (err[..^(last.Length + 1)].TrimEnd('\n'), int.Parse(last[5..]));
		} finally {
			Directory.Delete(dir, true);
		}
	}

	static DnsRecord[] KeyRecords() => [
		LongTxt("rsa._domainkey.example.com", DkimTests.Rsa.Value.DnsRecord()),
		DnsRecord.Txt("ed._domainkey.example.com", DkimTests.Ed.Value.DnsRecord()),
	];

	[TestCase(DkimAlgorithm.RsaSha256)]
	[TestCase(DkimAlgorithm.Ed25519Sha256)]
	public void OpendkimVerifiesOurs(DkimAlgorithm alg)
	{
		var sel = alg == DkimAlgorithm.RsaSha256 ? "rsa" : "ed";
		var msg = Ours.Sign(DkimTests.Header, DkimTests.Body, DkimTests.Now, new DkimSigning("example.com", sel, DkimTests.Key(alg)));
		Assert.That(OpendkimVerify(msg, KeyRecords()), Is.EqualTo(("", 0)));
		var bad = Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(msg).Replace("Subject: a test", "Subject: a best"));
		Assert.That(OpendkimVerify(bad, KeyRecords()), Is.EqualTo(("opendkim-testmsg: dkim_eom(): Bad signature", 70)));
	}

	[Test]
	public void OpendkimVerifiesBothOfOurSignaturesCrlf()
	{
		var msg = Ours.Sign(DkimTests.Header, DkimTests.Body, DkimTests.Now,
			new DkimSigning("example.com", "ed", DkimTests.Ed.Value), new DkimSigning("example.com", "rsa", DkimTests.Rsa.Value));
		Assert.That(OpendkimVerify(Encoding.Latin1.GetBytes(Tree.Crlf(Encoding.Latin1.GetString(msg))), KeyRecords()), Is.EqualTo(("", 0)));
	}

	/// <summary>Debian 12's opendkim-testmsg signs with rsa-sha1 only (and garbles the end of b=): RFC 8301 says no.</summary>
	[Test]
	public void OpendkimSignsRsaSha1WeRefuse()
	{
		if (!File.Exists(Testmsg))
			Assert.Fail($"{Testmsg} is missing: install opendkim-tools");
		var key = Path.GetTempFileName();
		try {
			File.WriteAllText(key, DkimTests.Rsa.Value.PrivatePem());
			var psi = new ProcessStartInfo(Testmsg, ["-d", "example.com", "-s", "rsa", "-k", key]) {
				UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
			};
			var (o, err, exit) = Tree.Exec(psi, Encoding.Latin1.GetBytes(DkimTests.Header + "\n\n" + DkimTests.Body));
			Assert.That((err, exit), Is.EqualTo(("", 0)));
			var signed = Encoding.Latin1.GetString(o);
			Assert.That(signed, Does.StartWith("DKIM-Signature: v=1; a=rsa-sha1;"));
			var dns = new TableDns().Txt("rsa._domainkey.example.com", DkimTests.Rsa.Value.DnsRecord());
			var r = Ours.Verify(Encoding.Latin1.GetBytes(signed), dns).Single();
			Assert.That((r.Result, r.Detail), Is.EqualTo((DkimResult.PermError, "rsa-sha1 is not accepted (RFC 8301)")));
			Assert.That(dns.Queries, Is.EqualTo(0));
		} finally {
			File.Delete(key);
		}
	}
}
