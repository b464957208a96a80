using NUnit.Framework;

namespace Upas.Tests;

public class IpNetTests
{
	[TestCase("10.0.0.0/8", "10.200.1.1", true)]
	[TestCase("10.0.0.0/8", "11.0.0.1", false)]
	[TestCase("192.168.1", "192.168.1.77", true)]
	[TestCase("192.168.1", "192.168.2.1", false)]
	[TestCase("135.104", "135.104.9.9", true)]
	[TestCase("1.2.3.4", "1.2.3.5", false)]
	[TestCase("10.1.2.3/8", "10.9.9.9", true)]
	[TestCase("2001:db8::/32", "2001:db8:1::5", true)]
	[TestCase("2001:db8::1", "2001:db8::2", false)]
	[TestCase("127.0.0.0/8", "::ffff:127.0.0.2", true)]
	public void Contains(string net, string addr, bool want)
	{
		Assert.That(IpNet.TryParse(net, out var n), Is.True);
		Assert.That(n.Contains(addr), Is.EqualTo(want));
	}

	[Test]
	public void WhitelistBareAddressIsSlash24()
	{
		Assert.That(IpNet.TryParse("12.1.210.221", out var n, bareV4: 24), Is.True);
		Assert.That(n.Contains("12.1.210.9"), Is.True);
	}

	[TestCase("")]
	[TestCase("1.2.3.4/33")]
	[TestCase("300.1.1.1")]
	[TestCase("hello")]
	public void Bad(string s) => Assert.That(IpNet.TryParse(s, out _), Is.False);
}

public class SyslogTests
{
	[Test]
	public void LineFormat()
	{
		var line = Syslog.Format("testhost", new DateTime(2026, 11, 3, 1, 21, 0), "helo from 1.2.3.4 as x.org");
		Assert.That(System.Text.Encoding.UTF8.GetString(line), Is.EqualTo("testhost Nov  3 01:21:00 helo from 1.2.3.4 as x.org\n"));
	}

	[Test]
	public void LineIsCutAt1024()
	{
		var line = Syslog.Format("t", new DateTime(2026, 11, 24, 1, 21, 0), new string('x', 5000));
		Assert.That(line, Has.Length.EqualTo(1024));
		Assert.That(line[^1], Is.EqualTo((byte)'\n'));
	}
}
