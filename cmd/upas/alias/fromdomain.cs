namespace Upas.Alias;

/// <summary>
/// -f: the domain mail from an address is sent as (smtp -h, in remotemail). A local name listed in the files
/// of /mail/lib/fromfiles gives the domain of its first address there, as Plan 9's; any other address with a
/// domain (x@dom, dom!x) gives that domain; otherwise there is none, and remotemail falls back.
/// </summary>
static class FromDomain
{
	public static string? Of(string addr, Aliases fromfiles)
	{
		if (!addr.Contains('!') && fromfiles.Lookup(addr) is [var first, ..])
			return AliasDomain(first);
		var at = addr.LastIndexOf('@');
		if (at >= 0)
			return Plausible(addr[(at + 1)..]);
		var bang = addr.IndexOf('!');
		return bang > 0 ? Plausible(addr[..bang]) : null;
	}

	/// <summary>Plan 9's reading of a from-alias: what precedes its first '!', else what follows its first '@', else all of it.</summary>
	static string? AliasDomain(string a)
	{
		var bang = a.IndexOf('!');
		if (bang >= 0)
			return Plausible(a[..bang]);
		var at = a.IndexOf('@');
		return Plausible(at >= 0 ? a[(at + 1)..] : a);
	}

	/// <summary>Only a host name can be a domain: letters, digits, '-', '_', '.', not starting with '-' or '.'.</summary>
	static string? Plausible(string d)
	{
		if (d.Length == 0 || d[0] is '-' or '.')
			return null;
		foreach (var c in d)
			if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
				return null;
		return d;
	}
}
