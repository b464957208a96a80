namespace Upas;

/// <summary>Plan 9's ARGBEGIN: flags bundle (-dDf), an option's value may be attached (-hdom) or follow.</summary>
public sealed class Args
{
	readonly string[] argv;
	int i;
	int j; // position inside a bundle
	public string Argv0 { get; }

	public Args(string argv0, string[] argv)
	{
		Argv0 = argv0;
		this.argv = argv;
	}

	/// <summary>The next flag character, or '\0' at the first non-flag argument (or after --).</summary>
	public char Next()
	{
		if (j == 0) {
			if (i >= argv.Length)
				return '\0';
			var a = argv[i];
			if (a == "--") {
				i++;
				return '\0';
			}
			if (a.Length < 2 || a[0] != '-')
				return '\0';
			j = 1;
		}
		var c = argv[i][j++];
		if (j >= argv[i].Length) {
			i++;
			j = 0;
		}
		return c;
	}

	/// <summary>The value of the option just returned by Next, or null when there is none (a usage error).</summary>
	public string? Value()
	{
		if (j > 0) {
			var v = argv[i][j..];
			i++;
			j = 0;
			return v;
		}
		if (i >= argv.Length)
			return null;
		return argv[i++];
	}

	/// <summary>The arguments after the flags.</summary>
	public string[] Rest => argv[i..];
}
