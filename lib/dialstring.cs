namespace Upas;

/// <summary>
/// A Plan 9 dial string, <c>[netdir/]net!host[!service]</c> (dial(2), smtp.md §2). Parsing is pure:
/// no name service is asked; <see cref="Port"/> knows the few services mail needs.
/// </summary>
public sealed record DialString(string? NetDir, string Net, string Host, string Service)
{
	/// <summary>Completes and splits s: "host" and "net!host" get the default service, a leading
	/// "/dir/" before the first '!' is the network directory. Null for an empty string or host.</summary>
	public static DialString? Parse(string s, string defaultService = "smtp")
	{
		if (string.IsNullOrEmpty(s))
			return null;
		string? netdir = null;
		var bang = s.IndexOf('!');
		if (s[0] == '/') {
			var slash = bang < 0 ? s.LastIndexOf('/') : s.LastIndexOf('/', bang);
			netdir = s[..slash];
			s = s[(slash + 1)..];
			if (netdir.Length == 0)
				netdir = "/";
		}
		var f = s.Split('!', 3);
		var (net, host, service) = f.Length switch {
			1 => ("net", f[0], defaultService),
			2 => (f[0], f[1], defaultService),
			_ => (f[0], f[1], f[2]),
		};
		if (host.Length == 0 || net.Length == 0)
			return null;
		if (service.Length == 0)
			service = defaultService;
		return new DialString(netdir, net, host, service);
	}

	/// <summary>The completed form, "net!host!service", with the network directory in front when given.</summary>
	public override string ToString() => (NetDir is null ? "" : NetDir.TrimEnd('/') + "/") + $"{Net}!{Host}!{Service}";

	/// <summary>The same dial string with another host.</summary>
	public DialString WithHost(string host) => this with { Host = host };

	/// <summary>True when the network is one a Unix host can dial: tcp or net (any network).</summary>
	public bool IsTcp => Net is "tcp" or "net";

	/// <summary>The TCP port of the service: a number, or one of the names mail uses; null when unknown.</summary>
	public int? Port => ServicePort(Service);

	static readonly Dictionary<string, int> Services = new(StringComparer.Ordinal) {
		["smtp"] = 25,
		["submission"] = 587,
		["smtps"] = 465,
		["ssmtp"] = 465,
		["pop3"] = 110,
		["imap"] = 143,
		["domain"] = 53,
	};

	/// <summary>
	/// True when host is a number in a notation inet_aton(3) or a resolver would take for an IPv4 address
	/// (2130706435, 0x7f000001, 0177.1, 127.1, 127.000.0.1, "1.2.3.4.") but not a plain dotted quad: every
	/// label decimal or 0x-hex. Such a host hides the address it dials (decisions #21) and is never dialled.
	/// </summary>
	public static bool IsBareNumber(string host)
	{
		var h = host.EndsWith('.') ? host[..^1] : host;
		if (h.Length == 0)
			return false;
		var labels = h.Split('.');
		foreach (var l in labels)
			if (!IsNumberLabel(l))
				return false;
		return !(ReferenceEquals(h, host) && IsDottedQuad(labels));
	}

	static bool IsNumberLabel(string l) =>
		l.Length > 0 && (l.All(char.IsAsciiDigit) || (l.Length >= 2 && l[0] == '0' && (l[1] is 'x' or 'X') && l.Skip(2).All(char.IsAsciiHexDigit)));

	// four decimal numbers 0-255 without leading zeros (a leading zero is octal to inet_aton)
	static bool IsDottedQuad(string[] labels) =>
		labels.Length == 4 && labels.All(l => l.Length <= 3 && l.All(char.IsAsciiDigit) && (l.Length == 1 || l[0] != '0') && int.Parse(l, System.Globalization.CultureInfo.InvariantCulture) <= 255);

	public static int? ServicePort(string service)
	{
		if (service.Length > 0 && service.All(char.IsAsciiDigit))
			return int.TryParse(service, out var n) && n is > 0 and < 65536 ? n : null;
		return Services.TryGetValue(service, out var p) ? p : null;
	}
}
