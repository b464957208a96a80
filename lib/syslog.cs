using System.Text;

namespace Upas;

/// <summary>Plan 9 syslog(2): "sysname Mon dd hh:mm:ss message" appended to /sys/log/NAME, only if that file exists.</summary>
public static class Syslog
{
	const int MaxLine = 1024;
	static string? sysname;

	public static string SysName
	{
		get => sysname ??= Upas.SysName.Get();
		set => sysname = value;
	}

	/// <summary>Logs msg to /sys/log/name under the root: the file is opened for every line, so a rotated log is picked up.</summary>
	public static void Log(string name, string msg) => Log(name, msg, DateTime.Now);

	public static void Log(string name, string msg, DateTime now)
	{
		// one open(O_APPEND), write, close: no logging framework to configure at every start (issue 11)
		AppendFile.Write(Root.Path9("/sys/log/" + name), Format(SysName, now, msg));
	}

	/// <summary>
	/// The bytes of one log line, cut at 1024 bytes like Plan 9's, ending in LF. A newline becomes a blank
	/// (Plan 9's syslog), every other control byte (CR, VT, FF, ESC, NUL, DEL, C1) \xNN:
	/// clients put text into these messages, and one event must stay one line that forges nothing on a terminal.
	/// </summary>
	public static byte[] Format(string sys, DateTime now, string msg)
	{
		var b = Encoding.UTF8.GetBytes($"{sys} {PlanTime.Stamp(now)} {EnvAddr.Printable(msg.Replace('\n', ' '))}");
		if (b.Length > MaxLine - 1)
			Array.Resize(ref b, MaxLine - 1);
		Array.Resize(ref b, b.Length + 1);
		b[^1] = (byte)'\n';
		return b;
	}
}
