using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>Takes the bytes of a message piece by piece; false stops the copy (a write failed).</summary>
delegate bool Sink(ReadOnlySpan<byte> bytes);

/// <summary>
/// The bytes of a message without holding them all (mailer.md §2 step 2): pieces in memory and ranges of a
/// spool file, read back in 64 KB chunks. A 64 MB message costs send 64 KB of memory, not six copies.
/// Disposing it closes its spool files (a Content made from it by From or Concat shares them): smtpd -L
/// delivers message after message and must not keep a descriptor per message.
/// </summary>
sealed class Content : IDisposable
{
	const int Chunk = 64 * 1024;

	readonly record struct Part(byte[]? Mem, Spool? File, long Offset, long Length);

	readonly List<Part> parts = [];

	public long Length { get; private set; }

	Content() { }

	public static Content Of(byte[] bytes)
	{
		var c = new Content();
		c.Add(new Part(bytes, null, 0, bytes.Length));
		return c;
	}

	/// <summary>pieces one after the other: byte arrays and contents.</summary>
	public static Content Concat(params object[] pieces)
	{
		var c = new Content();
		foreach (var p in pieces) {
			if (p is byte[] b)
				c.Add(new Part(b, null, 0, b.Length));
			else if (p is Content o)
				foreach (var q in o.parts)
					c.Add(q);
		}
		return c;
	}

	void Add(Part p)
	{
		if (p.Length == 0)
			return;
		parts.Add(p);
		Length += p.Length;
	}

	/// <summary>
	/// Reads all of input: the first 64 KB in memory, the rest into an unlinked spool file in $TMPDIR.
	/// More than max bytes: null (the message is too long).
	/// </summary>
	public static Content? Read(Stream input, long max)
	{
		using var w = new Writer(max);
		var buf = new byte[Chunk];
		int got;
		while ((got = input.Read(buf, 0, buf.Length)) > 0) {
			if (!w.Append(buf.AsSpan(0, got)))
				return null;
		}
		return w.Finish();
	}

	/// <summary>Closes the spool files of every part.</summary>
	public void Dispose()
	{
		foreach (var p in parts)
			p.File?.Dispose();
	}

	/// <summary>Builds a Content as its bytes arrive, never holding more than 64 KB of it in memory; disposing an unfinished one drops its spool.</summary>
	public sealed class Writer(long max) : IDisposable
	{
		byte[]? head = new byte[4096]; // grown to 64 KB as needed: most messages are a few KB
		int n;
		Spool? spool;
		long spooled;

		public long Length => n + spooled;

		/// <summary>Adds bytes; false when the whole would pass max (the message is too long).</summary>
		public bool Append(ReadOnlySpan<byte> b)
		{
			if (Length + b.Length > max)
				return false;
			var h = head ?? throw new InvalidOperationException("finished");
			if (n + b.Length > h.Length && h.Length < Chunk) {
				Array.Resize(ref h, (int)Math.Min(Chunk, Math.Max(2L * h.Length, n + b.Length)));
				head = h;
			}
			var k = Math.Min(b.Length, h.Length - n);
			b[..k].CopyTo(h.AsSpan(n));
			n += k;
			if (k < b.Length) {
				spool ??= Spool.Create();
				spool.Append(b[k..]);
				spooled += b.Length - k;
			}
			return true;
		}

		/// <summary>What was written, as a Content.</summary>
		public Content Finish()
		{
			var c = new Content();
			c.Add(new Part(head, null, 0, n));
			if (spool is not null)
				c.Add(new Part(null, spool, 0, spooled));
			head = null;
			spool = null; // the Content's now
			return c;
		}

		public void Dispose()
		{
			head = null;
			spool?.Dispose();
			spool = null;
		}
	}

	/// <summary>The bytes from offset on.</summary>
	public Content From(long offset)
	{
		var c = new Content();
		foreach (var p in parts) {
			if (offset >= p.Length) {
				offset -= p.Length;
				continue;
			}
			c.Add(p with { Offset = p.Offset + offset, Length = p.Length - offset });
			offset = 0;
		}
		return c;
	}

	/// <summary>The first n bytes at most, in memory (the envelope line, the header).</summary>
	public byte[] Head(int n)
	{
		var m = new MemoryStream();
		CopyTo(b => {
			m.Write(b[..Math.Min(b.Length, n - (int)m.Length)]);
			return m.Length < n;
		});
		return m.ToArray();
	}

	/// <summary>The last byte, or -1 when empty.</summary>
	public int Last() => Length == 0 ? -1 : From(Length - 1).Head(1)[0];

	/// <summary>Hands every byte to sink in order; false when sink said stop.</summary>
	public bool CopyTo(Sink sink)
	{
		byte[]? buf = null;
		foreach (var p in parts) {
			if (p.Mem is { } m) {
				if (!sink(m.AsSpan((int)p.Offset, (int)p.Length)))
					return false;
				continue;
			}
			buf ??= new byte[Chunk];
			for (long off = 0; off < p.Length;) {
				var n = p.File!.Read(p.Offset + off, buf.AsSpan(0, (int)Math.Min(buf.Length, p.Length - off)));
				if (!sink(buf.AsSpan(0, n)))
					return false;
				off += n;
			}
		}
		return true;
	}

