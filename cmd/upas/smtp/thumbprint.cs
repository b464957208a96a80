using System.Security.Cryptography;

namespace Upas.Smtp;

/// <summary>
/// The trusted server certificates (smtp.md §5.2): /sys/lib/tls/smtp minus /sys/lib/tls/smtp.exclude.
/// Lines: <c>x509 sha1=HEX [comments]</c>, <c>x509 sha256=HEX</c> (extra), <c>#include file</c>;
/// other lines, and lines of fewer than two fields, are ignored.
/// </summary>
sealed class Thumbprints
{
	public const string File9 = "/sys/lib/tls/smtp";
	public const string Exclude9 = "/sys/lib/tls/smtp.exclude";
	const int MaxDepth = 8;

	readonly HashSet<string> good = new(StringComparer.Ordinal);	// "sha1=HEX" / "sha256=HEX", upper-case hex

	/// <summary>The trusted set, or null and a reason when the file is missing or unreadable.</summary>
	public static Thumbprints? Load(out string? err)
	{
		err = null;
		var t = new Thumbprints();
		var path = Root.Path9(File9);
		if (!File.Exists(path)) {
			err = $"no thumbprint file {path}";
			return null;
		}
		var trusted = new HashSet<string>(StringComparer.Ordinal);
		if (!Read(path, trusted, 0, out err))
			return null;
		var excluded = new HashSet<string>(StringComparer.Ordinal);
		var ex = Root.Path9(Exclude9);
		if (File.Exists(ex) && !Read(ex, excluded, 0, out err))
			return null;
		trusted.ExceptWith(excluded);
		t.good.UnionWith(trusted);
		return t;
	}

	static bool Read(string path, HashSet<string> set, int depth, out string? err)
	{
		err = null;
		if (depth > MaxDepth) {
			err = $"{path}: #include nested too deeply";
			return false;
		}
		string[] lines;
		try {
			lines = File.ReadAllLines(path);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			err = $"{path}: {e.Message}";
			return false;
		}
		foreach (var raw in lines) {
			var line = raw.Trim();
			if (line.StartsWith("#include", StringComparison.Ordinal)) {
				var f = Factotum.Tokenize(line["#include".Length..]);
				if (f is not [var inc, ..])
					continue;
				if (!Read(inc.StartsWith('/') ? Root.Path9(inc) : Path.Join(Path.GetDirectoryName(path), inc), set, depth + 1, out err))
					return false;
				continue;
			}
			var fields = Factotum.Tokenize(line);
			if (fields is null || fields.Count < 2 || fields[0] != "x509")
				continue;
			if (Parse(fields[1]) is { } key)
				set.Add(key);
		}
		return true;
	}

	/// <summary>"sha1=HEX" (40 digits) or "sha256=HEX" (64 digits), either case → canonical; else null.</summary>
	public static string? Parse(string field)
	{
		var eq = field.IndexOf('=');
		if (eq < 0)
			return null;
		var (alg, hex) = (field[..eq].ToLowerInvariant(), field[(eq + 1)..]);
		var want = alg switch { "sha1" => 40, "sha256" => 64, _ => 0 };
		if (want == 0 || hex.Length != want || !hex.All(char.IsAsciiHexDigit))
			return null;
		return alg + "=" + hex.ToUpperInvariant();
	}

	/// <summary>True when the DER certificate's SHA-1 or SHA-256 is trusted.</summary>
	public bool Ok(byte[] der) => good.Contains("sha1=" + Sha1(der)) || good.Contains("sha256=" + Convert.ToHexString(SHA256.HashData(der)));

	/// <summary>The SHA-1 thumbprint in upper-case hex, as the log line shows it.</summary>
	public static string Sha1(byte[] der) => Convert.ToHexString(SHA1.HashData(der));
}
