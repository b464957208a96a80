namespace Upas.Tests;

/// <summary>
/// Random SPF policies and zones for the agreement test with pyspf: every mechanism, qualifier, modifier, the
/// macro letters s l o d i h v (and c r in explanations), the transformers, the lookup, void, MX and PTR limits,
/// syntax errors, DNS failures. Case k lives under c{k}.agree.test and its client in 10.(k/256).(k%256).0/24 or
/// 2001:db8:k::/48, so that cases served by one dnsmasq do not meet.
/// Left out, where RFC 7208 and pyspf differ on purpose (see SpfAgreementTests): %{p}, %{t}, %{d0}, delimiters
/// other than "." with letters other than l and s, upper-case modifier names, a DNS failure in ptr's lookups,
/// a DNS-querying term after the 10th when the record also has redirect=, a record including itself, names over
/// 253 bytes after expansion.
/// </summary>
sealed class SpfGenerator(int seed)
{
	readonly Random rnd = new(seed);

	public sealed record Case(int Id, string Ip, string Sender, string Helo, string Domain, string Policy);

	// per case
	int k;
	string d = "";
	SpfZone z = null!;
	HashSet<string> made = null!;
	List<string> policy = null!;
	string clientV4 = "", clientI = "", local = "";
	bool v6;

	public Case Make(int id, SpfZone zone)
	{
		k = id;
		z = zone;
		d = $"c{k}.agree.test";
		made = new(StringComparer.OrdinalIgnoreCase);
		policy = [];
		var h = rnd.Next(1, 7);
		clientV4 = V4(h);
		var kind = rnd.Next(20);
		string ip;
		if (kind < 14) {
			ip = clientV4;
			v6 = false;
			clientI = clientV4;
		} else if (kind < 17) {
			ip = V6(h);
			v6 = true;
			clientI = string.Join('.', System.Net.IPAddress.Parse(ip).GetAddressBytes().SelectMany(b => new[] { "0123456789ABCDEF"[b >> 4], "0123456789ABCDEF"[b & 15] }));
		} else {
			ip = "::ffff:" + clientV4;	// an IPv4 client in IPv6 clothing
			v6 = false;
			clientI = clientV4;
		}
		local = Pick("user", "first.last", "a-b", "x+tag", "Mixed.Case");
		Hosts();
		Ptrs(ip);
		var helo = rnd.Next(10) < 8 ? "helo." + d : d;
		if (rnd.Next(2) == 0)
			z.A("helo." + d, Near());
		var sender = local + "@" + d;
		if (rnd.Next(12) == 0) {
			helo = d;
			sender = "postmaster@" + d;	// MAIL FROM:<>: the HELO name's policy
		}
		var top = rnd.Next(50);
		if (top == 0)
			Note(d, "(no TXT)");
		else if (top == 1) {
			z.Timeout(d);
			Note(d, "(REFUSED)");
		} else {
			Record(d, 0);
		}
		return new Case(id, ip, sender, helo, d, string.Join("\n", policy));
	}

	void Note(string name, string text) => policy.Add($"{name}: {text}");

	string V4(int h) => $"10.{k >> 8}.{k & 255}.{h}";

	string V6(int h) => $"2001:db8:{k:x}::{h:x}";

	/// <summary>An address that may be the client's, or one that never is.</summary>
	string Near() => rnd.Next(2) == 0 ? V4(rnd.Next(1, 7)) : $"172.16.{rnd.Next(256)}.{rnd.Next(1, 255)}";

	string Near6() => rnd.Next(2) == 0 ? V6(rnd.Next(1, 7)) : $"2001:db8:ffff::{rnd.Next(1, 999):x}";

	T Pick<T>(params T[] xs) => xs[rnd.Next(xs.Length)];

