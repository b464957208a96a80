using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using Upas.Spf;

namespace Upas.Tests;

/// <summary>
/// Agreement with Debian's pyspf (python3-spf, strict mode): a few hundred generated policies and zones
/// (SpfGenerator, fixed seed), served by dnsmasq on loopback, evaluated by pyspf (its dnspython pointed at that
/// dnsmasq) and by SpfCheck; the results must be equal, and for a fail the explanation too.
/// Where RFC 7208 leaves room or pyspf departs from it, we follow the RFC and the generator keeps clear:
/// pyspf counts redirect= against the 10-lookup limit when it parses the record, not when it follows it;
/// it makes a DNS failure in ptr's lookups a temperror (§5.5: no match); it joins %{d-}'s parts with "-"
/// (§7.3: with "."); it counts %{p}'s look-ups as void lookups; it refuses a record with include: of its own
/// domain even when an earlier term matches (we evaluate it, and the lookup limit ends a real loop).
/// </summary>
[TestFixture, NonParallelizable]
public sealed class SpfAgreementTests
{
	const int Cases = 600;
	const int PerServer = 100;
	const string Receiver = "receiver.example";
	const string PyspfDefaultFail = "SPF fail - not authorized";

	[Test]
	public async Task SameResultsAsPyspf()
	{
		var gen = new SpfGenerator(7208);
		var results = new Dictionary<string, int>();
		var differ = new List<string>();
		var agreed = 0;
		var explained = 0;
		for (var first = 0; first < Cases; first += PerServer) {
			var zone = new SpfZone();
			var cases = Enumerable.Range(first, PerServer).Select(i => gen.Make(i, zone)).ToList();
			using var dns = new Dnsmasq(zone.Records);
			var theirs = Pyspf(dns.Port, cases);
			var q = new DnsQuery([dns.Server]);
			foreach (var c in cases) {
				var o = await SpfCheck.CheckHostAsync(q, IPAddress.Parse(c.Ip), c.Domain, c.Sender, c.Helo, Receiver, CancellationToken.None);
				var ours = SpfNames.Name(o.Result);
				var (result, explanation) = theirs[c.Id];
				results[ours] = results.GetValueOrDefault(ours) + 1;
				var same = ours == result && (o.Result != SpfResult.Fail || (o.Explanation ?? PyspfDefaultFail) == explanation);
				if (same) {
					agreed++;
					if (o.Explanation is not null)
						explained++;
				} else {
					differ.Add($"case {c.Id} ip {c.Ip} sender {c.Sender} helo {c.Helo}: ours {ours} \"{o.Explanation}\" ({o.Detail}), pyspf {result} \"{explanation}\"\n{c.Policy}\n"
						+ string.Join("\n", zone.Records.Select(r => r.Option).Where(r => r.Contains(c.Domain) || r.Contains(DnsQuery.ReverseName(IPAddress.Parse(c.Ip))))));
				}
			}
		}
		TestContext.Out.WriteLine($"agreed with pyspf: {agreed} of {Cases} ({explained} fails with an exp= explanation); results: {string.Join(", ", results.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}"))}");
		Assert.That(differ, Is.Empty, string.Join("\n\n", differ.Take(15)));
		// a generator that made only one kind of case would agree trivially
		foreach (var r in new[] { "pass", "fail", "softfail", "neutral", "none", "permerror", "temperror" })
			Assert.That(results.GetValueOrDefault(r), Is.GreaterThanOrEqualTo(5), $"too few {r} results");
		Assert.That(explained, Is.GreaterThanOrEqualTo(5), "too few explanations compared");
	}

	/// <summary>pyspf's (result, explanation) per case id, by tests/data/pyspf-check.py under Debian's python3.</summary>
	static Dictionary<int, (string, string)> Pyspf(int port, List<SpfGenerator.Case> cases)
	{
		const string python = "/usr/bin/python3";
		var script = Path.Combine(Repo.Dir, "tests", "data", "pyspf-check.py");
		var psi = new ProcessStartInfo(python) {
			RedirectStandardInput = true,
			RedirectStandardOutput = true,
			RedirectStandardError = true,
			StandardInputEncoding = new UTF8Encoding(false),
		};
		psi.ArgumentList.Add(script);
		psi.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
		using var p = Process.Start(psi)!;
		var err = p.StandardError.ReadToEndAsync();
		var output = p.StandardOutput.ReadToEndAsync();
		foreach (var c in cases)
			p.StandardInput.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = c.Id, ["ip"] = c.Ip, ["sender"] = c.Sender, ["helo"] = c.Helo, ["receiver"] = Receiver }, SpfJson.Default.DictionaryStringObject));
		p.StandardInput.Close();
		if (!p.WaitForExit(120_000)) {
			p.Kill(true);
			Assert.Fail("pyspf did not finish within 120 s");
		}
		Assert.That(p.ExitCode, Is.Zero, $"pyspf-check.py: {err.Result}");
		var map = new Dictionary<int, (string, string)>();
		foreach (var line in output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries)) {
			using var j = JsonDocument.Parse(line);
			var r = j.RootElement;
			map[r.GetProperty("id").GetInt32()] = (r.GetProperty("result").GetString()!, r.GetProperty("explanation").GetString() ?? "");
		}
		Assert.That(map, Has.Count.EqualTo(cases.Count), "pyspf answered every case");
		return map;
	}
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
sealed partial class SpfJson : System.Text.Json.Serialization.JsonSerializerContext;
