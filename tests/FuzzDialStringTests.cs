using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Dial strings (lib/dialstring.cs) and the DNS server form (lib/resolver.cs Endpoint): never an exception;
/// a parsed dial string has a network, a host and a service with no '!' where one would be ambiguous, a port
/// in range, and its written form parses back to the same written form.
/// </summary>
[TestFixture, Category("Fuzz")]
public class FuzzDialStringTests
{
	static readonly byte[][] Corpus = Fuzz.Corpus(
		"tcp!mail.example.com!smtp", "net!example.org", "example.org", "tcp!127.0.0.1!2525", "/net.alt/tcp!h!25",
		"tcp![::1]!587", "tcp!2130706435", "udp!h!domain", "/net/tcp!h", "tcp!h!99999", "tcp!h!0", "tcp!h!s!x",
		"127.0.0.1!5353", "[::1]!53", "127.0.0.1:5353", "::1");

	static readonly string[] Words = ["!", "/", "tcp", "net", "smtp", "submission", "65535", "65536", "[", "]", ":", "::"];

	static void Property(byte[] b)
	{
		var s = Encoding.Latin1.GetString(b);
		var d = DialString.Parse(s);
		if (d is not null) {
			Fuzz.Require(d.Net.Length > 0 && d.Host.Length > 0 && d.Service.Length > 0, $"an empty part of {d}");
			Fuzz.Require(!d.Net.Contains('!') && !d.Host.Contains('!'), $"a '!' in the network or host of {d}");
			Fuzz.Require(d.Port is null or (> 0 and < 65536), $"port {d.Port}");
			var again = DialString.Parse(d.ToString());
			Fuzz.Require(again is not null && again.ToString() == d.ToString(), $"{d} parses back as {again}");
			Fuzz.Require(again!.Host == d.Host && again.Net == d.Net && again.Service == d.Service, $"{d} parses back with other parts");
		}
		if (Resolver.Endpoint(s) is { } ep)
			Fuzz.Require(ep.Port is > 0 and < 65536, $"endpoint port {ep.Port}");
	}

	[Test]
	public void DialStrings() => Fuzz.Run("dial strings", Corpus, Property, Words, maxLen: 4096);
}
