using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace Upas.Smtpd;

enum ReadStatus { Ok, TooLong, Eof, Timeout }

/// <summary>
/// The connection's byte streams with one input buffer: command lines, raw data for DATA, replies.
/// Output is buffered and flushed only before a read would wait, so pipelined commands get their
/// replies in one write (RFC 2920). The input buffer is rented only while it holds input or a read is
/// filling it: an idle session on a socket waits with a zero-byte read and holds no buffer (issue 11).
/// </summary>
sealed class SmtpIO(Stream input, Stream output)
{
	public const int MaxCommandLine = 4096;
	const int MaxQueued = 64 * 1024;
	const int BufSize = 64 * 1024;
	Stream inp = input, outp = output;
	byte[] buf = [];	// from ArrayPool.Shared while rented
	int start, end;
	Task<int>? pending;
	bool eof;
	readonly MemoryStream outbuf = new();

	/// <summary>Called with every command line received (for -d).</summary>
	public Action<string>? OnLine { get; set; }
	/// <summary>Called with every reply line sent, without CR LF (for -d).</summary>
	public Action<string>? OnReply { get; set; }
	/// <summary>Suppresses OnLine while secrets are read (AUTH).</summary>
	public bool Quiet { get; set; }

	public int Buffered => end - start;
	public ReadOnlySpan<byte> Data => buf.AsSpan(start, end - start);
	public void Consume(int n) => start += n;

	public void Reply(string line)
	{
		OnReply?.Invoke(line);
		var b = Encoding.Latin1.GetBytes(line + "\r\n");
		outbuf.Write(b);
	}

	/// <summary>How long a write of replies may wait for the client to read (the idle timeout and the session deadline).</summary>
	public Func<TimeSpan> WriteLimit { get; set; } = () => Timeout.InfiniteTimeSpan;

	/// <summary>A write timed out or failed: the client is treated as gone, every later read sees end of input.</summary>
	public bool Broken { get; private set; }

	/// <summary>Broken because the client did not read within WriteLimit (not because it went away).</summary>
	public bool WriteTimedOut { get; private set; }

