using System.Diagnostics;
using System.Net;
using System.Text.Json;
using NUnit.Framework;
using Upas.Spf;

namespace Upas.Tests;

/// <summary>
/// The RFC 7208 test suite (openspf.org, release 2014.04, as Debian's python3-spf ships it; copied to
/// tests/data/rfc7208-tests.yml.gz). Each scenario's zone is served by its own dnsmasq on loopback, each case
/// runs through SpfCheck.CheckHostAsync with a DnsQuery on it, and its result must be one the case allows
/// (and its explanation, when it gives one; "DEFAULT" means none of the record's own).
/// The YAML is read with Debian's python3-yaml (/usr/bin/python3) into JSON.
/// Skipped: none. (The suite's "TIMEOUT" names are served as REFUSED: both are a temperror, and REFUSED is at once.)
/// </summary>
[TestFixture, NonParallelizable]
public sealed class SpfRfcSuiteTests
{
	static readonly string Suite = Path.Combine(Repo.Dir, "tests", "data", "rfc7208-tests.yml.gz");

	sealed record Case(int Scenario, string Section, string Name, string Host, string Helo, string MailFrom, string[] Results, string? Explanation);

	static readonly Lazy<(List<Case> Cases, List<SpfZone> Zones)> suite = new(Load);
	static readonly Dictionary<int, Dnsmasq> servers = [];

	public static IEnumerable<TestCaseData> Cases() =>
		suite.Value.Cases.Select(c => new TestCaseData(c.Scenario, c.Name).SetName($"Rfc7208({c.Section}: {c.Name})"));

	[OneTimeTearDown]
	public void StopServers()
	{
		foreach (var s in servers.Values)
			s.Dispose();
		servers.Clear();
	}

	[Test]
	public void TheWholeSuiteIsRun()
	{
		// 203 cases in 16 scenarios in release 2014.04; a loader that loses some would pass every case it kept
		Assert.That(suite.Value.Cases, Has.Count.EqualTo(203));
		Assert.That(suite.Value.Zones, Has.Count.EqualTo(16));
	}

	[TestCaseSource(nameof(Cases))]
	public async Task Rfc7208(int scenario, string name)
	{
		var c = suite.Value.Cases.Single(x => x.Scenario == scenario && x.Name == name);
		if (!servers.TryGetValue(scenario, out var dns))
			servers[scenario] = dns = new Dnsmasq(suite.Value.Zones[scenario].Records);
		var (sender, domain) = SpfCheck.Sender(c.MailFrom, c.Helo);
		var o = await SpfCheck.CheckHostAsync(new DnsQuery([dns.Server]), IPAddress.Parse(c.Host), domain, sender, c.Helo, "receiver.example", CancellationToken.None);
		Assert.That(SpfNames.Name(o.Result), Is.AnyOf(c.Results), $"{c.Name}: {o.Detail}");
		if (c.Explanation is not null && o.Result == SpfResult.Fail)
			Assert.That(o.Explanation, Is.EqualTo(c.Explanation == "DEFAULT" ? null : c.Explanation), c.Name);
	}

	static (List<Case>, List<SpfZone>) Load()
	{
		using var doc = JsonDocument.Parse(YamlToJson(Suite));
		var cases = new List<Case>();
		var zones = new List<SpfZone>();
		foreach (var scenario in doc.RootElement.EnumerateArray()) {
			var n = zones.Count;
			var section = scenario.GetProperty("description").GetString()!;
			zones.Add(Zone(scenario.GetProperty("zonedata")));
			foreach (var t in scenario.GetProperty("tests").EnumerateObject()) {
				var v = t.Value;
				var result = v.GetProperty("result");
				string[] results = result.ValueKind == JsonValueKind.Array ? [.. result.EnumerateArray().Select(r => r.GetString()!)] : [result.GetString()!];
				cases.Add(new Case(n, section, t.Name, v.GetProperty("host").GetString()!, v.GetProperty("helo").GetString()!,
					v.GetProperty("mailfrom").GetString()!, results,
					v.TryGetProperty("explanation", out var e) ? e.GetString() : null));
			}
		}
		return (cases, zones);
	}

	/// <summary>
	/// A scenario's zone: SPF records are served as TXT when the name has no TXT of its own (the suite's rule;
	/// "TXT: NONE" says it has none), TIMEOUT as REFUSED.
	/// </summary>
	static SpfZone Zone(JsonElement zonedata)
	{
		var z = new SpfZone();
		foreach (var name in zonedata.EnumerateObject()) {
			var entries = name.Value.EnumerateArray().ToList();
			var hasTxt = entries.Any(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("TXT", out _));
			foreach (var e in entries) {
				if (e.ValueKind == JsonValueKind.String) {
					Assert.That(e.GetString(), Is.EqualTo("TIMEOUT"));
					z.Timeout(name.Name);
					continue;
				}
				var rr = e.EnumerateObject().Single();
				var val = rr.Value;
				switch (rr.Name) {
				case "SPF" when !hasTxt:
				case "TXT":
					if (val.ValueKind == JsonValueKind.String && val.GetString() == "NONE")
						break;
					z.Txt(name.Name, val.ValueKind == JsonValueKind.Array ? [.. val.EnumerateArray().Select(s => s.GetString()!)] : [val.GetString()!]);
					break;
				case "SPF":
					break;	// type 99 is not looked up (RFC 7208 §3.1)
				case "A":
					z.A(name.Name, val.GetString()!);
					break;
				case "AAAA":
					z.Aaaa(name.Name, val.GetString()!);
					break;
				case "MX":
					z.Mx(name.Name, val[0].GetInt32(), val[1].GetString()!);
					break;
				case "PTR":
					z.Ptr(name.Name, val.GetString()!);
					break;
				case "CNAME":
					z.Cname(name.Name, val.GetString()!);
					break;
				default:
					Assert.Fail($"record type {rr.Name} in the suite");
					break;
				}
			}
		}
		return z;
	}

	/// <summary>The documents of a gzipped YAML file as one JSON array, by Debian's python3 and its yaml module.</summary>
	internal static string YamlToJson(string path)
	{
		const string python = "/usr/bin/python3";
		if (!File.Exists(python))
			Assert.Fail($"{python} is missing (Debian's python3; sys/lib/upas/prereq installs it)");
		var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
		psi.ArgumentList.Add("-c");
		psi.ArgumentList.Add("import gzip, json, sys, yaml; json.dump(list(yaml.safe_load_all(gzip.open(sys.argv[1], 'rt', encoding='utf-8'))), sys.stdout)");
		psi.ArgumentList.Add(path);
		using var p = Process.Start(psi)!;
		var err = p.StandardError.ReadToEndAsync();
		var json = p.StandardOutput.ReadToEnd();
		p.WaitForExit();
		if (p.ExitCode != 0)
			Assert.Fail($"reading {path} with python3-yaml failed: {err.Result}");
		return json;
	}
}
