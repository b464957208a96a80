using System.Security.Cryptography;

namespace Upas.Dkim;

/// <summary>
/// Verifies the DKIM signatures of one message (RFC 6376 6, RFC 8463) as it streams in: the header is kept
/// (up to MaxHeader bytes; signatures of a larger header are permerror), the body only hashed, once per
/// distinct canonicalization and l=. Only the first maxSignatures signatures from the top are evaluated;
/// their keys are looked up together at the end. Nothing here throws: every problem is a result.
/// </summary>
public sealed class DkimVerifier
{
	public const int MaxHeader = 256 * 1024;
	const string FieldName = "DKIM-Signature";

	readonly int maxSignatures;
	byte[] header = new byte[4096];
	int stored, lineStart, lineLen;
	bool lastCr, tooLarge;
	readonly List<Slot> slots = new();
	readonly Dictionary<(bool, long), BodyCanon> canons = new();
	List<RawField> fields = new();
	Task<IReadOnlyList<DkimOutcome>>? finished;

	/// <summary>The time x= is compared with (tests set it).</summary>
	internal DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;

	/// <summary>The empty line (or end of input) has been seen.</summary>
	public bool HeaderDone { get; private set; }

	/// <summary>DKIM-Signature fields seen (valid once HeaderDone), evaluated or not.</summary>
	public int Signatures { get; private set; }

	/// <summary>Whether the header was longer than MaxHeader (its fields past that are not kept).</summary>
	public bool HeaderTooLarge => tooLarge;

