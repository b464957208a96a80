using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>Issue 10 item 6: on a host whose zone is UTC, dates say GMT as Plan 9's ctime prints them; other zones as before.</summary>
[TestFixture]
public class CtimeGmtTests
{
	const string Ctime = @"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+) \d{4}";

	/// <summary>The zone word of the From_ line and of Received: that smtpd gives its mailer, run with TZ=tz (null: unset).</summary>
	static (string FromZone, string ReceivedZone) Smtpd(string? tz)
	{
		using var t = new Tree();
		var psi = t.Start([]);
		if (tz is null)
			psi.Environment.Remove("TZ");
		else
			psi.Environment["TZ"] = tz;
		var (o, e, _) = Tree.Exec(psi, Encoding.Latin1.GetBytes(
			"HELO client.9fans.net\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"));
		var caps = t.Captures();
		Assert.That(caps, Has.Count.EqualTo(1), Encoding.Latin1.GetString(o) + e);
		var from = Regex.Match(caps[0].Text, $"^From example.org!alice {Ctime} remote from \n");
		var rcvd = Regex.Match(caps[0].Text, $"\nReceived: from client.9fans.net .*; {Ctime}\n");
		Assert.That(from.Success && rcvd.Success, Is.True, caps[0].Text);
		return (from.Groups[1].Value, rcvd.Groups[1].Value);
	}

	[TestCase("UTC")]
	[TestCase("Etc/UTC")]
	[TestCase("GMT")]
	public void SmtpdSaysGmtInAUtcZone(string tz) => Assert.That(Smtpd(tz), Is.EqualTo(("GMT", "GMT")));

	[Test]
	public void SmtpdSaysGmtWithTzUnsetAndLocaltimeUtc()
	{
		var zone = File.ResolveLinkTarget("/etc/localtime", true)?.FullName ?? "";
		Assume.That(Regex.IsMatch(zone, @"zoneinfo/(Etc/)?(UTC|UCT|Universal|Zulu)$"), "/etc/localtime is not a link to UTC here");
		Assert.That(Smtpd(null), Is.EqualTo(("GMT", "GMT")));
	}

	[Test]
	public void NewYorkStaysEstOrEdt()
	{
		var want = TimeZoneInfo.FindSystemTimeZoneById("America/New_York").IsDaylightSavingTime(DateTime.UtcNow) ? "EDT" : "EST";
		Assert.That(Smtpd("America/New_York"), Is.EqualTo((want, want)));
	}

	[TestCase("UTC", "GMT")]
	[TestCase("Etc/UTC", "GMT")]
	[TestCase("America/New_York", null)]
	public void SendsFromLineSaysGmtInAUtcZone(string tz, string? zone)
	{
		using var t = new Tree();
		t.Write("/sys/log/mail", "");
		Directory.CreateDirectory(t.P("/mail/box/glenda"));
		var psi = t.Prog(Repo.Bin("send"), ["glenda"]);
		psi.Environment["TZ"] = tz;
		var (_, e, x) = Tree.Exec(psi, "Subject: hi\n\nno From_ line\n"u8.ToArray());
		Assert.That(x, Is.EqualTo(0), e);
		var m = Regex.Match(Mail.Box(t, "glenda"), $"^From \\S+ {Ctime}\n");
		Assert.That(m.Success, Is.True, Mail.Box(t, "glenda"));
		zone ??= TimeZoneInfo.FindSystemTimeZoneById(tz).IsDaylightSavingTime(DateTime.UtcNow) ? "EDT" : "EST";
		Assert.That(m.Groups[1].Value, Is.EqualTo(zone));
	}

	[Test]
	public void TheZoneWordOfOtherZones()
	{
		var ny = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");
		Assert.That(PlanTime.Zone(ny, new DateTime(2026, 1, 15, 12, 0, 0)), Is.EqualTo("EST"));
		Assert.That(PlanTime.Zone(ny, new DateTime(2026, 7, 15, 12, 0, 0)), Is.EqualTo("EDT"));
		Assert.That(PlanTime.Zone(TimeZoneInfo.Utc, new DateTime(2026, 7, 15, 12, 0, 0)), Is.EqualTo("GMT"));
		var london = TimeZoneInfo.FindSystemTimeZoneById("Europe/London");
		Assert.That(PlanTime.Zone(london, new DateTime(2026, 7, 15, 12, 0, 0)), Is.EqualTo("BST"));
	}
}
