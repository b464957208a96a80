namespace Upas.Smtp;

/// <summary>Where -a finds passwords (decisions #17).</summary>
static class Factotums
{
	/// <summary>plan9port's factotum over 9P when it runs, else $HOME/lib/factotum.</summary>
	public static IFactotum Open()
	{
		// ===== Factotum9p hook: the one place smtp asks the 9P factotum client first. =====
		// lib/factotum9p.cs (class Factotum9p, static TryConnect(): an IFactotum, or null when no factotum
		// runs) is another engineer's; smtp.csproj defines HAVE_FACTOTUM9P as soon as that file exists.
#if HAVE_FACTOTUM9P
		if (Factotum9p.TryConnect() is IFactotum f9)
			return f9;
#endif
		// ===== end of the Factotum9p hook =====
		return (IFactotum?)FileFactotum.Default() ?? new NoFactotum();
	}

	sealed class NoFactotum : IFactotum
	{
		public (string user, string password)? GetPassword(string server, string? user) => null;
	}
}
