using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using Upas.Dkim;

namespace Upas.Tests;

/// <summary>An IDnsQuery answering TXT questions from a table (names without the final dot); others NXDOMAIN.</summary>
sealed class TableDns : IDnsQuery
{
	readonly Dictionary<string, DnsAnswer<string>> txt = new(StringComparer.OrdinalIgnoreCase);
	readonly List<string> asked = [];

	/// <summary>The TXT names asked, in order (the verifier asks its keys at once: kept under a lock).</summary>
	public IReadOnlyList<string> Asked {
		get {
			lock (asked)
				return asked.ToArray();
		}
	}

	public int Queries => Asked.Count;

	/// <summary>A table of TXT records; the names in broken answer TempError.</summary>
	public static TableDns From(Dictionary<string, string[]> zone, params string[] broken)
	{
		var d = new TableDns();
		foreach (var (name, records) in zone)
			d.Txt(name, records);
		foreach (var name in broken)
			d.Status(name, DnsStatus.TempError);
		return d;
	}

	public TableDns Txt(string name, params string[] records)
	{
		txt[name] = new DnsAnswer<string>(DnsStatus.Ok, records);
		return this;
	}

	public TableDns Status(string name, DnsStatus s)
	{
		txt[name] = new DnsAnswer<string>(s, []);
		return this;
	}

	public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct)
	{
		lock (asked)
			asked.Add(name);
		return Task.FromResult(txt.TryGetValue(name, out var a) ? a : new DnsAnswer<string>(DnsStatus.NxDomain, []));
	}

	public Task<DnsAnswer<System.Net.IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct) =>
		Task.FromResult(new DnsAnswer<System.Net.IPAddress>(DnsStatus.NxDomain, []));

	public Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct) => Task.FromResult(new DnsAnswer<string>(DnsStatus.NxDomain, []));

	public Task<DnsAnswer<string>> PtrAsync(System.Net.IPAddress ip, CancellationToken ct) => Task.FromResult(new DnsAnswer<string>(DnsStatus.NxDomain, []));
}

/// <summary>How dkimpy is to sign: c= as "header/body", l= or not, h= (null: dkimpy's default set).</summary>
sealed record PySig(string Domain, string Selector, DkimKey Key, string Canon = "relaxed/relaxed", bool Length = false, string[]? Headers = null, string? Identity = null);

/// <summary>Debian's dkimpy (python3-dkim, /usr/bin/python3) signing and verifying, keys handed over in its own formats.</summary>
static class DkimPy
{
	const string Python = "/usr/bin/python3";

	const string Script = """
		import sys, json, base64, dkim
		mode, opts = sys.argv[1], json.loads(sys.argv[2])
		msg = sys.stdin.buffer.read()
		if mode == "verify":
			recs = {k.lower(): v.encode("latin-1") for k, v in opts["records"].items()}
			def dns(name, timeout=5):
				n = name.decode() if isinstance(name, bytes) else name
				return recs.get(n.rstrip(".").lower())
			d = dkim.DKIM(msg)
			n = len([1 for k, v in d.headers if k.lower() == b"dkim-signature"])
			for i in range(n):
				try:
					print("pass" if dkim.DKIM(msg).verify(idx=i, dnsfunc=dns) else "fail")
				except dkim.ValidationError:
					print("fail")	# what dkim.verify() reports as False
				except Exception as e:
					print("error", type(e).__name__, e)
		else:
			out = b""
			for s in opts["sigs"]:
				hs = [h.encode() for h in s["headers"]] if s["headers"] else None
				ch, cb = s["canon"].split("/")
				out += dkim.sign(msg, s["selector"].encode(), s["domain"].encode(), s["key"].encode(),
					canonicalize=(ch.encode(), cb.encode()), signature_algorithm=s["alg"].encode(),
					include_headers=hs, length=s["length"], linesep=b"\r\n",
					identity=s["identity"].encode() if s["identity"] else None)
			sys.stdout.buffer.write(out)
		""";

