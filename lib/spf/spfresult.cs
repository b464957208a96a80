namespace Upas.Spf;

/// <summary>The results of RFC 7208 check_host() (§2.6).</summary>
public enum SpfResult { None, Neutral, Pass, Fail, SoftFail, TempError, PermError }

/// <summary>
/// What check_host() found. Domain: the domain checked (the one given). Explanation: for a Fail, the expanded
/// exp= text when the record has one and it could be fetched, else null. Detail: one printable line for logs
/// and traces ("matched -all", "too many DNS lookups", …).
/// </summary>
public sealed record SpfOutcome(SpfResult Result, string Domain, string? Explanation, string Detail);

/// <summary>The results' names as Received-SPF and Authentication-Results write them.</summary>
public static class SpfNames
{
	public static string Name(SpfResult r) => r switch {
		SpfResult.Pass => "pass",
		SpfResult.Fail => "fail",
		SpfResult.SoftFail => "softfail",
		SpfResult.Neutral => "neutral",
		SpfResult.None => "none",
		SpfResult.TempError => "temperror",
		_ => "permerror",
	};
}
