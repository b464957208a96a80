using System.Text;
using NUnit.Framework;
using Upas.Smtpd;

namespace Upas.Tests;

/// <summary>
/// smtpd.conf (conf.cs) and its tokeniser (lib/tokens.cs) under mutated files: never an exception, every value
/// in its documented range, a dnsserver the resolver can use, a log message per bad line that is one line, and
/// tokens that match a simple model of the tokeniser.
/// </summary>
[TestFixture, Category("Fuzz")]
public class FuzzConfTests
{
	static readonly byte[][] Corpus = Fuzz.Corpus(
		Tree.DefaultConf,
		"defaultdomain plan9.example\nnorelay on\nverifysenderdom on\nsaveblockedmsg off\n",
		"ournets 127.0.0.0/8, 10.0.0.0/8 ::1/128\nourdomains example.com, *.example.com\n",
		"greetdelay 0\nmaxmsgsize 1048576\nmaxrcpts 100\nidletimeout 300\ndatatimeout 180\nsessiontimeout 2700\n",
		"maxsessions 100\nmaxperip 10\ndnsserver 127.0.0.1!5353, ::1, [::1]!53\r\n",
		"# a comment\n\\#escaped word # comment\nourdomains a\\ b\n");

	static readonly string[] Words = ["norelay", "ourdomains", "ournets", "dnsserver", "maxmsgsize", "greetdelay", "sessiontimeout",
		"defaultdomain", " on", ",", "#", "\\", "!", "/", "::", "9999999999999999999", "-1", "\r\n", "\n"];

	const int Week = 7 * 24 * 3600;

	static void Property(byte[] b)
	{
		var text = Encoding.Latin1.GetString(b);
		var logged = new List<string>();
		var c = Conf.Parse(text, logged.Add);
		Fuzz.Require(c.GreetDelay is >= 0 and <= Week, $"greetdelay {c.GreetDelay}");
		Fuzz.Require(c.IdleTimeout is >= 1 and <= Week && c.DataTimeout is >= 1 and <= Week && c.SessionTimeout is >= 1 and <= Week, "a timeout out of range");
		Fuzz.Require(c.MaxMessage >= 1 && c.MaxRcpts >= 1 && c.MaxSessions >= 1 && c.MaxPerIp >= 1, "a limit below 1");
		foreach (var d in c.DnsServers)
			Fuzz.Require(Resolver.Endpoint(d) is not null, $"dnsserver {d} is accepted but the resolver cannot use it");
		Fuzz.Require(c.OurDomains.All(d => d.Length > 0), "an empty ourdomains entry");
		Fuzz.Require(logged.All(l => !l.Contains('\n')), "a log message of more than one line");

		foreach (var line in text.Split('\n')) {
			var toks = ConfTokens.Split(line);
			Fuzz.Require(toks.All(t => t.Length > 0 && t == t.ToLowerInvariant()), "an empty or upper-case token");
			if (!line.Contains('\\')) {
				var model = line.Split('#')[0].ToLowerInvariant().Split([' ', '\t', ',', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries);
				Fuzz.Require(toks.SequenceEqual(model), $"tokens [{string.Join("|", toks)}] of {Fuzz.Literal(Encoding.Latin1.GetBytes(line))}");
			}
		}
	}

	// found by this fuzzer: smtpd.conf took "[::1]:!53" (an address .NET parses), the resolver could not use it
	// and fell back to the system's servers
	[TestCase("dnsserver [::1]:!53")]
	[TestCase("dnsserver 127.0.0.1, [::1]:")]
	public void Regressions(string line)
	{
		var logged = new List<string>();
		var c = Conf.Parse(line + "\n", logged.Add);
		Assert.That(c.DnsServers, Is.Empty);
		Assert.That(logged, Has.Count.EqualTo(1).And.Some.Contains("bad address"));
		Property(Encoding.Latin1.GetBytes(line));
	}

	[Test]
	public void ConfFiles() => Fuzz.Run("smtpd.conf", Corpus, Property, Words);
}
