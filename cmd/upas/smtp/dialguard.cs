using System.Net;
using System.Net.Sockets;

namespace Upas.Smtp;

/// <summary>
/// What smtp never dials (decisions #21): a host written as a bare number (it hides the address), and this
/// host itself on port 25, whatever the way it was named (literal, DNS answer, hosts file, -g gateway):
/// mail sent there would come back to us. Other ports stay dialable, for local relays and tests.
/// </summary>
static class DialGuard
{
	public const int SmtpPort = 25;

	/// <summary>Why host may not be dialled at all; null when it may.</summary>
	public static string? HostRefusal(string host)
	{
		if (DialString.IsBareNumber(host))
			return $"illegal address: host {EnvAddr.Printable(host)} is a number, not a name or a dotted quad";
		if (EnvAddr.Refusal(host) is not null || host.Any(char.IsWhiteSpace))
			return $"illegal address: host {EnvAddr.Printable(host)} has a blank, control character or angle bracket";
		return null;
	}

	/// <summary>Why address a may not be dialled on port; null when it may.</summary>
	public static string? Refusal(IPAddress a, int port) =>
		port == SmtpPort && IsThisHost(a) ? $"illegal: {a} is this host, not dialled on port {SmtpPort}" : null;

	/// <summary>Loopback (127/8, ::1) or unspecified (0/8, ::), also inside an IPv4-mapped or IPv4-compatible IPv6 address.</summary>
	public static bool IsThisHost(IPAddress a)
	{
		var b = a.GetAddressBytes();
		if (a.AddressFamily == AddressFamily.InterNetwork)
			return b[0] is 127 or 0;
		if (IPAddress.IsLoopback(a))
			return true;
		// ::ffff:a.b.c.d and the deprecated ::a.b.c.d reach the IPv4 address a.b.c.d
		var embedsV4 = b.AsSpan(0, 10).IndexOfAnyExcept((byte)0) < 0 && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0));
		return embedsV4 && b[12] is 127 or 0;
	}
}
