namespace Upas;

/// <summary>Where a client gets the password it authenticates with (decisions #17).</summary>
public interface IFactotum
{
	/// <summary>The user name and password of the first key matching
	/// <c>proto=pass service=smtp server=<paramref name="server"/> user=<paramref name="user"/></c>
	/// (no user= when <paramref name="user"/> is null); null when there is none.</summary>
	(string user, string password)? GetPassword(string server, string? user);
}

/// <summary>Keys from a file in factotum's syntax, by default $HOME/lib/factotum, one key a line:
/// <c>key proto=pass service=smtp server=mail.example.com user=glenda !password=secret</c>.</summary>
public sealed class FileFactotum(string path) : IFactotum
{
	public string Path { get; } = path;

	/// <summary>$HOME/lib/factotum (the password file of plan9port's factotum), or null without $HOME.</summary>
	public static FileFactotum? Default()
	{
		var home = Environment.GetEnvironmentVariable("HOME");
		return string.IsNullOrEmpty(home) ? null : new FileFactotum(System.IO.Path.Join(home, "lib/factotum"));
	}

	public (string user, string password)? GetPassword(string server, string? user)
	{
		string text;
		try {
			text = File.ReadAllText(Path);
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return null;
		}
		var query = new List<(string, string?)> { ("proto", "pass"), ("service", "smtp"), ("server", server) };
		if (user is not null)
			query.Add(("user", user));
		foreach (var k in Factotum.ParseKeys(text)) {
			if (k.Matches(query) && k["user"] is { } u && k.Secrets.TryGetValue("password", out var pw))
				return (u, pw);
		}
		return null;
	}
}