	static readonly Lazy<string> scriptFile = new(() => {
		var f = Path.Combine(Path.GetTempPath(), $"upas-dkimpy-{Environment.ProcessId}.py");
		File.WriteAllText(f, Script);
		return f;
	});

	static byte[] Run(string mode, JsonObject opts, byte[] input)
	{
		if (!File.Exists(Python))
			Assert.Fail($"{Python} is missing: run sys/lib/upas/prereq");
		var psi = new ProcessStartInfo(Python) {
			UseShellExecute = false,
			RedirectStandardInput = true,
			RedirectStandardOutput = true,
			RedirectStandardError = true,
		};
		psi.ArgumentList.Add(scriptFile.Value);
		psi.ArgumentList.Add(mode);
		psi.ArgumentList.Add(opts.ToJsonString());
		var (o, err, exit) = Tree.Exec(psi, input);
		Assert.That(exit, Is.EqualTo(0), $"dkimpy {mode} failed: {err}");
		return o;
	}

	/// <summary>dkimpy's verdict on each signature, top first: "pass", "fail" or "error Type text".</summary>
	public static string[] Verify(byte[] msg, IReadOnlyDictionary<string, string> records)
	{
		var recs = new JsonObject();
		foreach (var (k, v) in records)
			recs[k] = v;
		var o = Run("verify", new JsonObject { ["records"] = recs }, msg);
		return Encoding.UTF8.GetString(o).Split('\n', StringSplitOptions.RemoveEmptyEntries);
	}

	/// <summary>The DKIM-Signature fields dkimpy makes for msg (CR LF line ends), one per sig, to put before it.</summary>
	public static byte[] Sign(byte[] msg, params PySig[] sigs)
	{
		var arr = new JsonArray();
		foreach (var s in sigs) {
			var key = s.Key.Algorithm == DkimAlgorithm.RsaSha256 ? s.Key.Rsa!.ExportRSAPrivateKeyPem() : Convert.ToBase64String(s.Key.Seed!);
			var hs = s.Headers is null ? null : new JsonArray(s.Headers.Select(h => (JsonNode)JsonValue.Create(h)!).ToArray());
			arr.Add(new JsonObject {
				["domain"] = s.Domain, ["selector"] = s.Selector, ["key"] = key, ["canon"] = s.Canon,
				["alg"] = DkimNames.Tag(s.Key.Algorithm), ["length"] = s.Length, ["headers"] = hs, ["identity"] = s.Identity,
			});
		}
		return Run("sign", new JsonObject { ["sigs"] = arr }, msg);
	}
}

/// <summary>Our verifier over a message in chunks of a given size (0: all at once), with a table of keys.</summary>
static class Ours
{
	public static IReadOnlyList<DkimOutcome> Verify(byte[] msg, IDnsQuery dns, int chunk = 0, DateTimeOffset? now = null, int max = 8)
	{
		var v = new DkimVerifier(max) { Now = now ?? DateTimeOffset.UtcNow };
		if (chunk <= 0)
			v.Feed(msg);
		else
			for (var i = 0; i < msg.Length; i += chunk)
				v.Feed(msg.AsSpan(i, Math.Min(chunk, msg.Length - i)));
		return v.FinishAsync(dns, CancellationToken.None).GetAwaiter().GetResult();
	}

	/// <summary>A message signed by our signer: the signature fields, then header and body as given.</summary>
	public static byte[] Sign(string header, string body, DateTimeOffset now, params DkimSigning[] keys)
	{
		if (!header.EndsWith('\n'))
			header += "\n";
		var s = new DkimSigner(keys, now);
		s.Header(Encoding.Latin1.GetBytes(header));
		s.Body(Encoding.Latin1.GetBytes(body));
		return Encoding.Latin1.GetBytes(s.Finish() + header + "\n" + body);
	}
}