	/// <summary>The header's fields named name, each as received (CR LF line ends), once HeaderDone: smtpd's DMARC reads From: here, past its own 16 KB window.</summary>
	public IEnumerable<string> FieldsNamed(string name) =>
		fields.Where(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(f => System.Text.Encoding.Latin1.GetString(f.Bytes.Span));

	sealed class Slot
	{
		public DkimSignature? Sig;
		public DkimOutcome? Early;	// decided from the field alone
		public BodyCanon? Canon;
	}

	public DkimVerifier(int maxSignatures = 8) => this.maxSignatures = Math.Max(0, maxSignatures);

	/// <summary>The message as received, in chunks cut anywhere (LF or CR LF line ends, dot-unstuffed).</summary>
	public void Feed(ReadOnlySpan<byte> data)
	{
		if (finished is not null)
			return;	// the hashes are final
		if (!HeaderDone) {
			var i = 0;
			for (; i < data.Length && !HeaderDone; i++)
				HeaderByte(data[i]);
			data = data[i..];
		}
		if (HeaderDone && data.Length > 0) {
			foreach (var c in canons.Values)
				c.Feed(data);
		}
	}

	void HeaderByte(byte b)
	{
		if (b == '\n') {
			if (lineLen == 0) {
				stored = Math.Min(stored, lineStart);	// the empty line is not part of the header
				EndHeader();
				return;
			}
			if (!lastCr)
				Store((byte)'\r');
			Store(b);
			lineStart = stored;
			lineLen = 0;
			lastCr = false;
			return;
		}
		Store(b);
		lastCr = b == '\r';
		if (!lastCr)
			lineLen++;
	}

	void Store(byte b)
	{
		if (tooLarge)
			return;
		if (stored == MaxHeader) {
			tooLarge = true;
			return;
		}
		if (stored == header.Length)
			Array.Resize(ref header, Math.Min(header.Length * 2, MaxHeader));
		header[stored++] = b;
	}

	void EndHeader()
	{
		HeaderDone = true;
		var kept = HeaderCanon.Crlf(header.AsSpan(0, stored));	// a header that ended without a line end gets one
		header = [];
		fields = HeaderCanon.Fields(kept);
		foreach (var f in fields) {
			if (!f.Name.Equals(FieldName, StringComparison.OrdinalIgnoreCase))
				continue;
			if (Signatures++ >= maxSignatures)
				continue;
			var sig = DkimSignature.Parse(f, Now, out var result, out var why, out var d, out var s, out var a);
			var slot = new Slot();
			slots.Add(slot);
			if (tooLarge)
				slot.Early = new DkimOutcome(DkimResult.PermError, d, s, a, sig?.Length, "header too large");
			else if (sig is null)
				slot.Early = new DkimOutcome(result, d, s, a, null, why);
			else {
				slot.Sig = sig;
				var key = (sig.RelaxedBody, sig.Length ?? -1);
				if (!canons.TryGetValue(key, out var c))
					canons[key] = c = new BodyCanon(sig.RelaxedBody, sig.Length ?? -1);
				slot.Canon = c;
			}
		}
	}

	/// <summary>One outcome per evaluated signature, top first (empty: the message has none).</summary>
	public Task<IReadOnlyList<DkimOutcome>> FinishAsync(IDnsQuery dns, CancellationToken ct) => finished ??= Finish(dns, ct);

	async Task<IReadOnlyList<DkimOutcome>> Finish(IDnsQuery dns, CancellationToken ct)
	{
		if (!HeaderDone)
			EndHeader();
		var hashes = new Dictionary<BodyCanon, byte[]>();
		foreach (var c in canons.Values) {
			hashes[c] = c.Finish();
			c.Dispose();
		}
		var tasks = slots.Select(s => s.Early is { } e ? Task.FromResult(e) : Check(s.Sig!, s.Canon!, hashes[s.Canon!], dns, ct));
		return await Task.WhenAll(tasks);
	}

	async Task<DkimOutcome> Check(DkimSignature sig, BodyCanon canon, byte[] bodyHash, IDnsQuery dns, CancellationToken ct)
	{
		DkimOutcome O(DkimResult r, string detail) => new(r, sig.Domain, sig.Selector, sig.Algorithm, sig.Length, detail);
		try {
			var name = $"{sig.Selector}._domainkey.{sig.Domain}";
			var answer = await dns.TxtAsync(name, ct);
			switch (answer.Status) {
			case DnsStatus.TempError:
				return O(DkimResult.TempError, "key lookup failed (DNS)");
			case DnsStatus.NxDomain or DnsStatus.NoData:
				return O(DkimResult.PermError, "no key");
			}
			if (answer.Records.Count != 1)
				return O(DkimResult.PermError, "several key records");
			using var key = KeyRecord.Parse(answer.Records[0], sig.Alg, out var kr, out var why);
			if (key is null)
				return O(kr, why);
			var testing = key.Testing ? " (key in testing mode, t=y)" : "";
			if (key.Strict && sig.Identity is { } id && !id.Equals(sig.Domain, StringComparison.OrdinalIgnoreCase))
				return O(DkimResult.PermError, "i= is a subdomain of d= but the key is strict (t=s)" + testing);
			if (sig.Length is { } l && canon.Length < l)
				return O(DkimResult.PermError, $"l={l} is longer than the body ({canon.Length} bytes)" + testing);
			if (!CryptographicOperations.FixedTimeEquals(bodyHash, sig.BodyHash))
				return O(DkimResult.Fail, "body hash did not verify" + testing);
			if (!key.Verify(HeaderHash(sig), sig.Signature))
				return O(DkimResult.Fail, "signature did not verify" + testing);
			var partial = sig.Length is { } n && n < canon.Length ? $" (l= covers {n} of {canon.Length} body bytes)" : "";
			return O(DkimResult.Pass, "signature verified" + partial + testing);
		} catch (Exception e) when (e is not OutOfMemoryException) {
			return O(DkimResult.TempError, "verification failed: " + e.GetType().Name);
		}
	}

	byte[] HeaderHash(DkimSignature sig)
	{
		using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
		foreach (var f in HeaderCanon.Select(fields, sig.Headers)) {
			if (f is { } field)
				h.AppendData(sig.RelaxedHeader ? HeaderCanon.Relaxed(field.Bytes.Span) : HeaderCanon.Simple(field.Bytes.Span));
		}
		var self = sig.WithoutB();
		h.AppendData(sig.RelaxedHeader ? HeaderCanon.Relaxed(self, crlf: false) : self);
		return h.GetHashAndReset();
	}
}
