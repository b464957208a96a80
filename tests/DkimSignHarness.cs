using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// A tree for smtp's signing (dkim(6)): keys made by the real <c>smtp -K</c>, the TXT records it printed (what an
/// administrator publishes), and the message as a verifier sees it.
/// </summary>
sealed class SignTree : IDisposable
{
	public Tree T { get; } = new();
	/// <summary>selector._domainkey.domain → the TXT record's text, its strings joined, from smtp -K's zone line.</summary>
	public Dictionary<string, string> Records { get; } = [];

	public SignTree()
	{
		Smtp.Logs(T);
		Directory.CreateDirectory(T.P("/mail/lib/dkim.d"));
	}

	static readonly Regex Zone = new(@"^(\S+)\. IN TXT \( (.*) \)$");

	/// <summary>Runs smtp -K; the two lines it printed (the table line, the zone line), the record kept.</summary>
	public string[] Key(string alg, string domain, string selector, string keyfile)
	{
		var r = Smtp.Run(T, [], ["-K", alg, domain, selector, keyfile], null);
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")), "smtp -K");
		var lines = r.Out.TrimEnd('\n').Split('\n');
		Assert.That(lines, Has.Length.EqualTo(2), r.Out);
		var m = Zone.Match(lines[1]);
		Assert.That(m.Success, Is.True, lines[1]);
		Records[m.Groups[1].Value] = string.Concat(Regex.Matches(m.Groups[2].Value, "\"([^\"]*)\"").Select(x => x.Groups[1].Value));
		return lines;
	}

	/// <summary>Makes the keys and writes the table: "rsa", "ed25519" or "both" for example.com (selectors r1, e1).</summary>
	public void Keys(string which, string domain = "example.com")
	{
		var table = new StringBuilder();
		if (which is "rsa" or "both")
			table.Append(Key("rsa", domain, "r1", $"/mail/lib/dkim.d/{domain}-r1.pem")[0]).Append('\n');
		if (which is "ed25519" or "both")
			table.Append(Key("ed25519", domain, "e1", $"{domain}-e1.pem")[0]).Append('\n');
		Table(table.ToString());
	}

	public void Table(string text)
	{
		T.Write("/mail/lib/dkim", text);
	}

	/// <summary>The signature lines of /sys/log/smtp (dkim: …).</summary>
	public string[] DkimLog() => T.Log("smtp").Where(l => l.StartsWith("dkim: ", StringComparison.Ordinal)).ToArray();

	public void Dispose() => T.Dispose();

	/// <summary>Smtp with stdin a regular file (as runq gives it), not a pipe.</summary>
	public SmtpRun RunFromFile(string file, params string[] args)
	{
		var psi = Smtp.Start(T, ["-c", "f=$1; shift; exec \"$@\" < \"$f\"", "sh", file, Repo.Bin("smtp"), .. args]);
		psi.FileName = "/bin/sh";
		var (o, e, x) = Tree.Exec(psi, [], 120_000);
		return new SmtpRun(o, e, x);
	}
}

/// <summary>What smtp sent, as the receiver has it: CR LF kept, dot-stuffing undone.</summary>
static class SignWire
{
	public static byte[] Unstuff(byte[] data)
	{
		var m = new MemoryStream(data.Length);
		var bol = true;
		for (var i = 0; i < data.Length; i++) {
			if (bol && data[i] == '.' && i + 1 < data.Length && data[i + 1] == '.')
				i++;
			m.WriteByte(data[i]);
			bol = data[i] == '\n';
		}
		return m.ToArray();
	}

	/// <summary>The header's DKIM-Signature fields, unfolded.</summary>
	public static string[] Signatures(byte[] msg)
	{
		var text = Encoding.Latin1.GetString(msg);
		var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
		var head = (end < 0 ? text : text[..end]).Replace("\r\n ", " ").Replace("\r\n\t", " ");
		return head.Split("\r\n").Where(l => l.StartsWith("DKIM-Signature:", StringComparison.OrdinalIgnoreCase)).ToArray();
	}

	/// <summary>A tag's value of a DKIM-Signature field, blanks removed.</summary>
	public static string Tag(string sig, string tag) =>
		Regex.Match(sig, @"[;:]\s*" + tag + @"=([^;]*)").Groups[1].Value.Replace(" ", "").Replace("\t", "");
}

