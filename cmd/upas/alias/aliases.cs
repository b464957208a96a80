namespace Upas.Alias;

/// <summary>
/// The alias table of a list of names files (namefiles, or fromfiles for -f), as Plan 9 searches it: the first
/// line of the first file whose first word is the name (case aside) gives the name's expansion.
/// </summary>
sealed class Aliases
{
	readonly Dictionary<string, List<string>> table = new(StringComparer.OrdinalIgnoreCase);

	/// <summary>The names files in the order they are searched (host paths), for -d.</summary>
	public List<string> Files { get; } = [];

	/// <summary>
	/// The files named in the list file list (a names-file itself: words, comments, includes); when the list
	/// file is missing, dflt (namefiles' names.local) when given.
	/// </summary>
	public static Aliases FromList(string list, string? dflt, Action<string> warn)
	{
		var a = new Aliases();
		var listPath = Resolve(list);
		var names = File.Exists(listPath)
			? NamesFile.Lines(listPath, Resolve, warn).SelectMany(w => w).ToList()
			: dflt is null ? [] : [dflt];
		foreach (var n in names)
			a.Load(Resolve(n), warn);
		return a;
	}

	void Load(string path, Action<string> warn)
	{
		Files.Add(path);
		foreach (var words in NamesFile.Lines(path, Resolve, warn)) {
			if (words.Count > 0)
				table.TryAdd(words[0], words.GetRange(1, words.Count - 1)); // the first definition wins
		}
	}

	/// <summary>The expansion of name, or null when no file defines it.</summary>
	public List<string>? Lookup(string name) => table.GetValueOrDefault(name);

	/// <summary>
	/// A file named in namefiles or an #include: relative to /mail/lib (Plan 9's aliasmail works there), an
	/// absolute Plan 9 path under the root unless it already names a file of the root.
	/// </summary>
	public static string Resolve(string name)
	{
		if (!name.StartsWith('/'))
			return Path.Join(Root.Path9("/mail/lib"), name);
		var root = Root.Dir.TrimEnd('/') + "/";
		return name.StartsWith(root, StringComparison.Ordinal) ? name : Root.Path9(name);
	}
}