	void Hosts()
	{
		foreach (var n in new[] { "h1", "h2", "h3", "h4", "" }) {
			var name = n.Length > 0 ? $"{n}.{d}" : d;
			if (rnd.Next(5) == 0)
				continue;	// a name without addresses: a void lookup
			for (var i = rnd.Next(1, 3); i > 0; i--)
				z.A(name, Near());
			if (rnd.Next(2) == 0)
				z.Aaaa(name, Near6());
		}
		foreach (var name in new[] { d, "m1." + d }) {
			var r = rnd.Next(20);
			if (r == 0) {
				for (var i = 0; i < 11; i++)
					z.Mx(name, i, $"h{i % 4 + 1}.{d}");	// one MX too many: a permerror
			} else if (r == 1) {
				z.Mx(name, 0, "");	// a null MX
			} else if (r > 3) {
				for (var i = rnd.Next(1, 4); i > 0; i--)
					z.Mx(name, rnd.Next(50), Pick($"h1.{d}", $"h2.{d}", $"h3.{d}", $"h4.{d}", $"nomx.{d}"));
			}
		}
		// exists targets
		if (rnd.Next(2) == 0)
			z.A($"{clientI}.e.{d}", "127.0.0.2");
		if (rnd.Next(2) == 0)
			z.A($"{local}.u.{d}", "127.0.0.2");
		if (rnd.Next(2) == 0)
			z.A($"{SpfMacroReverse(clientI)}.{(v6 ? "ip6" : "in-addr")}.x.{d}", "127.0.0.2");
		z.Txt("txt." + d, "not an spf record");
	}

	static string SpfMacroReverse(string dotted) => string.Join('.', dotted.Split('.').Reverse());

	void Ptrs(string ip)
	{
		var rev = DnsQuery.ReverseName(System.Net.IPAddress.Parse(ip));
		var r = rnd.Next(20);
		if (r < 8)
			return;
		if (r == 8) {
			for (var i = 1; i <= 12; i++)
				z.Ptr(rev, $"p{i}.{d}");
			z.A($"p12.{d}", clientV4);	// only the 12th validates: beyond the 10 looked at
			return;
		}
		for (var i = rnd.Next(1, 4); i > 0; i--) {
			var name = Pick($"h1.{d}", $"h2.{d}", $"h3.{d}", d, $"v.{d}");
			z.Ptr(rev, name);
		}
		if (rnd.Next(2) == 0) {
			if (v6)
				z.Aaaa($"v.{d}", ip);
			else
				z.A($"v.{d}", clientV4);	// a name that validates
		}
	}

	/// <summary>A policy at name: its terms, maybe an exp=, an ending; sub-policies for include and redirect.</summary>
	void Record(string name, int depth)
	{
		if (!made.Add(name))
			return;
		var terms = new List<string>();
		var special = rnd.Next(40);
		var redirect = false;
		if (special == 0) {
			for (var i = 0; i < rnd.Next(11, 14); i++)
				terms.Add($"a:h{rnd.Next(1, 5)}.{d}");	// over the limit of 10 lookups
		} else if (special == 1) {
			terms.AddRange([$"a:nx1.{d}", $"mx:nx2.{d}", $"exists:nx3.{d}"]);	// 3 void lookups
		} else if (special == 2) {
			terms.Add(Pick("ip4:10.0.0.300", "a:", "mx/33", "bogus", "a:%", "ip6:1::2::3", "exp=x.example exp=y.example", "-all.", "a:foo.123", "include"));
		}
		for (var i = rnd.Next(0, depth == 0 ? 6 : 4); i > 0; i--)
			terms.Add(Term(depth, name));
		var end = rnd.Next(20);
		if (end < 6)
			terms.Add("-all");
		else if (end < 9)
			terms.Add("~all");
		else if (end < 11)
			terms.Add("?all");
		else if (end < 12)
			terms.Add("+all");
		else if (end < 16 && depth < 2) {
			var target = rnd.Next(5) == 0 ? Pick($"nx.{d}", $"txt.{d}", "%{d2}.r.agree.test") : Pick($"r1.{d}", $"r2.{d}");
			terms.Add("redirect=" + target);
			redirect = true;
			if (target.StartsWith('r'))
				Record(target, depth + 1);
		}
		if (redirect && terms.Count(QueriesDns) >= 10)
			terms.RemoveAt(terms.Count - 1);	// pyspf counts redirect= before the mechanisms: keep clear of that difference
		if (depth == 0 && rnd.Next(4) == 0 || depth == 1 && rnd.Next(8) == 0)
			terms.Insert(rnd.Next(terms.Count + 1), "exp=" + Explanation());
		if (rnd.Next(8) == 0)
			terms.Insert(rnd.Next(terms.Count + 1), Pick("foo=bar", "x-y=%{d}", "v.1=%{l}_%{o}", "moo="));
		var text = "v=spf1" + string.Concat(terms.Select(t => (rnd.Next(15) == 0 ? "  " : " ") + t));
		if (rnd.Next(30) == 0)
			text = text.Replace("v=spf1", "V=SPF1");
		var strings = text.Length > 20 && rnd.Next(5) == 0 ? new[] { text[..15], text[15..] } : [text];
		z.Txt(name, strings);
		Note(name, text);
		if (rnd.Next(6) == 0)
			z.Txt(name, "google-site-verification=abc");
		if (rnd.Next(60) == 0) {
			z.Txt(name, "v=spf1 +all");	// two SPF records: a permerror
			Note(name, "v=spf1 +all");
		}
	}

