using System.Security.Cryptography;

namespace Upas.Dkim;

/// <summary>
/// A public key record (RFC 6376 3.6.1): v=DKIM1 (first if present), k=rsa or ed25519, h= allowing
/// sha256, s= allowing email, t= flags (y testing, s strict), p= the key (empty: revoked).
/// RSA keys must have 1024 to 8192 bits (RFC 8301), Ed25519 keys 32 bytes (RFC 8463).
/// </summary>
sealed class KeyRecord : IDisposable
{
	public const int MaxRecordLength = 8192;	// twice a 8192-bit key's base64; more is hostile
	public DkimAlgorithm Alg;
	public RSA? Rsa;
	public byte[]? Ed;
	public bool Testing, Strict;

	/// <summary>The key, or null with a result (PermError; Fail for a revoked key) and why.</summary>
	public static KeyRecord? Parse(string text, DkimAlgorithm want, out DkimResult result, out string why)
	{
		result = DkimResult.PermError;
		if (text.Length > MaxRecordLength) {
			why = "key record too long";
			return null;
		}
		var tags = TagList.Parse(text, out why);
		if (tags is null) {
			why = "key record: " + why;
			return null;
		}
		if (tags["v"] is { } v && (tags.Tags[0].Key != "v" || v != "DKIM1")) {
			why = "key record: bad v=";
			return null;
		}
		var k = tags["k"] ?? "rsa";
		DkimAlgorithm alg;
		if (k == "rsa")
			alg = DkimAlgorithm.RsaSha256;
		else if (k == "ed25519")
			alg = DkimAlgorithm.Ed25519Sha256;
		else {
			why = "key record: unknown key type k=" + DkimSignature.Printable(k);
			return null;
		}
		if (alg != want) {
			why = $"key record: key type k={k} does not match a=";
			return null;
		}
		if (tags["h"] is { } h && !TagList.Squeeze(h).Split(':').Contains("sha256")) {
			why = "key record: h= does not allow sha256";
			return null;
		}
		if (tags["s"] is { } s && !TagList.Squeeze(s).Split(':').Any(x => x is "*" or "email")) {
			why = "key record: s= does not allow email";
			return null;
		}
		var flags = TagList.Squeeze(tags["t"] ?? "").Split(':');
		if (tags["p"] is not { } p) {
			why = "key record: missing tag p=";
			return null;
		}
		var der = DkimSignature.Base64(p);
		if (der is null) {
			why = "key record: bad base64 in p=";
			return null;
		}
		if (der.Length == 0) {
			result = DkimResult.Fail;
			why = "key revoked (empty p=)";
			return null;
		}
		var r = new KeyRecord { Alg = alg, Testing = flags.Contains("y"), Strict = flags.Contains("s") };
		if (alg == DkimAlgorithm.Ed25519Sha256) {
			if (der.Length != Ed25519.KeySize) {
				why = $"key record: Ed25519 key of {der.Length} bytes, not 32";
				return null;
			}
			r.Ed = der;
			return r;
		}
		var rsa = RSA.Create();
		try {
			try {
				rsa.ImportSubjectPublicKeyInfo(der, out _);
			} catch (CryptographicException) {
				rsa.ImportRSAPublicKey(der, out _);	// some publish the bare PKCS#1 key
			}
		} catch (CryptographicException) {
			rsa.Dispose();
			why = "key record: bad RSA key in p=";
			return null;
		}
		if (rsa.KeySize < DkimKey.MinRsaBits || rsa.KeySize > DkimKey.MaxRsaBits) {
			why = $"key record: RSA key of {rsa.KeySize} bits (allowed {DkimKey.MinRsaBits} to {DkimKey.MaxRsaBits})";
			rsa.Dispose();
			return null;
		}
		r.Rsa = rsa;
		return r;
	}

	public bool Verify(byte[] sha256, byte[] sig) => Rsa is not null
		? Rsa.VerifyHash(sha256, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
		: Ed25519.Verify(Ed, sha256, sig);

	public void Dispose() => Rsa?.Dispose();
}
