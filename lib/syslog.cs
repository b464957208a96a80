using System.Text;
using NLog;
using NLog.Config;
using NLog.Targets;

namespace Upas;

/// <summary>Plan 9 syslog(2): "sysname Mon dd hh:mm:ss message" appended to /sys/log/NAME, only if that file exists.</summary>
public static class Syslog
{
	const int MaxLine = 1024;
	static readonly LogFactory Factory = Configure();
	static string? sysname;

	public static string SysName
	{
		get => sysname ??= Upas.SysName.Get();
		set => sysname = value;
	}

	static LogFactory Configure()
	{
		var f = new LogFactory();
		var conf = new LoggingConfiguration(f);
		conf.AddRuleForAllLevels(new Plan9LogTarget { Name = "plan9", Layout = "${message}" });
		f.Configuration = conf;
		return f;
	}

	/// <summary>Logs msg to /sys/log/name under the root.</summary>
	public static void Log(string name, string msg) => Log(name, msg, DateTime.Now);

	public static void Log(string name, string msg, DateTime now)
	{
		var path = Root.Path9("/sys/log/" + name);
		var line = Format(SysName, now, msg);
		Factory.GetLogger(path).Log(LogEventInfo.Create(LogLevel.Info, path, null, "{0}", [line]));
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

	/// <summary>NLog target: the logger's name is the file, the message carries the formatted bytes.</summary>
	sealed class Plan9LogTarget : TargetWithLayout
	{
		protected override void Write(LogEventInfo e)
		{
			if (e.Parameters is [byte[] line])
				AppendFile.Write(e.LoggerName ?? "", line);
		}
	}
}
