using System.Formats.Asn1;
using System.Security.Cryptography;

namespace Upas.Dkim;

/// <summary>
/// A private signing key: RSA (1024 to 8192 bits, RFC 8301) or Ed25519 (RFC 8463), read from and written
/// as PEM (PKCS#8; PKCS#1 "RSA PRIVATE KEY" read too).
/// </summary>
public sealed class DkimKey : IDisposable
{
	internal const int MinRsaBits = 1024, MaxRsaBits = 8192;
	const string OidRsa = "1.2.840.113549.1.1.1", OidEd25519 = "1.3.101.112";
	const int MaxPemBytes = 64 * 1024;	// a 8192-bit PKCS#8 key is about 6.5 KB of PEM

	readonly RSA? rsa;
	readonly byte[]? seed;	// Ed25519's private key

	public DkimAlgorithm Algorithm { get; }

	/// <summary>RSA modulus bits; 256 for Ed25519.</summary>
	public int Bits { get; }

	DkimKey(RSA r)
	{
		rsa = r;
		Algorithm = DkimAlgorithm.RsaSha256;
		Bits = r.KeySize;
	}

	DkimKey(byte[] s)
	{
		seed = s;
		Algorithm = DkimAlgorithm.Ed25519Sha256;
		Bits = 256;
	}

	/// <summary>A PEM private key file; DkimKeyException with a one-line reason.</summary>
	public static DkimKey Load(string path)
	{
		string text;
		try {
			var info = new FileInfo(path);
			if (Directory.Exists(path))
				throw new DkimKeyException($"{path}: a directory, not a key file");
			if (!info.Exists)
				throw new DkimKeyException($"{path}: no such file");
			if (info.Length > MaxPemBytes)
				throw new DkimKeyException($"{path}: too large for a key file");
			text = File.ReadAllText(path);
		} catch (IOException e) {
			throw new DkimKeyException($"{path}: {e.Message}");
		} catch (UnauthorizedAccessException) {
			throw new DkimKeyException($"{path}: permission denied");
		}
		try {
			return FromPem(text);
		} catch (DkimKeyException e) {
			throw new DkimKeyException($"{path}: {e.Message}");
		}
	}

	/// <summary>A key from PEM text.</summary>
	public static DkimKey FromPem(string text)
	{
		if (!PemEncoding.TryFind(text, out var f))
			throw new DkimKeyException("not a PEM file");
		var label = text[f.Label];
		var der = new byte[f.DecodedDataLength];
		if (!Convert.TryFromBase64Chars(text[f.Base64Data], der, out var n) || n != der.Length)
			throw new DkimKeyException("bad base64 in the PEM file");
		try {
			return label switch {
				"PRIVATE KEY" => Pkcs8(der),
				"RSA PRIVATE KEY" => ImportRsa(r => r.ImportRSAPrivateKey(der, out _)),
				"ENCRYPTED PRIVATE KEY" => throw new DkimKeyException("an encrypted key (store it without a passphrase)"),
				"PUBLIC KEY" or "RSA PUBLIC KEY" => throw new DkimKeyException("a public key, not a private one"),
				_ => throw new DkimKeyException($"unsupported key type \"{label}\" (RSA or Ed25519 only)"),
			};
		} catch (Exception e) when (e is CryptographicException or AsnContentException) {
			throw new DkimKeyException("bad key data in the PEM file");
		}
	}

	static DkimKey Pkcs8(byte[] der)
	{
		var seq = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
		seq.ReadInteger();
		var alg = seq.ReadSequence();
		var oid = alg.ReadObjectIdentifier();
		switch (oid) {
		case OidRsa:
			return ImportRsa(r => r.ImportPkcs8PrivateKey(der, out _));
		case OidEd25519:
			// PrivateKeyInfo.privateKey holds a CurvePrivateKey, itself an OCTET STRING (RFC 8410)
			var inner = seq.ReadOctetString();
			var s = new AsnReader(inner, AsnEncodingRules.DER).ReadOctetString();
			if (s.Length != Ed25519.KeySize)
				throw new DkimKeyException("an Ed25519 key of the wrong size");
			return new DkimKey(s);
		default:
			throw new DkimKeyException($"unsupported key type (algorithm {oid}; RSA or Ed25519 only)");
		}
	}

	static DkimKey ImportRsa(Action<RSA> import)
	{
		var r = RSA.Create();
		try {
			import(r);
			if (r.KeySize < MinRsaBits)
				throw new DkimKeyException($"RSA key of {r.KeySize} bits, fewer than {MinRsaBits} (RFC 8301)");
			if (r.KeySize > MaxRsaBits)
				throw new DkimKeyException($"RSA key of {r.KeySize} bits, more than {MaxRsaBits}");
			return new DkimKey(r);
		} catch {
			r.Dispose();
			throw;
		}
	}

	/// <summary>A new random key.</summary>
	public static DkimKey Generate(DkimAlgorithm alg, int rsaBits = 2048)
	{
		if (alg == DkimAlgorithm.Ed25519Sha256)
			return new DkimKey(RandomNumberGenerator.GetBytes(Ed25519.KeySize));
		if (rsaBits is < MinRsaBits or > MaxRsaBits)
			throw new DkimKeyException($"RSA keys have {MinRsaBits} to {MaxRsaBits} bits");
		return new DkimKey(RSA.Create(rsaBits));
	}

	/// <summary>The key as PKCS#8 PEM.</summary>
	public string PrivatePem()
	{
		if (rsa is not null)
			return PemEncoding.WriteString("PRIVATE KEY", rsa.ExportPkcs8PrivateKey()) + "\n";
		var w = new AsnWriter(AsnEncodingRules.DER);
		using (w.PushSequence()) {
			w.WriteInteger(0);
			using (w.PushSequence())
				w.WriteObjectIdentifier(OidEd25519);
			var inner = new AsnWriter(AsnEncodingRules.DER);
			inner.WriteOctetString(seed);
			w.WriteOctetString(inner.Encode());
		}
		return PemEncoding.WriteString("PRIVATE KEY", w.Encode()) + "\n";
	}

	/// <summary>The public key as the p= of a key record: SubjectPublicKeyInfo for RSA, the raw key for Ed25519.</summary>
	public byte[] PublicKey() => rsa is not null ? rsa.ExportSubjectPublicKeyInfo() : Ed25519.PublicKey(seed);

	/// <summary>The TXT record to publish at selector._domainkey.domain.</summary>
	public string DnsRecord() =>
		$"v=DKIM1; k={(rsa is not null ? "rsa" : "ed25519")}; p={Convert.ToBase64String(PublicKey())}";

	/// <summary>The b= signature of a SHA-256 digest of the canonicalized header (RFC 6376 3.7, RFC 8463 3).</summary>
	internal byte[] SignHash(byte[] sha256) =>
		rsa is not null ? rsa.SignHash(sha256, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1) : Ed25519.Sign(seed, sha256);

	/// <summary>The key's RSA object, or its Ed25519 seed (for tests handing the key to other signers).</summary>
	internal RSA? Rsa => rsa;
	internal byte[]? Seed => seed;

	public void Dispose()
	{
		rsa?.Dispose();
		if (seed is not null)
			CryptographicOperations.ZeroMemory(seed);
	}
}