	public async Task FlushAsync()
	{
		if (outbuf.Length == 0)
			return;
		if (Broken) {
			outbuf.SetLength(0);
			return;
		}
		try {
			var w = WriteAll(outbuf.GetBuffer().AsMemory(0, (int)outbuf.Length));
			// a client that never reads would block us for ever: it must not hold its slot. The usual write
			// completes at once and needs no timer (a Task.Delay would live on for the whole limit).
			if (!w.IsCompleted && !await Finishes(w, WriteLimit())) {
				Broken = WriteTimedOut = true;
				_ = w.ContinueWith(t => t.Exception, TaskScheduler.Default); // ends when the connection is closed
			} else
				await w;
		} catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException) {
			Broken = true; // the client is gone; the next read sees end of input
		}
		outbuf.SetLength(0);
	}

	/// <summary>Whether t ends within limit; its timer goes away with it, not at the end of the limit.</summary>
	static async Task<bool> Finishes(Task t, TimeSpan limit)
	{
		try {
			await t.WaitAsync(limit);
		} catch (TimeoutException) {
			return false;
		} catch {
			// t failed: the caller awaits it and sees why
		}
		return true;
	}

	async Task WriteAll(ReadOnlyMemory<byte> b)
	{
		await outp.WriteAsync(b);
		await outp.FlushAsync();
	}

	/// <summary>Starts a read without waiting for it (the early-talker check looks at it later).</summary>
	public Task<int> StartRead()
	{
		if (pending is not null)
			return pending;
		if (eof)
			return Task.FromResult(0);
		if (start == end)
			start = end = 0;
		else if (end == buf.Length) {
			Buffer.BlockCopy(buf, start, buf, 0, end - start);
			end -= start;
			start = 0;
		}
		pending = ReadSome(end);
		return pending;
	}

	async Task<int> ReadSome(int at)
	{
		try {
			if (at == 0 && WaitsWithoutBuffer(inp)) {
				// nothing buffered: wait for the client's next bytes without holding 64 KB
				Release();
				_ = await inp.ReadAsync(Memory<byte>.Empty); // 0: data waits, or end of input (the next read says which)
			}
			if (buf.Length == 0)
				buf = ArrayPool<byte>.Shared.Rent(BufSize);
			return await inp.ReadAsync(buf.AsMemory(at, buf.Length - at));
		} catch (IOException) {
			return 0;
		} catch (ObjectDisposedException) {
			return 0;
		} catch (System.Security.Authentication.AuthenticationException) {
			return 0;
		}
	}

	// a socket (or TLS over one) can wait for data with a zero-byte read; a pipe would return 0 at once
	static bool WaitsWithoutBuffer(Stream s) => s is NetworkStream or SslStream;

	/// <summary>Gives the input buffer back to the pool; only when it is empty and no read is filling it.</summary>
	void Release()
	{
		if (buf.Length == 0 || start != end)
			return;
		ArrayPool<byte>.Shared.Return(buf);
		buf = [];
		start = end = 0;
	}

	/// <summary>At the end of the session: the buffer goes back to the pool unless a read still fills it.</summary>
	public void Close()
	{
		if (pending is null || pending.IsCompleted) {
			start = end; // what is left unread is never read
			Release();
		}
	}

	/// <summary>Reads more input into the buffer; false on end of input or timeout.</summary>
	public async Task<ReadStatus> FillAsync(TimeSpan timeout)
	{
		await FlushAsync();
		if (Broken)
			return ReadStatus.Eof;
		var t = StartRead();
		if (!t.IsCompleted && !await Finishes(t, timeout))
			return ReadStatus.Timeout;
		pending = null;
		var n = await t;
		if (n <= 0) {
			eof = true;
			return ReadStatus.Eof;
		}
		end += n;
		return ReadStatus.Ok;
	}

	/// <summary>
	/// One command line, without its line end (LF or CR LF; a bare LF still ends a command, decisions #2).
	/// A line over MaxCommandLine bytes is read to its end and reported as TooLong. The whole line must
	/// arrive within timeout: a client dribbling one byte at a time does not extend it.
	/// </summary>
	public async Task<(ReadStatus, string)> ReadLineAsync(TimeSpan timeout)
	{
		var toolong = false;
		var until = DateTime.UtcNow + timeout;
		if (outbuf.Length > MaxQueued)
			await FlushAsync(); // a client pipelining without reading must not grow our memory
		if (Broken)
			return (ReadStatus.Eof, ""); // the client does not read: run nothing more it sent ahead
		while (true) {
			var span = buf.AsSpan(start, end - start);
			var lf = span.IndexOf((byte)'\n');
			if (lf >= 0) {
				var line = span[..lf];
				start += lf + 1;
				if (toolong || line.Length > MaxCommandLine)
					return (ReadStatus.TooLong, "");
				if (line.Length > 0 && line[^1] == '\r')
					line = line[..^1];
				var text = Encoding.Latin1.GetString(line);
				if (!Quiet)
					OnLine?.Invoke(text);
				return (ReadStatus.Ok, text);
			}
			if (span.Length > MaxCommandLine) {
				toolong = true; // keep memory bounded: drop what we have, find the end
				start = end = 0;
			}
			var left = until - DateTime.UtcNow;
			var st = await FillAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero);
			if (st != ReadStatus.Ok)
				return (st, "");
		}
	}

	/// <summary>Discards what the client sent ahead (after STARTTLS: CVE-2011-0411).</summary>
	public void DiscardBuffered() => start = end = 0;

	/// <summary>Swaps in new streams (TLS) once the handshake is done.</summary>
	public void Replace(Stream s)
	{
		inp = outp = s;
		DiscardBuffered();
		pending = null;
	}

	public Stream Input => inp;
	public Stream Output => outp;
}
