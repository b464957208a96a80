using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>Where a recipient goes: a local mailbox, a remote host's queue, or nowhere (mailer.md §2 step 4, §7 step 3).</summary>
sealed class Route
{
	public enum Kind { Local, Remote, Unknown }

	public Kind What { get; private init; }
	/// <summary>The address as given.</summary>
	public string Addr { get; private init; } = "";
	/// <summary>Local: the mailbox owner. Remote: the rest of the address after the host.</summary>
	public string User { get; private init; } = "";
	/// <summary>Remote: the host (net!host in the control file).</summary>
	public string Host { get; private init; } = "";

	/// <summary>The system name, "local", "localhost", and the smtpd.conf ourdomains and defaultdomain.</summary>
	public sealed class LocalNames
	{
		readonly List<string> names = [];

		public LocalNames(string sysname)
		{
			names.Add(sysname.ToLowerInvariant());
			names.Add("local");
			names.Add("localhost");
			string text;
			try {
				text = File.ReadAllText(Root.Path9("/mail/lib/smtpd.conf"));
			} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
				return;
			}
			string? dflt = null;
			foreach (var line in text.Split('\n')) {
				var t = ConfTokens.Split(line);
				if (t.Count < 2)
					continue;
				if (t[0] == "ourdomains")
					names.AddRange(t.Skip(1));
				else if (t[0] == "defaultdomain")
					dflt = t[1];
			}
			if (dflt is not null) {
				names.Add(dflt);
				names.Add(sysname.ToLowerInvariant() + "." + dflt);
			}
		}

		/// <summary>Is the host one of ours? "*.example.com" covers the subdomains of example.com.</summary>
		public bool Has(string host)
		{
			host = host.ToLowerInvariant().TrimEnd('.');
			foreach (var n in names) {
				if (n.StartsWith("*.", StringComparison.Ordinal)) {
					if (host.EndsWith(n[1..], StringComparison.Ordinal))
						return true;
				} else if (n == host) {
					return true;
				}
			}
			return false;
		}
	}

	/// <summary>Classifies one recipient: user@host becomes host!user, leading local names are dropped.</summary>
	public static Route Of(string addr, LocalNames local)
	{
		var a = addr;
		var at = a.LastIndexOf('@');
		if (at >= 0 && !a.Contains('!'))
			a = a[(at + 1)..] + "!" + a[..at];
		int bang;
		while ((bang = a.IndexOf('!')) >= 0 && local.Has(a[..bang]))
			a = a[(bang + 1)..];
		bang = a.IndexOf('!');
		if (bang > 0 && bang < a.Length - 1)
			return new Route { What = Kind.Remote, Addr = addr, Host = a[..bang], User = a[(bang + 1)..] };
		if (bang < 0 && ValidUser(a) && HasBox(a))
			return new Route { What = Kind.Local, Addr = addr, User = a };
		return new Route { What = Kind.Unknown, Addr = addr, User = bang < 0 ? a : "" };
	}

	/// <summary>
	/// A name that can only ever be one directory under /mail/box: letters, digits and "._-+=", not starting
	/// with '.' or '-', at most 64 bytes. Anything else ("..", '/', NUL, control or 8-bit bytes) is refused.
	/// </summary>
	public static bool ValidUser(string u)
	{
		if (u.Length is 0 or > 64 || u[0] is '.' or '-')
			return false;
		foreach (var c in u) {
			if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-' or '+' or '='))
				return false;
		}
		return true;
	}

	/// <summary>The mailbox directory /mail/box/user exists and is a real directory (not a symbolic link).</summary>
	public static bool HasBox(string user) => IsDir(BoxDir(user));

	/// <summary>The path is a real directory (not a symbolic link to one).</summary>
	public static bool IsDir(string path)
	{
		if (Syscall.lstat(path, out var st) != 0)
			return false;
		return (st.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR;
	}

	public static string BoxDir(string user) => Root.Path9("/mail/box/" + user);
}
