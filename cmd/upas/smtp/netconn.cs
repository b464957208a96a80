using System.Net;
using System.Net.Sockets;

namespace Upas.Smtpd;

/// <summary>The connection smtpd was started on: stdin/stdout, and the two ends' addresses.</summary>
sealed class NetConn
{
	public required Stream Stream { get; init; }
	public required string Lsys { get; init; }
	public required string Rsys { get; init; }
	/// <summary>The network root passed to validatesender (Plan 9: /net or /net.alt).</summary>
	public string NetRoot { get; init; } = "/net";

	/// <summary>
	/// With -n: a Plan 9 connection directory (files local and remote holding addr!port), or /dev/fd/N;
	/// without: getpeername on stdin, then the peer variables of socat and ucspi-tcp.
	/// Returns null and sets err when no peer address can be found.
	/// </summary>
	public static NetConn? Open(string? netdir, out string? err)
	{
		err = null;
		var stdio = new DuplexStream(Console.OpenStandardInput(), Console.OpenStandardOutput());
		if (netdir is not null && !netdir.StartsWith("/dev/fd/", StringComparison.Ordinal)) {
			return new NetConn {
				Stream = stdio,
				Lsys = AddrFile(Path.Join(netdir, "local")),
				Rsys = AddrFile(Path.Join(netdir, "remote")),
				NetRoot = NetRootOf(netdir),
			};
		}
		var fd = 0;
		if (netdir is not null && !int.TryParse(netdir.AsSpan("/dev/fd/".Length), out fd)) {
			err = $"bad network directory {netdir}";
			return null;
		}
		Socket? sock = null;
		try {
			sock = new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: false));
			if (sock.RemoteEndPoint is IPEndPoint r && sock.LocalEndPoint is IPEndPoint l) {
				// one socket for both directions: real async I/O, and TLS needs a duplex stream
				var s = fd == 0 ? new NetworkStream(sock, ownsSocket: false) : (Stream)stdio;
				return new NetConn { Stream = s, Lsys = Text(l.Address), Rsys = Text(r.Address) };
			}
		} catch (SocketException e) {
			err = e.Message;
		}
		var peer = Env("SOCAT_PEERADDR") ?? Env("TCPREMOTEIP");
		if (peer is not null) {
			return new NetConn {
				Stream = stdio,
				Rsys = peer,
				Lsys = Env("SOCAT_SOCKADDR") ?? Env("TCPLOCALIP") ?? "???",
			};
		}
		err ??= "not a network connection";
		return null;
	}

	static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

	/// <summary>IPv4 in dotted form, IPv4-mapped IPv6 unmapped, IPv6 in its normal text form.</summary>
	public static string Text(IPAddress a) => (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).ToString();

	/// <summary>The address before '!' in a local/remote file; ??? when unreadable.</summary>
	static string AddrFile(string path)
	{
		try {
			var s = File.ReadAllText(path).Trim();
			var bang = s.IndexOf('!');
			return bang >= 0 ? s[..bang] : s.Length > 0 ? s : "???";
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return "???";
		}
	}

	static string NetRootOf(string netdir)
	{
		var parts = netdir.Split('/', StringSplitOptions.RemoveEmptyEntries);
		return parts.Length > 0 ? "/" + parts[0] : "/net";
	}
}

/// <summary>Reads from one stream and writes to another, so a pipe pair looks like one connection.</summary>
sealed class DuplexStream(Stream r, Stream w) : Stream
{
	public override bool CanRead => true;
	public override bool CanWrite => true;
	public override bool CanSeek => false;
	public override long Length => throw new NotSupportedException();
	public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
	public override int Read(byte[] buffer, int offset, int count) => r.Read(buffer, offset, count);
	public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => r.ReadAsync(buffer, ct);
	public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => r.ReadAsync(buffer, offset, count, ct);
	public override void Write(byte[] buffer, int offset, int count) => w.Write(buffer, offset, count);
	public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => w.WriteAsync(buffer, ct);
	public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => w.WriteAsync(buffer, offset, count, ct);
	public override void Flush() => w.Flush();
	public override Task FlushAsync(CancellationToken ct) => w.FlushAsync(ct);
	public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
	public override void SetLength(long value) => throw new NotSupportedException();
}
