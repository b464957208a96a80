namespace Upas;

/// <summary>The system name: ROOT/dev/sysname, else $sysname, else the host name.</summary>
public static class SysName
{
	public static string Get()
	{
		try {
			var s = File.ReadAllText(Root.Path9("/dev/sysname")).Trim();
			if (s.Length > 0)
				return s;
		} catch (IOException) {
		} catch (UnauthorizedAccessException) {
		}
		var env = Environment.GetEnvironmentVariable("sysname");
		if (!string.IsNullOrEmpty(env))
			return env;
		var h = System.Net.Dns.GetHostName();
		var dot = h.IndexOf('.');
		return dot > 0 ? h[..dot] : h;
	}
}
