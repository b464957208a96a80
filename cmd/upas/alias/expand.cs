namespace Upas.Alias;

/// <summary>An expansion that cannot be finished: aliases nested too deep, or a word that can be no address.</summary>
sealed class AliasError(string msg) : Exception(msg);

/// <summary>
/// One name's destinations, aliases followed to the end: a name no file defines is the local user (local!name),
/// a word with a host (x@dom, host!x) or local!x is a destination as written, a name of this system (sys!x) is
/// x. A name met again inside its own expansion is its own local user (Plan 9's "glenda glenda archive"
/// keeps a copy); a name met again elsewhere adds nothing new. Each destination is given once.
/// </summary>
sealed class Expander(Aliases aliases, IReadOnlyCollection<string> sysnames)
{
	/// <summary>Aliases of aliases, at most (rewrite(6)'s limit).</summary>
	public const int MaxDepth = 32;

	readonly List<string> path = [];
	readonly HashSet<string> done = new(StringComparer.Ordinal);
	readonly HashSet<string> given = new(StringComparer.Ordinal);
	readonly List<string> outp = [];

	/// <summary>The destinations of name (lower case, no '!'), one per line in Plan 9's order.</summary>
	public List<string> Expand(string name)
	{
		Visit(name, 0);
		return outp;
	}

	void Visit(string name, int depth)
	{
		if (path.Contains(name)) {
			Emit("local!" + name);
			return;
		}
		if (!done.Add(name))
			return;
		var words = aliases.Lookup(name);
		if (words is null || words.Count == 0) {
			Emit("local!" + name);
			return;
		}
		if (depth >= MaxDepth)
			throw new AliasError($"{path[0]}: aliases nested deeper than {MaxDepth}");
		path.Add(name);
		foreach (var w in words) {
			if (EnvAddr.Refusal(w) is { } why)
				throw new AliasError($"{name}: {why}: {EnvAddr.Printable(w)}");
			if (w.Length == 0 || EnvAddr.LooksLikeOption(w))
				throw new AliasError($"{name}: not an address: '{w}'");
			if (LocalName(w) is { } local)
				Visit(local, depth + 1);
			else
				Emit(w);
		}
		path.RemoveAt(path.Count - 1);
	}

	void Emit(string dest)
	{
		if (given.Add(dest))
			outp.Add(dest);
	}

	/// <summary>The local name a word stands for (bob, kremvax!bob, bob@kremvax), lower case; null for any other destination.</summary>
	string? LocalName(string w)
	{
		var bang = AtToBang(w);
		var i = bang.IndexOf('!');
		if (i < 0)
			return Lower(bang);
		var rest = bang[(i + 1)..];
		if (rest.Contains('!') || rest.Length == 0)
			return null;
		var host = bang[..i];
		return sysnames.Contains(host, StringComparer.OrdinalIgnoreCase) ? Lower(rest) : null;
	}

	/// <summary>Plan 9's "very dumb" conversion: x@dom becomes dom!x at the first '@'.</summary>
	public static string AtToBang(string w)
	{
		var at = w.IndexOf('@');
		return at < 0 ? w : w[(at + 1)..] + "!" + w[..at];
	}

	/// <summary>ASCII letters to lower case, as Plan 9's aliasmail does to every name it is given.</summary>
	public static string Lower(string s) => string.Create(s.Length, s, (d, src) => {
		for (var i = 0; i < src.Length; i++)
			d[i] = src[i] is >= 'A' and <= 'Z' ? (char)(src[i] + 32) : src[i];
	});
}