/// <summary>Debian's dkimpy (python3-dkim, Ed25519 by python3-nacl) verifying every signature of a message against given TXT records.</summary>
static class SignDkimPy
{
	const string Script = """
		import sys, json, re, dkim, dkim.util
		msg = open(sys.argv[1], 'rb').read()
		recs = json.load(open(sys.argv[2]))
		def dns(name, timeout=5):
		    return recs.get(name.decode().rstrip('.'), '').encode() or None
		headers, body = dkim.rfc822_parse(msg)
		sigs = [v for (k, v) in headers if k.lower() == b'dkim-signature']
		for i, v in enumerate(sigs):
		    t = dkim.util.parse_tag_value(re.sub(rb'\s+', b'', v))
		    try:
		        ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dns)
		    except Exception as e:
		        ok = False
		    print('%s d=%s s=%s a=%s' % ('pass' if ok else 'fail', t[b'd'].decode(), t[b's'].decode(), t[b'a'].decode()))
		""";

	/// <summary>One line per signature: "pass d=… s=… a=…" or "fail …".</summary>
	public static string[] Verify(Tree t, byte[] msg, IReadOnlyDictionary<string, string> records)
	{
		if (!File.Exists("/usr/bin/python3"))
			Assert.Fail("needs Debian's /usr/bin/python3 with python3-dkim (sys/lib/upas/prereq)");
		var dir = t.P("/dkimpy");
		Directory.CreateDirectory(dir);
		var n = Directory.GetFiles(dir).Length;
		var (m, r, s) = (Path.Join(dir, $"{n}.msg"), Path.Join(dir, $"{n}.json"), Path.Join(dir, "verify.py"));
		File.WriteAllBytes(m, msg);
		File.WriteAllText(r, JsonSerializer.Serialize(records));
		File.WriteAllText(s, Script);
		var psi = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		foreach (var a in new[] { s, m, r })
			psi.ArgumentList.Add(a);
		var (o, e, x) = Tree.Exec(psi, [], 120_000);
		Assert.That(x, Is.EqualTo(0), "dkimpy: " + e);
		return Encoding.UTF8.GetString(o).Split('\n', StringSplitOptions.RemoveEmptyEntries);
	}
}

/// <summary>
/// OpenDKIM's verifier (opendkim-testmsg, libopendkim 2.11: RSA and Ed25519), which asks DNS through the system's
/// resolver: it runs in its own network and mount namespace (unshare, so root), where dnsmasq on 127.0.0.1:53
/// serves the records and /etc/resolv.conf is a bind mount naming it. Nothing of the host's is touched.
/// </summary>
static class SignOpenDkim
{
	const string Script = """
		ip link set lo up
		dnsmasq --keep-in-foreground --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --conf-file="$2" &
		pid=$!
		echo "nameserver 127.0.0.1" > "$3"
		mount --bind "$3" /etc/resolv.conf
		sleep 0.5	# dnsmasq binds its sockets at once; this is the time to get there
		opendkim-testmsg < "$1"
		x=$?
		kill $pid
		exit $x
		""";

	/// <summary>opendkim-testmsg's exit status (0: a signature verified) and its stderr.</summary>
	public static (int Exit, string Err) Verify(Tree t, byte[] msg, IReadOnlyDictionary<string, string> records)
	{
		if (!File.Exists("/usr/sbin/opendkim-testmsg"))
			Assert.Fail("needs opendkim-tools (sys/lib/upas/prereq)");
		if (Environment.UserName != "root")
			Assert.Ignore("opendkim-testmsg is given its DNS server in a namespace of its own: needs root");
		var dir = t.P("/opendkim");
		Directory.CreateDirectory(dir);
		var n = Directory.GetFiles(dir).Length;
		var (m, c, s) = (Path.Join(dir, $"{n}.msg"), Path.Join(dir, $"{n}.conf"), Path.Join(dir, "verify.sh"));
		File.WriteAllBytes(m, msg);
		var conf = new StringBuilder("local=/example.com/\nlocal=/example.org/\nlocal=/invalid/\n");
		foreach (var (name, text) in records)
			conf.Append($"txt-record={name},").AppendJoin(',', text.Chunk(255).Select(x => "\"" + new string(x) + "\"")).Append('\n');
		File.WriteAllText(c, conf.ToString());
		File.WriteAllText(s, Script);
		var psi = new ProcessStartInfo("/usr/bin/unshare") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
		foreach (var a in new[] { "--mount", "--net", "/bin/sh", s, m, c, Path.Join(dir, $"{n}.resolv") })
			psi.ArgumentList.Add(a);
		var (_, e, x) = Tree.Exec(psi, [], 60_000);
		return (x, e);
	}
}
