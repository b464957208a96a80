using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 11: under -L smtpd.conf is parsed again only when stat(2) says it changed; every connection must
/// still see the file as it is when the connection starts, and be told of its bad lines.
/// </summary>
public class ConfReuseTests
{
	static string Greeting(Listening l)
	{
		var c = l.Connect();
		var first = c.Line();
		Assert.That(c.Line(), Is.EqualTo("220 "));
		Assert.That(c.Ask("QUIT"), Is.EqualTo("221 2.0.0 Successful termination"));
		return first!;
	}

	[Test]
	public void AChangeOfTheSameSizeIsSeenByTheNextConnection()
	{
		using var t = new Tree("defaultdomain aaaa.example.com\ngreetdelay 0\n");
		using var l = new Listening(t);
		Assert.That(Greeting(l), Is.EqualTo("220-aaaa.example.com ESMTP"));
		Assert.That(Greeting(l), Is.EqualTo("220-aaaa.example.com ESMTP"));
		// same size, same second: only the change time and the contents differ
		File.WriteAllText(t.P("/mail/lib/smtpd.conf"), "defaultdomain bbbb.example.com\ngreetdelay 0\n");
		Assert.That(Greeting(l), Is.EqualTo("220-bbbb.example.com ESMTP"));
		// replaced by another file (a new inode), as an editor saves it
		File.WriteAllText(t.P("/mail/lib/smtpd.conf.new"), "defaultdomain cccc.example.com\ngreetdelay 0\n");
		File.Move(t.P("/mail/lib/smtpd.conf.new"), t.P("/mail/lib/smtpd.conf"), overwrite: true);
		Assert.That(Greeting(l), Is.EqualTo("220-cccc.example.com ESMTP"));
		File.Delete(t.P("/mail/lib/smtpd.conf"));
		Assert.That(Greeting(l), Does.Not.Contain("cccc"));
	}

	[Test]
	public void EveryConnectionLogsTheBadLines()
	{
		using var t = new Tree(Tree.DefaultConf + "maxrcpts lots\n");
		using var l = new Listening(t);
		Greeting(l);
		Greeting(l);
		string[] Bad() => t.Log().Where(x => x.StartsWith("smtpd.conf:", StringComparison.Ordinal)).ToArray();
		Wait.Until(() => Bad().Length == 2, () => string.Join("\n", t.Log()), TimeSpan.FromSeconds(10));
		Assert.That(Bad(), Is.All.Match(@"^smtpd\.conf:\d+: bad number lots: maxrcpts lots$"));
	}
}
