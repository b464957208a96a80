using System.Diagnostics;
using System.Net;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>DnsQuery (lib/dnsquery.cs) against a dnsmasq on loopback: how each kind of answer is reported.</summary>
[TestFixture, NonParallelizable]
public sealed class SpfDnsQueryTests
{
	Dnsmasq dns = null!, other = null!;
	DnsQuery q = null!;

	[OneTimeSetUp]
	public void Start()
	{
		var z = new SpfZone()
			.Txt("split.test", "v=spf1 ip4:", "192.0.2.5 -all")
			.Txt("odd.test", "a,b\"c\\d\0e\u00ff;f", "")
			.Txt("two.test", "one")
			.Txt("two.test", "two")
			.Txt("long.test", new string('x', 1000), new string('y', 1000), new string('z', 1000))
			.A("many.test", "192.0.2.1")
			.Mx("mx.test", 10, "mail.mx.test")
			.Mx("nullmx.test", 0, "")
			.Ptr("5.2.0.192.in-addr.arpa", "host.test")
			.Ptr("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "six.test")
			.Aaaa("six.test", "2001:db8::1")
			.A("target.test", "192.0.2.7")
			.Cname("alias.test", "target.test")
			.Timeout("refused.test")
			.A("dup.test", "192.0.2.8").A("dup.test", "192.0.2.8")
			.Mx("dupmx.test", 10, "mx.test").Mx("dupmx.test", 20, "mx.test").Mx("dupmx.test", 10, "mx.test");
		for (var i = 2; i < 160; i++)
			z.A("many.test", $"192.0.2.{i}");
		// a second server for other.test, so that a CNAME's target is not resolved into the first's answer
		other = new Dnsmasq([.. new SpfZone().A("far.other.test", "192.0.2.10").Records, new DnsRecord("--cname=back.other.test,loop.test")]);
		dns = new Dnsmasq([.. z.Records,
			new DnsRecord("--cname=near.test,far.other.test"),
			new DnsRecord("--cname=loop.test,back.other.test"),
			new DnsRecord($"--server=/other.test/127.0.0.1#{other.Port}"), DnsRecord.A("nodata.test", "192.0.2.9"), DnsRecord.Silent("silent.test"),
			new DnsRecord("--dns-rr=bad.test,16,0a61")]);	// a character-string longer than its RDATA
		q = new DnsQuery([dns.Server]);
	}

	[OneTimeTearDown]
	public void Stop()
	{
		dns?.Dispose();
		other?.Dispose();
	}

	[Test]
	public async Task NxDomainNoDataAndRefusedAreTold()
	{
		Assert.That((await q.TxtAsync("nosuch.test", default)).Status, Is.EqualTo(DnsStatus.NxDomain));
		Assert.That((await q.TxtAsync("nodata.test", default)).Status, Is.EqualTo(DnsStatus.NoData), "a name with only an A");
		Assert.That((await q.AddressAsync("nodata.test", true, default)).Status, Is.EqualTo(DnsStatus.NoData));
		Assert.That((await q.TxtAsync("refused.test", default)).Status, Is.EqualTo(DnsStatus.TempError), "REFUSED");
		Assert.That((await q.AddressAsync("x.refused.test", false, default)).Status, Is.EqualTo(DnsStatus.TempError));
	}

	[Test]
	public async Task TxtStringsAreConcatenatedAndBytesKept()
	{
		var a = await q.TxtAsync("split.test", default);
		Assert.That(a.Status, Is.EqualTo(DnsStatus.Ok));
		Assert.That(a.Records, Is.EqualTo(new[] { "v=spf1 ip4:192.0.2.5 -all" }));
		Assert.That((await q.TxtAsync("odd.test", default)).Records, Is.EqualTo(new[] { "a,b\"c\\d\0e\u00ff;f" }), "each byte one Latin-1 char");
		Assert.That((await q.TxtAsync("two.test", default)).Records, Is.EquivalentTo(new[] { "one", "two" }), "one string per RR");
		var big = await q.TxtAsync("long.test", default);	// 3000 bytes: truncated over UDP, asked again over TCP
		Assert.That(big.Records.Single(), Is.EqualTo(new string('x', 1000) + new string('y', 1000) + new string('z', 1000)));
	}

	[Test]
	public async Task AnAnswerThatCannotBeParsedIsATemporaryFailure() =>
		Assert.That((await q.TxtAsync("bad.test", default)).Status, Is.EqualTo(DnsStatus.TempError));

	[Test]
	public async Task AddressesMxAndPtr()
	{
		Assert.That((await q.AddressAsync("target.test", false, default)).Records, Is.EqualTo(new[] { IPAddress.Parse("192.0.2.7") }));
		Assert.That((await q.AddressAsync("six.test", true, default)).Records, Is.EqualTo(new[] { IPAddress.Parse("2001:db8::1") }));
		Assert.That((await q.MxAsync("mx.test", default)).Records, Is.EqualTo(new[] { "mail.mx.test" }));
		Assert.That((await q.MxAsync("nullmx.test", default)).Records, Is.EqualTo(new[] { "" }), "a null MX names the root");
		Assert.That((await q.PtrAsync(IPAddress.Parse("192.0.2.5"), default)).Records, Is.EqualTo(new[] { "host.test" }));
		Assert.That((await q.PtrAsync(IPAddress.Parse("::ffff:192.0.2.5"), default)).Records, Is.EqualTo(new[] { "host.test" }), "IPv4-mapped");
		Assert.That((await q.PtrAsync(IPAddress.Parse("2001:db8::1"), default)).Records, Is.EqualTo(new[] { "six.test" }));
		Assert.That((await q.PtrAsync(IPAddress.Parse("192.0.2.6"), default)).Status, Is.EqualTo(DnsStatus.NxDomain));
	}

	[Test]
	public async Task ARepeatedRecordIsKeptOnce()
	{
		Assert.That((await q.AddressAsync("dup.test", false, default)).Records, Is.EqualTo(new[] { IPAddress.Parse("192.0.2.8") }));
		Assert.That((await q.MxAsync("dupmx.test", default)).Records, Is.EqualTo(new[] { "mx.test", "mx.test" }), "two preferences: two records");
	}

	[Test]
	public async Task CnamesAreFollowed()
	{
		var a = await q.AddressAsync("alias.test", false, default);
		Assert.That(a.Status, Is.EqualTo(DnsStatus.Ok));
		Assert.That(a.Records, Is.EqualTo(new[] { IPAddress.Parse("192.0.2.7") }));
	}

	[Test]
	public async Task ACnameTargetLeftUnresolvedIsAskedFor()
	{
		var a = await q.AddressAsync("near.test", false, default);
		Assert.That(a.Records, Is.EqualTo(new[] { IPAddress.Parse("192.0.2.10") }));
		Wait.Until(() => other.Log.Contains("query[A] far.other.test"), () => other.Log, TimeSpan.FromSeconds(5));
	}

	[Test]
	public async Task ACnameLoopHasNoData()
	{
		Assert.That((await q.AddressAsync("loop.test", false, default)).Status, Is.EqualTo(DnsStatus.NoData));
		Wait.Until(() => other.Log.Contains("query[A] back.other.test"), () => "the loop went through the other server: " + other.Log, TimeSpan.FromSeconds(5));
	}

	[Test]
	public async Task OneAnswerIsBounded()
	{
		var a = await q.AddressAsync("many.test", false, default);	// 159 A records, over TCP
		Assert.That(a.Status, Is.EqualTo(DnsStatus.Ok));
		Assert.That(a.Records, Has.Count.EqualTo(DnsQuery.MaxRecords));
	}

	[Test]
	public async Task NamesThatCannotBeAskedAreNonExistent()
	{
		Assert.That((await q.AddressAsync("a..test", false, default)).Status, Is.EqualTo(DnsStatus.NxDomain));
		Assert.That((await q.AddressAsync(new string('a', 64) + ".test", false, default)).Status, Is.EqualTo(DnsStatus.NxDomain));
		Assert.That((await q.AddressAsync("caf\u00e9.test", false, default)).Status, Is.EqualTo(DnsStatus.NxDomain));
		Assert.That(dns.Log, Does.Not.Contain("a..test").And.Not.Contain("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "not asked");
	}

	[Test]
	public async Task AnUnansweredQuestionEndsInTimeOrOnCancel()
	{
		var quick = new DnsQuery([dns.Server]) { Timeout = TimeSpan.FromMilliseconds(500) };
		var sw = Stopwatch.StartNew();
		Assert.That((await quick.TxtAsync("silent.test", default)).Status, Is.EqualTo(DnsStatus.TempError));
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
		using var cts = new CancellationTokenSource(300);
		sw.Restart();
		Assert.That((await q.TxtAsync("x.silent.test", cts.Token)).Status, Is.EqualTo(DnsStatus.TempError), "cancelled");
		Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
	}
}
