using System.Runtime.InteropServices;

namespace Upas.Dkim;

/// <summary>
/// Ed25519 (RFC 8032) through OpenSSL's libcrypto, which .NET loads on Linux anyway: the BCL has none.
/// Keys are the raw 32-byte seed and public key; signing is PureEd25519 (no digest of ours).
/// </summary>
static unsafe partial class Ed25519
{
	const string Lib = "libcrypto.so.3";
	const int NidEd25519 = 1087;
	public const int KeySize = 32, SignatureSize = 64;

	[LibraryImport(Lib)] private static partial nint EVP_PKEY_new_raw_private_key(int type, nint engine, byte* key, nuint len);
	[LibraryImport(Lib)] private static partial nint EVP_PKEY_new_raw_public_key(int type, nint engine, byte* key, nuint len);
	[LibraryImport(Lib)] private static partial int EVP_PKEY_get_raw_public_key(nint pkey, byte* pub, nuint* len);
	[LibraryImport(Lib)] private static partial void EVP_PKEY_free(nint pkey);
	[LibraryImport(Lib)] private static partial nint EVP_MD_CTX_new();
	[LibraryImport(Lib)] private static partial void EVP_MD_CTX_free(nint ctx);
	[LibraryImport(Lib)] private static partial int EVP_DigestSignInit(nint ctx, nint pctx, nint md, nint engine, nint pkey);
	[LibraryImport(Lib)] private static partial int EVP_DigestSign(nint ctx, byte* sig, nuint* siglen, byte* tbs, nuint tbslen);
	[LibraryImport(Lib)] private static partial int EVP_DigestVerifyInit(nint ctx, nint pctx, nint md, nint engine, nint pkey);
	[LibraryImport(Lib)] private static partial int EVP_DigestVerify(nint ctx, byte* sig, nuint siglen, byte* tbs, nuint tbslen);
	[LibraryImport(Lib)] private static partial void ERR_clear_error();

	static nint Private(ReadOnlySpan<byte> seed)
	{
		if (seed.Length != KeySize)
			throw new DkimKeyException("an Ed25519 private key has 32 bytes");
		fixed (byte* p = seed) {
			var k = EVP_PKEY_new_raw_private_key(NidEd25519, 0, p, KeySize);
			if (k == 0)
				Fail("cannot make an Ed25519 key");
			return k;
		}
	}

	static void Fail(string why)
	{
		ERR_clear_error();	// leave nothing on the thread's queue for .NET's own OpenSSL calls to trip on
		throw new DkimKeyException(why);
	}

	/// <summary>The public key of a private key (its seed).</summary>
	public static byte[] PublicKey(ReadOnlySpan<byte> seed)
	{
		var k = Private(seed);
		try {
			var pub = new byte[KeySize];
			nuint n = KeySize;
			fixed (byte* p = pub) {
				if (EVP_PKEY_get_raw_public_key(k, p, &n) != 1 || n != KeySize)
					Fail("cannot derive the Ed25519 public key");
			}
			return pub;
		} finally {
			EVP_PKEY_free(k);
		}
	}

	public static byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message)
	{
		var k = Private(seed);
		var ctx = EVP_MD_CTX_new();
		try {
			var sig = new byte[SignatureSize];
			nuint n = SignatureSize;
			fixed (byte* s = sig)
			fixed (byte* m = message) {
				if (ctx == 0 || EVP_DigestSignInit(ctx, 0, 0, 0, k) != 1 || EVP_DigestSign(ctx, s, &n, m, (nuint)message.Length) != 1 || n != SignatureSize)
					Fail("Ed25519 signing failed");
			}
			return sig;
		} finally {
			EVP_MD_CTX_free(ctx);
			EVP_PKEY_free(k);
		}
	}

	/// <summary>Whether sig is pub's signature of message; false for any malformed input.</summary>
	public static bool Verify(ReadOnlySpan<byte> pub, ReadOnlySpan<byte> message, ReadOnlySpan<byte> sig)
	{
		if (pub.Length != KeySize || sig.Length != SignatureSize)
			return false;
		nint k, ctx;
		fixed (byte* p = pub)
			k = EVP_PKEY_new_raw_public_key(NidEd25519, 0, p, KeySize);
		if (k == 0) {
			ERR_clear_error();
			return false;
		}
		ctx = EVP_MD_CTX_new();
		try {
			fixed (byte* s = sig)
			fixed (byte* m = message) {
				var ok = ctx != 0 && EVP_DigestVerifyInit(ctx, 0, 0, 0, k) == 1 && EVP_DigestVerify(ctx, s, SignatureSize, m, (nuint)message.Length) == 1;
				ERR_clear_error();
				return ok;
			}
		} finally {
			EVP_MD_CTX_free(ctx);
			EVP_PKEY_free(k);
		}
	}
}
