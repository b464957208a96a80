using System.Net;
using System.Net.Sockets;

namespace Upas;

/// <summary>An address block as smtpd.conf, /mail/lib/blocked, -k and the greylist whitelist write them.</summary>
public readonly struct IpNet
{
	readonly byte[] net;
	public int Length { get; }

	IpNet(byte[] net, int len)
	{
		Length = len;
		this.net = Mask(net, len);
	}

	public bool IsV6 => net.Length == 16;

	/// <summary>
	/// Parses a.b.c.d/len, v6addr[/len], or a partial IPv4 address whose length follows the octets written
	/// (4 → /32, 3 → /24, 2 and 1 → /16, missing octets zero), as Bell Labs' smtpd(6) says.
	/// bareV4 overrides the length of a complete IPv4 address without /len (the whitelist's /24).
	/// </summary>
	public static bool TryParse(string s, out IpNet n, int? bareV4 = null)
	{
		n = default;
		s = s.Trim();
		int? len = null;
		var slash = s.IndexOf('/');
		if (slash >= 0) {
			if (!int.TryParse(s.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out var l))
				return false;
			len = l;
			s = s[..slash];
		}
		if (s.Contains(':')) {
			if (!IPAddress.TryParse(s, out var a6) || a6.AddressFamily != AddressFamily.InterNetworkV6)
				return false;
			var b = a6.GetAddressBytes();
			var l6 = len ?? 128;
			if (l6 < 0 || l6 > 128)
				return false;
			if (a6.IsIPv4MappedToIPv6) {
				// ::ffff:a.b.c.d is the IPv4 address; keep one form for matching
				return Make(b[12..], len is null ? 32 : l6 - 96, out n);
			}
			return Make(b, l6, out n);
		}
		var parts = s.Split('.');
		if (parts.Length is < 1 or > 4)
			return false;
		var v4 = new byte[4];
		for (var i = 0; i < parts.Length; i++) {
			if (!byte.TryParse(parts[i], System.Globalization.NumberStyles.None, null, out v4[i]))
				return false;
		}
		var dflt = parts.Length switch { 4 => bareV4 ?? 32, 3 => 24, _ => 16 };
		return Make(v4, len ?? dflt, out n);
	}

	static bool Make(byte[] b, int len, out IpNet n)
	{
		n = default;
		if (len < 0 || len > b.Length * 8)
			return false;
		n = new IpNet(b, len);
		return true;
	}

	static byte[] Mask(byte[] a, int len)
	{
		var m = (byte[])a.Clone();
		for (var i = 0; i < m.Length; i++) {
			var bits = Math.Clamp(len - i * 8, 0, 8);
			m[i] &= (byte)(0xff << (8 - bits));
		}
		return m;
	}

	public bool Contains(IPAddress a)
	{
		if (net is null)
			return false;
		if (a.IsIPv4MappedToIPv6)
			a = a.MapToIPv4();
		var b = a.GetAddressBytes();
		if (b.Length != net.Length)
			return false;
		return Mask(b, Length).AsSpan().SequenceEqual(net);
	}

	/// <summary>Parses an address as it appears in rsys (IPv4-mapped forms unmapped); null if it is not one.</summary>
	public static IPAddress? Addr(string s)
	{
		if (s.StartsWith('[') && s.EndsWith(']'))
			s = s[1..^1];
		if (!IPAddress.TryParse(s, out var a))
			return null;
		return a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;
	}

	public bool Contains(string addr) => Addr(addr) is { } a && Contains(a);

	public override string ToString() => $"{new IPAddress(net)}/{Length}";
}
