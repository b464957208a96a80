using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DnsClient;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// One thing the test DNS server knows, as the dnsmasq option that makes it. Names are written without the
/// final dot. Several records for one name add up (several MX preferences, an A and an AAAA, …).
/// </summary>
public sealed record DnsRecord(string Option)
{
	/// <summary>An A record (--host-record: the name's other types answer NODATA, not NXDOMAIN).</summary>
	public static DnsRecord A(string name, string ipv4) => new($"--host-record={name},{IPv(ipv4, AddressFamily.InterNetwork)}");

	/// <summary>An AAAA record.</summary>
	public static DnsRecord Aaaa(string name, string ipv6) => new($"--host-record={name},{IPv(ipv6, AddressFamily.InterNetworkV6)}");

	/// <summary>An MX record: name's mail goes to target with preference (lower is tried first).</summary>
	public static DnsRecord Mx(string name, string target, int preference) => new($"--mx-host={name},{target},{preference}");

	/// <summary>A TXT record (only: the name then exists, with no A, AAAA or MX). Commas separate strings.</summary>
	public static DnsRecord Txt(string name, string text) => new($"--txt-record={name},{text}");

	/// <summary>A TXT record of any text (commas, odd bytes, any length) as raw RDATA: character-strings of at most 255 bytes.</summary>
	public static DnsRecord RawTxt(string name, string text)
	{
		var b = System.Text.Encoding.Latin1.GetBytes(text);
		var hex = new StringBuilder();
		for (var i = 0; i < b.Length || i == 0; i += 255) {
			var n = Math.Min(255, b.Length - i);
			hex.Append(n.ToString("x2")).Append(Convert.ToHexString(b, i, n));
		}
		return new($"--dns-rr={name},16,{hex}");
	}

	/// <summary>A CNAME; the target must be a name this server knows.</summary>
	public static DnsRecord Cname(string alias, string target) => new($"--cname={alias},{target}");

	/// <summary>One more domain the server is authoritative for: names in it it does not know are NXDOMAIN.</summary>
	public static DnsRecord Zone(string domain) => new($"--local=/{domain}/");

	/// <summary>A domain whose every query fails at once with REFUSED (a temporary failure, not NXDOMAIN).</summary>
	public static DnsRecord Broken(string domain) => new($"--server=/{domain}/#");

	/// <summary>
	/// A domain whose queries are never answered (forwarded to a closed local port): the client times out.
	/// Slow by nature (the product waits out its own DNS timeout); prefer <see cref="Broken"/>.
	/// </summary>
	public static DnsRecord Silent(string domain) => new($"--server=/{domain}/127.0.0.1#{Dnsmasq.FreePort()}");

	static string IPv(string s, AddressFamily af) =>
		IPAddress.TryParse(s, out var a) && a.AddressFamily == af ? s : throw new ArgumentException($"not an {af} address: {s}");

	public override string ToString() => Option;
}

/// <summary>
/// Debian's dnsmasq as a throw-away DNS server on 127.0.0.1 and a free port (UDP and TCP), in the foreground,
/// knowing only the records it is given. It is authoritative for <see cref="DefaultZones"/> (and any
/// <see cref="DnsRecord.Zone"/>): unknown names there are NXDOMAIN, known names answer NODATA for the
/// types they lack. Names outside every zone are REFUSED (no upstream servers). Dispose stops it; it
/// also stops when the test process dies (its watcher sees our end of a pipe close).
/// <code>
/// using var dns = new Dnsmasq(
/// 	DnsRecord.Mx("dest.test", "mx2.dest.test", 20),
/// 	DnsRecord.Mx("dest.test", "mx1.dest.test", 10),
/// 	DnsRecord.A("mx1.dest.test", "127.0.0.1"),
/// 	DnsRecord.Broken("broken.test"));
/// // smtpd.conf: $"dnsserver {dns.Server}"; environment: dnsserver=dns.Server
/// </code>
/// </summary>
public sealed class Dnsmasq : IDisposable
{
	public const string Program = "/usr/sbin/dnsmasq";

	/// <summary>The reserved test names (RFC 2606, 6761) and 9fans.example.</summary>
	public static readonly string[] DefaultZones = ["test", "example", "example.com", "example.net", "example.org", "invalid"];

	static readonly Lazy<Dnsmasq> shared = new(() => new Dnsmasq());

	/// <summary>
	/// One server for the whole test run that knows no record: the default $dnsserver of every program the tests
	/// start (Tree.Prog, Tree.Start, Smtp.Start), so that no look-up leaves the machine through the system's
	/// resolver. It stops when the test process does.
	/// </summary>
	public static Dnsmasq Shared => shared.Value;

	readonly Process proc;
	readonly StringBuilder log = new();
	readonly Task logTask;

	/// <summary>The UDP and TCP port it listens on, on 127.0.0.1 only.</summary>
	public int Port { get; }

	/// <summary>The server in the product's dial-string form, "127.0.0.1!PORT" (smtpd.conf dnsserver, $dnsserver).</summary>
	public string Server => $"127.0.0.1!{Port}";

	public IPEndPoint Endpoint => new(IPAddress.Loopback, Port);

