using Upas.Send;

namespace Upas.Smtpd;

/// <summary>
/// smtpd -L with the default mailer: the message goes to send's delivery code in this process (Delivery), not
/// to a send process. It is written as it arrives into a Content.Writer (64 KB in memory, the rest in an
/// unlinked spool file); FinishAsync delivers it off the session's thread and answers as the send process
/// would: null for exit 0, else the status, with the lines send prints on stderr as Errors.
/// </summary>
sealed class LocalDeliver : IMessageSink
{
	const int MaxErrLines = 50;
	const int MaxErrLine = 1024;

	/// <summary>One per process: its settings are reread when their files change, its queue ids are its own.</summary>
	static readonly Lazy<Delivery> Shared = new(() => new Delivery(
		Environment.GetEnvironmentVariable("upasname") is { Length: > 0 } un ? un : Send.Posix.UserName(), inProcess: true));

	/// <summary>The library's delivery when smtpd's mailer is the default one (ROOT/bin/upas/send, -m not given or naming it).</summary>
	public static Delivery? For(Options opt) => opt.MailerPath == Root.Path9(Options.DefaultMailer) ? Shared.Value : null;

	readonly Delivery delivery;
	readonly string[] rcpts;
	readonly Content.Writer writer = new(Message.MaxSize);
	readonly WriterStream input;
	List<string> errors = [];

	public LocalDeliver(Delivery delivery, IEnumerable<string> rcpts)
	{
		this.delivery = delivery;
		this.rcpts = [.. rcpts];
		input = new WriterStream(writer);
	}

	public Stream Input => input;
	public IReadOnlyList<string> Errors => errors;

	public async Task<string?> FinishAsync()
	{
		if (input.TooLong || input.Failed is not null) {
			writer.Dispose();
			// what send says: smtpd answers 554 to the first, 450 to the second
			errors = [input.Failed ?? "mail refused: message too long"];
			return "1";
		}
		using var content = writer.Finish();
		Outcome r;
		try {
			// a thread of its own: the delivery blocks (mailbox lock, fsync, pipeto) and must not starve the sessions' pool
			r = await Task.Factory.StartNew(() => delivery.Deliver(content, rcpts, bounce: true), CancellationToken.None,
				TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
		} catch (Exception e) {
			// the send process would have died of it: the session goes on, the client tries again later
			Syslog.Log("smtpd", $"in-process delivery failed: {e.GetType().Name}: {e.Message}");
			return "1";
		}
		errors = r.Err.Take(MaxErrLines).Select(Cut).ToList();
		return r.Status == 0 ? null : r.Status.ToString(System.Globalization.CultureInfo.InvariantCulture);
	}

	/// <summary>A line as smtpd keeps one of the mailer's: its first 1024 bytes.</summary>
	static string Cut(string line)
	{
		var b = System.Text.Encoding.UTF8.GetBytes(line);
		return b.Length <= MaxErrLine ? line : System.Text.Encoding.UTF8.GetString(b, 0, MaxErrLine);
	}

	/// <summary>Nothing was delivered yet: the bytes held are dropped, the spool file closed.</summary>
	public void Abort() => writer.Dispose();

	/// <summary>A write-only stream into the writer; past the maximum the rest is swallowed and TooLong set, as send reads to the end and then refuses.</summary>
	sealed class WriterStream(Content.Writer w) : Stream
	{
		public bool TooLong { get; private set; }
		/// <summary>Why the spool file could not be written ("Mail …", as send says it), or null.</summary>
		public string? Failed { get; private set; }

		public override void Write(ReadOnlySpan<byte> buffer)
		{
			if (TooLong || Failed is not null)
				return;
			try {
				if (!w.Append(buffer))
					TooLong = true;
			} catch (TempFail e) {
				Failed = "Mail " + e.Message;
			}
		}

		public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

		public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
		{
			Write(buffer.Span);
			return ValueTask.CompletedTask;
		}

		public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
		{
			Write(buffer.AsSpan(offset, count));
			return Task.CompletedTask;
		}

		public override bool CanRead => false;
		public override bool CanSeek => false;
		public override bool CanWrite => true;
		public override long Length => throw new NotSupportedException();
		public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
		public override void Flush() { }
		public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
		public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
		public override void SetLength(long value) => throw new NotSupportedException();
	}
}
