using System.Diagnostics;
using System.Net;
using NUnit.Framework;
using Upas.Spf;

namespace Upas.Tests;

/// <summary>
/// check_host() against hostile or broken DNS (dnsmasq on loopback): the work of one check is bounded, it ends
/// within its deadline or on cancellation, it never throws, and what it hands back is printable.
/// </summary>
[TestFixture, NonParallelizable]
public sealed class SpfLimitsTests
{
	static readonly IPAddress Client = IPAddress.Parse("192.0.2.1");
	Dnsmasq dns = null!;

	[OneTimeSetUp]
	public void Start()
	{
		var z = new SpfZone();
		// nine mx terms of ten exchanges each, then a ptr of ten names: the most one record may ask
		z.Txt("wide.test", "v=spf1 " + string.Join(' ', Enumerable.Range(1, 9).Select(i => $"mx:m{i}.wide.test")) + " ptr -all");
		for (var i = 1; i <= 9; i++) {
			for (var j = 0; j < 10; j++) {
				z.Mx($"m{i}.wide.test", j, $"x{i}-{j}.wide.test");
				z.A($"x{i}-{j}.wide.test", "198.51.100.1");
			}
		}
		for (var j = 0; j < 14; j++) {
			z.Ptr("1.2.0.192.in-addr.arpa", $"p{j}.wide.test");
			z.A($"p{j}.wide.test", "198.51.100.2");
		}
		// an include chain longer than the limit
		for (var i = 0; i < 30; i++)
			z.Txt($"l{i}.chain.test", $"v=spf1 include:l{i + 1}.chain.test -all");
		// a record that includes itself, and two that include each other
		z.Txt("self.test", "v=spf1 include:self.test -all");
		z.Txt("ping.test", "v=spf1 include:pong.test -all");
		z.Txt("pong.test", "v=spf1 include:ping.test -all");
		// void lookups
		z.Txt("void.test", "v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ip4:192.0.2.1 -all");
		z.Txt("void2.test", "v=spf1 a:n1.void.test a:n2.void.test ip4:192.0.2.1 -all");
		// a 4000-byte record of 280 ip4 terms, the match at the end
		z.Txt("big.test", "v=spf1 " + string.Join(' ', Enumerable.Range(0, 280).Select(i => $"ip4:198.51.{i / 250}.{i % 250}/32")) + " ip4:192.0.2.1 -all");
		// an explanation quoting the peer's own words
		z.Txt("exp.test", "v=spf1 -all exp=why.exp.test");
		z.Txt("why.exp.test", "%{s} via %{h} is not allowed");
		z.Txt("softexp.test", "v=spf1 ~all exp=why.exp.test");
		// a name nobody answers
		z.Txt("slow.test", "v=spf1 include:x.silent.test -all");
		z.Txt("helo.example.org", "v=spf1 ip4:192.0.2.1 -all");
		z.Txt("mailfrom.example.org", "v=spf1 -all");
		dns = new Dnsmasq([.. z.Records, DnsRecord.Silent("silent.test")]);
	}

	[OneTimeTearDown]
	public void Stop() => dns?.Dispose();

	Counting Dns() => new(new DnsQuery([dns.Server]));

	[Test]
	public async Task TheMostOneRecordMayAskIsBounded()
	{
		var q = Dns();
		var o = await SpfCheck.CheckHostAsync(q, Client, "wide.test", "a@wide.test", "h.test", "r.test", default);
		Assert.That(o.Result, Is.EqualTo(SpfResult.Fail), o.Detail);
		// the TXT, 9 × (MX + 10 A), the PTR and the first 10 of its 14 names
		Assert.That(q.Count, Is.EqualTo(1 + 9 * 11 + 1 + 10));
	}

	[TestCase("l0.chain.test", "more than 10 DNS-querying terms")]
	[TestCase("self.test", "more than 10 DNS-querying terms")]
	[TestCase("ping.test", "more than 10 DNS-querying terms")]
	[TestCase("void.test", "more than 2 void DNS lookups")]
	public async Task LimitsArePermanentErrors(string domain, string detail)
	{
		var q = Dns();
		var o = await SpfCheck.CheckHostAsync(q, Client, domain, "a@" + domain, "h.test", "r.test", default);
		Assert.That(o.Result, Is.EqualTo(SpfResult.PermError));
		Assert.That(o.Detail, Does.StartWith(detail));
		Assert.That(q.Count, Is.LessThanOrEqualTo(11), "stopped at the limit");
	}

	[Test]
	public async Task TwoVoidLookupsAreAllowed() =>
		Assert.That((await SpfCheck.CheckHostAsync(Dns(), Client, "void2.test", "a@void2.test", "h.test", "r.test", default)).Result, Is.EqualTo(SpfResult.Pass));

	[Test]
	public async Task ABigRecordIsRead()
	{
		var o = await SpfCheck.CheckHostAsync(Dns(), Client, "big.test", "a@big.test", "h.test", "r.test", default);
		Assert.That(o.Result, Is.EqualTo(SpfResult.Pass), o.Detail);
		Assert.That(o.Detail, Is.EqualTo("big.test: matched ip4:192.0.2.1"));
	}