	/// <summary>The same bytes with every line starting "From " given one leading space (the mailbox's escape, mailer.md §3).</summary>
	public bool CopyEscaped(Sink sink)
	{
		var e = new FromEscaper(sink);
		return CopyTo(e.Feed) && e.Flush();
	}

	/// <summary>How many bytes CopyEscaped gives.</summary>
	public long EscapedLength()
	{
		long n = 0;
		CopyEscaped(b => {
			n += b.Length;
			return true;
		});
		return n;
	}
}

/// <summary>Gathers small pieces (one per line after escaping) into 64 KB writes; the buffer is rented, and given back by Dispose.</summary>
sealed class Gather(Sink inner) : IDisposable
{
	byte[]? buf = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
	int n;

	/// <summary>How many bytes Put has taken so far, written or still gathered.</summary>
	public long Taken { get; private set; }

	public bool Put(ReadOnlySpan<byte> b)
	{
		var h = buf ?? throw new ObjectDisposedException(nameof(Gather));
		if (n + b.Length > h.Length && !Flush())
			return false;
		Taken += b.Length;
		if (b.Length >= h.Length)
			return inner(b);
		b.CopyTo(h.AsSpan(n));
		n += b.Length;
		return true;
	}

	public bool Flush()
	{
		var m = n;
		n = 0;
		return m == 0 || inner(buf.AsSpan(0, m));
	}

	/// <summary>After a Flush and a cut of the file back to taken bytes: count from there again.</summary>
	public void Rewind(long taken) => Taken = taken;

	public void Dispose()
	{
		if (buf is { } b)
			System.Buffers.ArrayPool<byte>.Shared.Return(b);
		buf = null;
	}
}

/// <summary>Escapes lines beginning "From " with a space as the bytes stream by, a "From " cut between two pieces included.</summary>
sealed class FromEscaper(Sink sink)
{
	static readonly byte[] From = "From "u8.ToArray();
	static readonly byte[] Escaped = " From "u8.ToArray();
	bool bol = true;
	int matched; // bytes of "From " seen at the start of the current line, not yet passed on

	public bool Feed(ReadOnlySpan<byte> s)
	{
		var i = 0;
		while (i < s.Length) {
			if (bol) {
				while (i < s.Length && matched < From.Length && s[i] == From[matched]) {
					matched++;
					i++;
				}
				if (matched == From.Length) {
					matched = 0;
					bol = false;
					if (!sink(Escaped))
						return false;
					continue;
				}
				if (i == s.Length)
					return true; // undecided until the next piece
				bol = false;
				if (matched > 0 && !sink(From.AsSpan(0, matched)))
					return false;
				matched = 0;
			}
			var lf = s[i..].IndexOf((byte)'\n');
			var end = lf < 0 ? s.Length : i + lf + 1;
			if (!sink(s[i..end]))
				return false;
			bol = lf >= 0;
			i = end;
		}
		return true;
	}

	public bool Flush()
	{
		var m = matched;
		matched = 0;
		return m == 0 || sink(From.AsSpan(0, m));
	}
}

/// <summary>The file the part of a message past its first 64 KB waits in: created exclusively, unlinked at once, read with pread.</summary>
sealed class Spool : IDisposable
{
	int fd;
	long size;

	Spool(int fd) => this.fd = fd;

	public static Spool Create()
	{
		try {
			return new Spool(TempFile.CreateUnlinked("upas-send"));
		} catch (IOException e) {
			throw new TempFail(e.Message);
		}
	}

	/// <summary>Closes the file (it goes, being unlinked); once only.</summary>
	public void Dispose()
	{
		var f = Interlocked.Exchange(ref fd, -1);
		if (f >= 0)
			Syscall.close(f);
	}

	public void Append(ReadOnlySpan<byte> b)
	{
		unsafe {
			fixed (byte* p = b) {
				for (var off = 0; off < b.Length;) {
					var n = Syscall.pwrite(fd, p + off, (ulong)(b.Length - off), size);
					if (n < 0 && Stdlib.GetLastError() == Errno.EINTR)
						continue;
					if (n <= 0)
						throw new TempFail($"cannot write the spool file: {Posix.Err()}");
					off += (int)n;
					size += n;
				}
			}
		}
	}

	public int Read(long offset, Span<byte> b)
	{
		unsafe {
			fixed (byte* p = b) {
				while (true) {
					var n = Syscall.pread(fd, p, (ulong)b.Length, offset);
					if (n < 0 && Stdlib.GetLastError() == Errno.EINTR)
						continue;
					if (n <= 0)
						throw new TempFail($"cannot read the spool file: {(n < 0 ? Posix.Err() : "short")}");
					return (int)n;
				}
			}
		}
	}
}
