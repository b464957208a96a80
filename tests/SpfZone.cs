using System.Globalization;
using System.Net;
using System.Text;

namespace Upas.Tests;

/// <summary>
/// Records for the SPF tests' dnsmasq, written as raw RDATA (--dns-rr) so that any TXT bytes, several strings,
/// a null MX or an odd owner name can be served, and no A record makes a PTR behind our back (--host-record
/// does). dnsmasq answers NXDOMAIN, not NODATA, for the other types of such a name: both are "void" to SPF.
/// </summary>
public sealed class SpfZone
{
	readonly List<DnsRecord> records = [new("--local=/#/")];	// every unknown name is NXDOMAIN, none is forwarded
	readonly Dictionary<string, string> cnames = new(StringComparer.OrdinalIgnoreCase);
	readonly HashSet<string> data = new(StringComparer.OrdinalIgnoreCase);
	readonly List<string> timeouts = [];

	public IReadOnlyList<DnsRecord> Records => [.. records, .. CnameRecords(), .. Answered()];

	public SpfZone A(string name, string addr) => Raw(name, 1, Hex(IPAddress.Parse(addr).GetAddressBytes()));

	public SpfZone Aaaa(string name, string addr) => Raw(name, 28, Hex(IPAddress.Parse(addr).GetAddressBytes()));

	public SpfZone Mx(string name, int pref, string exchange) => Raw(name, 15, $"{pref >> 8:x2}{pref & 255:x2}" + Wire(exchange));

	public SpfZone Ptr(string name, string target) => Raw(name, 12, Wire(target));

	/// <summary>A TXT record of the given character-strings, each char one byte (Latin-1); longer ones are cut into 255-byte strings.</summary>
	public SpfZone Txt(string name, params string[] strings)
	{
		var hex = new StringBuilder();
		foreach (var s in strings) {
			var b = Encoding.Latin1.GetBytes(s);
			var i = 0;
			do {
				var n = Math.Min(255, b.Length - i);
				hex.Append($"{n:x2}").Append(Hex(b.AsSpan(i, n)));
				i += n;
			} while (i < b.Length);
		}
		return Raw(name, 16, hex.ToString());
	}

	/// <summary>A CNAME: served by dnsmasq's --cname (it adds the target's records) when the chain ends in data, else raw.</summary>
	public SpfZone Cname(string alias, string target)
	{
		cnames[Bare(alias)] = Bare(target);
		return this;
	}

	/// <summary>A name (and its subdomains without data of their own) whose questions are REFUSED: a temperror.</summary>
	public SpfZone Timeout(string name)
	{
		records.Add(new($"--server=/{Bare(name)}/#"));
		timeouts.Add(Bare(name));
		return this;
	}

	/// <summary>dnsmasq's --server covers subdomains: a name with data under a timed-out one is made local again.</summary>
	IEnumerable<DnsRecord> Answered() =>
		data.Where(n => timeouts.Any(t => n.EndsWith("." + t, StringComparison.OrdinalIgnoreCase)))
			.Select(n => new DnsRecord($"--local=/{n}/"));

	SpfZone Raw(string name, int type, string hex)
	{
		data.Add(Bare(name));
		records.Add(new($"--dns-rr={Bare(name)},{type},{hex}"));
		return this;
	}

	IEnumerable<DnsRecord> CnameRecords()
	{
		foreach (var (alias, target) in cnames) {
			// dnsmasq refuses a --cname whose chain loops or ends nowhere: such a one is served as a bare CNAME RR
			var end = target;
			var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { alias };
			while (cnames.TryGetValue(end, out var next) && seen.Add(end))
				end = next;
			yield return data.Contains(end) && !seen.Contains(end) ? new($"--cname={alias},{target}") : new($"--dns-rr={alias},5,{Wire(target)}");
		}
	}

	static string Bare(string name) => name.EndsWith('.') ? name[..^1] : name;

	/// <summary>A name in DNS wire form, as hex ("" or "." is the root).</summary>
	static string Wire(string name)
	{
		var sb = new StringBuilder();
		foreach (var label in Bare(name).Split('.', StringSplitOptions.RemoveEmptyEntries)) {
			var b = Encoding.Latin1.GetBytes(label);
			sb.Append($"{b.Length:x2}").Append(Hex(b));
		}
		return sb.Append("00").ToString();
	}

	static string Hex(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(b);
}