	static bool QueriesDns(string term)
	{
		var t = term.TrimStart('+', '-', '~', '?');
		return t.StartsWith("a:") || t.StartsWith("a/") || t == "a" || t.StartsWith("mx") || t.StartsWith("ptr") || t.StartsWith("exists") || t.StartsWith("include");
	}

	string Term(int depth, string self)
	{
		var q = Pick("", "", "", "+", "-", "~", "?");
		string m;
		switch (rnd.Next(12)) {
		case 0:
			m = $"ip4:{Near()}" + Pick("", "", "/32", "/30", "/24", "/16", "/8", "/0");
			break;
		case 1:
			m = $"ip6:{Near6()}" + Pick("", "/128", "/64", "/48", "/32", "/0");
			break;
		case 2:
		case 3:
			m = "a" + Pick("", $":h{rnd.Next(1, 5)}.{d}", $":nx.{d}", ":%{d}", ":%{h}", ":%{o}") + Cidr();
			break;
		case 4:
			m = "mx" + Pick("", $":m1.{d}", $":nx.{d}", ":%{d}") + Cidr();
			break;
		case 5:
			m = "ptr" + Pick("", $":{d}", $":h1.{d}", ":agree.test", ":%{d}", $":v.{d}");
			break;
		case 6:
		case 7:
			m = "exists:" + Pick($"%{{i}}.e.{d}", $"%{{l}}.u.{d}", $"%{{L}}.u.{d}", $"%{{ir}}.%{{v}}.x.{d}", $"%{{l1r+}}.u.{d}", $"%{{s2}}.e.{d}",
				$"%{{o}}.e.{d}", $"nx.{d}", $"%{{d3r}}.e.{d}", $"%{{lr.}}.u.{d}", $"%{{h}}.e.{d}");
			break;
		case 8:
		case 9:
			if (depth >= 2)
				return Term(depth, self);
			var target = rnd.Next(6) == 0 ? Pick($"nx.{d}", $"txt.{d}", $"t.{d}") : Pick($"i1.{d}", $"i2.{d}");
			if (target == self)
				return Term(depth, self);	// pyspf refuses a record that includes itself even when evaluation never gets there
			if (target.StartsWith('i'))
				Record(target, depth + 1);
			else if (target.StartsWith("t.") && made.Add(target))
				z.Timeout(target);
			m = "include:" + target;
			break;
		case 10:
			if (rnd.Next(4) != 0)
				return Term(depth, self);
			m = $"a:t2.{d}";
			if (made.Add("t2"))
				z.Timeout($"t2.{d}");	// a DNS failure: temperror
			break;
		default:
			m = Pick("all", $"a:h1.{d}/24", $"mx:m1.{d}//64", $"ip4:{V4(rnd.Next(1, 7))}");
			break;
		}
		return q + m;
	}

	string Cidr() => Pick("", "", "", "/24", "/30", "//64", "/16//48", "/0", "//0");

	string Explanation()
	{
		var name = $"e{rnd.Next(1, 4)}.{d}";
		if (!made.Add(name))
			return name;
		switch (rnd.Next(8)) {
		case 0:
			break;	// no TXT: no explanation
		case 1:
			z.Txt(name, "one");
			z.Txt(name, "two");	// two: no explanation
			break;
		case 2:
			z.Txt(name, "bad %{x} macro");
			break;
		default:
			z.Txt(name, Pick("Not allowed: %{s} from %{c} via %{h}", "%{l} at %{o} (%{d}) %{i} %{v} r=%{r}",
				"See http://x.example/?s=%{S}&l=%{L}", "%{ir}.%{v} %{d2} %{l-}", "plain text.", "100%% %_ sure%-"));
			break;
		}
		return name;
	}
}
