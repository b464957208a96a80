using System.Diagnostics;
using System.Text;

namespace Upas.Smtpd;

/// <summary>
/// -d: one connection's trace in its own file /sys/log/smtpdb/SECONDS.PID[.N], mode 0662 (decisions #13).
/// Received bytes are echoed as read; replies carry the seconds since the start, right-aligned in 3 columns.
/// </summary>
sealed class Trace : IDisposable
{
	readonly FileStream? f;
	readonly Stopwatch clock = Stopwatch.StartNew();
	public string? Path { get; }

	Trace(FileStream? f, string? path)
	{
		this.f = f;
		Path = path;
	}

	public static readonly Trace Off = new(null, null);

	public bool On => f is not null;

	/// <summary>Creates the trace file; on failure calls fail once and returns Off.</summary>
	public static Trace Open(DateTime now, Action<string> fail)
	{
		var dir = Root.Path9("/sys/log/smtpdb");
		var secs = new DateTimeOffset(now).ToUnixTimeSeconds();
		var pid = Environment.ProcessId;
		var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
		string? err = null;
		for (var n = 0; n < 1000; n++) {
			var name = n == 0 ? $"{secs}.{pid}" : $"{secs}.{pid}.{n}";
			var path = System.IO.Path.Join(dir, name);
			try {
				// O_CREAT|O_EXCL: a link planted under the name is never followed
				var fs = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode });
				// the umask must not take the bits 0662 promises; fchmod, as the name may be swapped for a link by now
				File.SetUnixFileMode(fs.SafeFileHandle, mode);
				var t = new Trace(fs, path);
				t.Line($"{pid} smtpd {PlanTime.Ctime(now)}");
				return t;
			} catch (IOException e) when (File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null) {
				err = e.Message; // another session of this process took it: try the next name
			} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
				fail($"can't create debug file {System.IO.Path.Join("/sys/log/smtpdb", name)}: {e.Message}");
				return Off;
			}
		}
		fail($"can't create debug file in /sys/log/smtpdb: {err}");
		return Off;
	}

	/// <summary>One line; control bytes the client sent are shown escaped (\xNN), never written raw.</summary>
	public void Line(string s) => Write(Encoding.UTF8.GetBytes(EnvAddr.Printable(s) + "\n"));

	/// <summary>A reply or a command line, stamped with the seconds since the connection started.</summary>
	public void Reply(string s) => Line($"{(int)clock.Elapsed.TotalSeconds,3} {s}");

	public void Received(string s) => Reply(s);

	/// <summary>Message bytes as read, lines kept: any control byte but LF, TAB and the CR of a CR LF as \xNN.</summary>
	public void Input(ReadOnlyMemory<byte> b)
	{
		if (f is null)
			return;
		var span = b.Span;
		var o = new List<byte>(span.Length + 16);
		for (var i = 0; i < span.Length; i++) {
			var c = span[i];
			if (c >= 0x20 && c != 0x7f || c is (byte)'\n' or (byte)'\t' || c == '\r' && i + 1 < span.Length && span[i + 1] == '\n')
				o.Add(c);
			else
				o.AddRange(Encoding.ASCII.GetBytes($"\\x{c:x2}"));
		}
		Write(o.ToArray());
	}

	void Write(ReadOnlySpan<byte> b)
	{
		if (f is null)
			return;
		try {
			f.Write(b);
			f.Flush();
		} catch (IOException) {
		}
	}

	public void Dispose() => f?.Dispose();
}