	[Test]
	public async Task TheExplanationIsPrintable()
	{
		var o = await SpfCheck.CheckHostAsync(Dns(), Client, "exp.test", "a\r\nb@exp.test", "h\u00e9\0.test", "r.test", default);
		Assert.That(o.Result, Is.EqualTo(SpfResult.Fail));
		Assert.That(o.Explanation, Is.EqualTo("a??b@exp.test via h??.test is not allowed"));
	}

	[Test]
	public async Task TheExplanationIsFetchedOnlyForAFail()
	{
		var q = Dns();
		var soft = await SpfCheck.CheckHostAsync(q, Client, "softexp.test", "a@softexp.test", "h.test", "r.test", default);
		Assert.That((soft.Result, soft.Explanation, q.Count), Is.EqualTo((SpfResult.SoftFail, (string?)null, 1)));
		var q2 = Dns();
		var fail = await SpfCheck.CheckHostAsync(q2, Client, "exp.test", "a@exp.test", "h.test", "r.test", default);
		Assert.That((fail.Result, fail.Explanation, q2.Count), Is.EqualTo((SpfResult.Fail, "a@exp.test via h.test is not allowed", 2)));
	}

	[Test]
	public async Task TheDeadlineEndsACheck()
	{
		var sw = Stopwatch.StartNew();
		var o = await SpfCheck.CheckHostAsync(new DnsQuery([dns.Server]), Client, "slow.test", "a@slow.test", "h.test", "r.test", TimeSpan.FromSeconds(1), default);
		Assert.That(o.Result, Is.EqualTo(SpfResult.TempError));
		Assert.That(o.Detail, Is.EqualTo("no result within 1 s"));
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(4)));
		Assert.That(SpfCheck.Deadline, Is.EqualTo(TimeSpan.FromSeconds(20)), "RFC 7208 §4.6.4's suggestion");
	}

	[Test]
	public async Task CancellationEndsACheck()
	{
		using var cts = new CancellationTokenSource(500);
		var sw = Stopwatch.StartNew();
		var o = await SpfCheck.CheckHostAsync(new DnsQuery([dns.Server]), Client, "slow.test", "a@slow.test", "h.test", "r.test", cts.Token);
		Assert.That(o.Result, Is.EqualTo(SpfResult.TempError));
		Assert.That(o.Detail, Is.EqualTo("cancelled"));
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(4)));
	}

	[Test]
	public async Task AResolverThatThrowsIsATemporaryError()
	{
		var o = await SpfCheck.CheckHostAsync(new Throwing(), Client, "example.org", "a@example.org", "h.test", "r.test", default);
		Assert.That(o.Result, Is.EqualTo(SpfResult.TempError));
		Assert.That(o.Detail, Is.EqualTo("DNS error: IOException: boom\\x0aline two"));
	}

	[Test]
	public async Task MailFromOrHelo()
	{
		var q = Dns();
		var empty = await SpfCheck.MailFromAsync(q, Client, "", "helo.example.org", "r.test", default);
		Assert.That((empty.Result, empty.Domain), Is.EqualTo((SpfResult.Pass, "helo.example.org")), "MAIL FROM:<>: the HELO name's policy");
		var given = await SpfCheck.MailFromAsync(q, Client, "someone@mailfrom.example.org", "helo.example.org", "r.test", default);
		Assert.That((given.Result, given.Domain), Is.EqualTo((SpfResult.Fail, "mailfrom.example.org")));
	}

	[Test]
	public void ResultNames() =>
		Assert.That(Enum.GetValues<SpfResult>().Select(SpfNames.Name),
			Is.EqualTo(new[] { "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" }));

	/// <summary>Counts the questions a check asks.</summary>
	sealed class Counting(IDnsQuery inner) : IDnsQuery
	{
		int count;
		public int Count => count;
		public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct) { Interlocked.Increment(ref count); return inner.TxtAsync(name, ct); }
		public Task<DnsAnswer<IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct) { Interlocked.Increment(ref count); return inner.AddressAsync(name, ipv6, ct); }
		public Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct) { Interlocked.Increment(ref count); return inner.MxAsync(name, ct); }
		public Task<DnsAnswer<string>> PtrAsync(IPAddress ip, CancellationToken ct) { Interlocked.Increment(ref count); return inner.PtrAsync(ip, ct); }
	}

	/// <summary>A broken IDnsQuery (ours never throws; another might).</summary>
	sealed class Throwing : IDnsQuery
	{
		public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken ct) => throw new IOException("boom\nline two");
		public Task<DnsAnswer<IPAddress>> AddressAsync(string name, bool ipv6, CancellationToken ct) => throw new IOException("boom");
		public Task<DnsAnswer<string>> MxAsync(string name, CancellationToken ct) => throw new IOException("boom");
		public Task<DnsAnswer<string>> PtrAsync(IPAddress ip, CancellationToken ct) => throw new IOException("boom");
	}
}