	public IReadOnlyList<DnsRecord> Records { get; }

	/// <summary>What dnsmasq has logged so far (start-up, and every query: "query[MX] dest.test from 127.0.0.1").</summary>
	public string Log {
		get {
			lock (log)
				return log.ToString();
		}
	}

	public Dnsmasq(params IEnumerable<DnsRecord> records)
	{
		if (!File.Exists(Program))
			Assert.Fail($"{Program} is missing: install dnsmasq-base (sys/lib/upas/prereq does)");
		Records = records.ToArray();
		string? why = null;
		for (var attempt = 0; attempt < 5; attempt++) {
			Port = FreePort();
			proc = Start(Port);
			logTask = Drain(proc.StandardError);
			why = WaitReady();
			if (why is null)
				return;
			Stop();
			if (!why.Contains("in use"))
				break;
		}
		Assert.Fail($"dnsmasq did not start: {why}\n{Log}");
		throw new InvalidOperationException();	// not reached
	}

	Process Start(int port)
	{
		// the watcher: when our end of stdin closes (Dispose, or this process dies), dnsmasq is killed
		const string wrapper = """
			exec 3<&0 </dev/null
			"$@" 3<&- &
			p=$!
			{ read _ <&3; kill $p 2>/dev/null; } &
			w=$!
			wait $p
			st=$?
			kill $w 2>/dev/null
			exit $st
			""";
		var psi = new ProcessStartInfo("/bin/sh") {
			RedirectStandardInput = true,
			RedirectStandardOutput = false,
			RedirectStandardError = true,
			UseShellExecute = false,
		};
		string[] args = [
			"-c", wrapper, "dnsmasq", Program,
			"--keep-in-foreground",
			$"--user={Environment.UserName}",		// root in CI: do not switch to nobody
			"--conf-file=/dev/null",
			"--pid-file=",
			"--log-facility=-",
			"--log-queries",
			"--no-resolv",
			"--no-hosts",
			"--no-poll",
			"--no-ident",
			"--bind-interfaces",
			"--listen-address=127.0.0.1",
			$"--port={port}",
			.. DefaultZones.Select(z => $"--local=/{z}/"),
			.. Records.Select(r => r.Option),
		];
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		return Process.Start(psi)!;
	}

	async Task Drain(StreamReader r)
	{
		while (await r.ReadLineAsync() is { } line) {
			lock (log)
				log.Append(line).Append('\n');
		}
	}

	/// <summary>Null once it answers a query; else why not.</summary>
	string? WaitReady()
	{
		var opts = new LookupClientOptions(Endpoint) {
			UseCache = false,
			Timeout = TimeSpan.FromMilliseconds(250),
			Retries = 0,
			ThrowDnsErrors = false,
			UseTcpFallback = false,
		};
		var client = new LookupClient(opts);
		var deadline = DateTime.Now.AddSeconds(15);
		while (DateTime.Now < deadline) {
			if (proc.HasExited) {
				logTask.Wait(2000);
				return $"exit status {proc.ExitCode}: {Log}";
			}
			try {
				var r = client.Query("ready.invalid", QueryType.A);
				if (r.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain)
					return null;
			} catch (DnsResponseException) {
			}
			Thread.Sleep(50);
		}
		return "no answer within 15 s";
	}

	/// <summary>A DnsClient for this server (no cache, errors as responses).</summary>
	public LookupClient Client() => new(new LookupClientOptions(Endpoint) {
		UseCache = false,
		Timeout = TimeSpan.FromSeconds(2),
		ThrowDnsErrors = false,
	});

	/// <summary>A port free on 127.0.0.1 for both UDP and TCP, at the time of asking.</summary>
	internal static int FreePort()
	{
		for (var i = 0; i < 50; i++) {
			using var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
			u.Bind(new IPEndPoint(IPAddress.Loopback, 0));
			var port = ((IPEndPoint)u.LocalEndPoint!).Port;
			try {
				using var t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
				t.Bind(new IPEndPoint(IPAddress.Loopback, port));
				return port;
			} catch (SocketException) {
			}
		}
		throw new InvalidOperationException("no free port on 127.0.0.1");
	}

	void Stop()
	{
		try {
			proc.StandardInput.Close();	// the watcher kills dnsmasq, then the shell exits
		} catch (IOException) {
		}
		if (!proc.WaitForExit(5000)) {
			try {
				proc.Kill(true);
			} catch (InvalidOperationException) {
			}
			proc.WaitForExit(5000);
		}
		logTask.Wait(2000);
		proc.Dispose();
	}

	public void Dispose() => Stop();
}

/// <summary>
/// Before any test: $dnsserver of the test process (and so of every program it starts, through socat, runq or a
/// script) is the shared loopback server, so that no test sends a DNS query off the machine.
/// </summary>
[SetUpFixture]
public sealed class LoopbackDns
{
	[OneTimeSetUp]
	public void DnsOnLoopback()
	{
		if (File.Exists(Dnsmasq.Program))
			Environment.SetEnvironmentVariable("dnsserver", Dnsmasq.Shared.Server);
	}
}
