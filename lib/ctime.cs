using System.Globalization;

namespace Upas;

/// <summary>Plan 9 date formats: ctime(2) and the 15-character syslog stamp.</summary>
public static class PlanTime
{
	static readonly string[] Days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
	static readonly string[] Months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

	public static string Month(int m) => Months[m - 1];
	public static string Day(DayOfWeek d) => Days[(int)d];

	/// <summary>"Mon Nov 23 23:23:33 GMT 2026", as the From_ line and Received: use.</summary>
	public static string Ctime(DateTime local)
	{
		return string.Create(CultureInfo.InvariantCulture,
			$"{Day(local.DayOfWeek)} {Month(local.Month)} {local.Day,2} {local:HH:mm:ss} {Zone(local)} {local.Year}");
	}

	/// <summary>"Nov  3 01:21:00": the date part of a syslog line.</summary>
	public static string Stamp(DateTime local)
	{
		return string.Create(CultureInfo.InvariantCulture, $"{Month(local.Month)} {local.Day,2} {local:HH:mm:ss}");
	}

	/// <summary>
	/// The zone's abbreviation (EST, GMT); .NET gives long names for UTC, Plan 9 prints a short one. A host on
	/// UTC (no offset, no summer time: TZ=UTC, Etc/UTC, an /etc/localtime of UTC) is GMT, as Plan 9's ctime says.
	/// </summary>
	public static string Zone(DateTime local) => Zone(TimeZoneInfo.Local, local);

	internal static string Zone(TimeZoneInfo tz, DateTime local)
	{
		if (tz.BaseUtcOffset == TimeSpan.Zero && !tz.SupportsDaylightSavingTime)
			return "GMT";
		var name = tz.IsDaylightSavingTime(local) ? tz.DaylightName : tz.StandardName;
		if (name.Length > 0 && name.Length <= 6 && !name.Contains(' '))
			return name;
		var off = tz.GetUtcOffset(local);
		if (off == TimeSpan.Zero)
			return "GMT";
		return NumericZone(off);
	}

	/// <summary>"+0100", "-0500": RFC 5322 zone.</summary>
	public static string NumericZone(TimeSpan off)
	{
		var sign = off < TimeSpan.Zero ? '-' : '+';
		off = off.Duration();
		return string.Create(CultureInfo.InvariantCulture, $"{sign}{off.Hours:D2}{off.Minutes:D2}");
	}
}
