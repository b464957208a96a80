namespace Upas.Dkim;

/// <summary>The signing algorithms we make and accept (RFC 8301 retired rsa-sha1).</summary>
public enum DkimAlgorithm { RsaSha256, Ed25519Sha256 }

/// <summary>A key file that cannot be used; the message is one printable line.</summary>
public sealed class DkimKeyException(string message) : Exception(message);

/// <summary>Which key signs for a domain: d= and s= of the signature it makes.</summary>
public sealed record DkimSigning(string Domain, string Selector, DkimKey Key);

/// <summary>The RFC 8601 result of one signature.</summary>
public enum DkimResult { None, Pass, Fail, Neutral, Policy, TempError, PermError }

/// <summary>
/// One signature's verdict. Domain = d=, Selector = s=, Algorithm = a= as written, Length = l= when the
/// signature covers only part of the body, Detail one printable line for logs and traces.
/// </summary>
public sealed record DkimOutcome(DkimResult Result, string Domain, string Selector, string Algorithm, long? Length, string Detail);

/// <summary>The names of the results in Authentication-Results (RFC 8601).</summary>
public static class DkimNames
{
	public static string Name(DkimResult r) => r switch {
		DkimResult.Pass => "pass",
		DkimResult.Fail => "fail",
		DkimResult.Neutral => "neutral",
		DkimResult.Policy => "policy",
		DkimResult.TempError => "temperror",
		DkimResult.PermError => "permerror",
		_ => "none",
	};

	/// <summary>The a= tag value of an algorithm.</summary>
	public static string Tag(DkimAlgorithm a) => a == DkimAlgorithm.RsaSha256 ? "rsa-sha256" : "ed25519-sha256";
}
