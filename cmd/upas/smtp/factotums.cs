namespace Upas.Smtp;

/// <summary>Where -a finds passwords (decisions #17).</summary>
static class Factotums
{
	/// <summary>plan9port's factotum over 9P when it runs, else the keys in $HOME/lib/factotum.</summary>
	public static IFactotum Open(Action<string> trace)
	{
		// ===== Factotum9p hook: the one place smtp asks the 9P factotum client first. =====
		// lib/factotum9p.cs (class Factotum9p, static TryConnect(): the factotum of this name space, or null when
		// none runs) is another engineer's; smtp.csproj defines HAVE_FACTOTUM9P whenever that file exists.
#if HAVE_FACTOTUM9P
		try {
			if (Factotum9p.TryConnect() is IFactotum f9)
				return f9;
		} catch (IOException e) {
			trace($"factotum: {e.Message}; trying $HOME/lib/factotum");
		}
#endif
		// ===== end of the Factotum9p hook =====
		return FactotumFile.Default();
	}
}
