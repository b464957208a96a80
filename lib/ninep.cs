using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Upas;

/// <summary>9P2000 constants (intro(5)): message types, NOTAG, NOFID, open modes.</summary>
static class Ninep
{
	public const byte Tversion = 100, Rversion = 101, Tauth = 102, Rauth = 103, Tattach = 104, Rattach = 105;
	public const byte Rerror = 107, Tflush = 108, Rflush = 109, Twalk = 110, Rwalk = 111, Topen = 112, Ropen = 113;
	public const byte Tread = 116, Rread = 117, Twrite = 118, Rwrite = 119, Tclunk = 120, Rclunk = 121;
	public const ushort NoTag = 0xFFFF;
	public const uint NoFid = 0xFFFFFFFF;
	public const byte OREAD = 0, OWRITE = 1, ORDWR = 2;
	/// <summary>size[4] type[1] tag[2] fid[4] offset[8] count[4]: what a Tread/Twrite/Rread costs besides its data.</summary>
	public const int IoHdrSz = 24;
	public const string Version = "9P2000";
}

/// <summary>
/// A minimal synchronous 9P2000 client over a stream socket: one request outstanding at a time, every
/// message bounded by msize, every operation bounded by <see cref="Deadline"/>. Any failure leaves the
/// connection closed (<see cref="Broken"/>): after a timeout or a garbled message nothing on it can be trusted.
/// </summary>
sealed class NinepClient : IDisposable
{
	readonly Socket sock;
	readonly string what;
	ushort tag;
	public uint Msize { get; private set; }
	public bool Broken { get; private set; }
	/// <summary>When the operation under way must be over; a reply not complete by then is an IOException.</summary>
	public DateTime Deadline { get; set; } = DateTime.MaxValue;

	/// <param name="what">names the peer in error messages ("factotum").</param>
	public NinepClient(Socket sock, string what)
	{
		this.sock = sock;
		this.what = what;
	}

	public void Dispose()
	{
		Broken = true;
		sock.Dispose();
	}

	/// <summary>Tversion: agrees on 9P2000 and a message size no bigger than asked for.</summary>
	public void Version(uint msize)
	{
		Msize = msize;	// bounds the Rversion too
		var w = new Msg(Ninep.Tversion, Ninep.NoTag);
		w.U32(msize);
		w.Str(Ninep.Version);
		var r = Rpc(w, Ninep.Rversion);
		var m = r.U32();
		var v = r.Str();
		r.End();
		if (v != Ninep.Version)
			throw Fail($"{what} speaks {Show(v)}, not {Ninep.Version}");
		if (m < 256 || m > msize)
			throw Fail($"{what} offers msize {m} (asked for {msize})");
		Msize = m;
	}

	/// <summary>Tattach without authentication (afid NOFID).</summary>
	public void Attach(uint fid, string uname, string aname)
	{
		var w = new Msg(Ninep.Tattach, NextTag());
		w.U32(fid);
		w.U32(Ninep.NoFid);
		w.Str(uname);
		w.Str(aname);
		var r = Rpc(w, Ninep.Rattach);
		r.Qid();
		r.End();
	}

	/// <summary>Twalk fid to newfid along names; every element must be walked, else an IOException.</summary>
	public void Walk(uint fid, uint newfid, params string[] names)
	{
		if (names.Length > 16)
			throw new ArgumentException("9P walks at most 16 elements", nameof(names));
		var w = new Msg(Ninep.Twalk, NextTag());
		w.U32(fid);
		w.U32(newfid);
		w.U16((ushort)names.Length);
		foreach (var n in names)
			w.Str(n);
		var r = Rpc(w, Ninep.Rwalk);
		var nq = r.U16();
		for (var i = 0; i < nq; i++)
			r.Qid();
		r.End();
		if (nq != names.Length)
			throw new IOException($"{what}: walk {string.Join('/', names)}: not found");	// newfid was not made: the connection is fine
	}

	/// <summary>Topen; returns the iounit (0: none given).</summary>
	public uint Open(uint fid, byte mode)
	{
		var w = new Msg(Ninep.Topen, NextTag());
		w.U32(fid);
		w.U8(mode);
		var r = Rpc(w, Ninep.Ropen);
		r.Qid();
		var iounit = r.U32();
		r.End();
		return iounit;
	}

	public byte[] Read(uint fid, ulong offset, uint count)
	{
		count = Math.Min(count, Msize - Ninep.IoHdrSz);
		var w = new Msg(Ninep.Tread, NextTag());
		w.U32(fid);
		w.U64(offset);
		w.U32(count);
		var r = Rpc(w, Ninep.Rread);
		var n = r.U32();
		if (n > count)
			throw Fail($"{what} returned {n} bytes to a read of {count}");
		var data = r.Bytes((int)n);
		r.End();
		return data;
	}

	public uint Write(uint fid, ulong offset, ReadOnlySpan<byte> data)
	{
		if (data.Length > Msize - Ninep.IoHdrSz)
			throw new ArgumentException($"write of {data.Length} bytes does not fit msize {Msize}", nameof(data));
		var w = new Msg(Ninep.Twrite, NextTag());
		w.U32(fid);
		w.U64(offset);
		w.U32((uint)data.Length);
		w.Raw(data);
		var r = Rpc(w, Ninep.Rwrite);
		var n = r.U32();
		r.End();
		return n;
	}

	public void Clunk(uint fid)
	{
		var w = new Msg(Ninep.Tclunk, NextTag());
		w.U32(fid);
		Rpc(w, Ninep.Rclunk).End();
	}

	ushort NextTag()
	{
		tag = (ushort)(tag + 1);
		if (tag == Ninep.NoTag)
			tag = 1;
		return tag;
	}

	/// <summary>Sends one T-message and reads its reply: Rerror becomes an IOException with the server's words.</summary>
	Reader Rpc(Msg t, byte rtype)
	{
		if (Broken)
			throw new IOException($"{what}: connection closed after an earlier error");
		var msg = t.Finish();
		if (Msize != 0 && msg.Length > Msize)
			throw new ArgumentException($"9P message of {msg.Length} bytes exceeds msize {Msize}");
		byte[] reply;
		try {
			Send(msg);
			reply = Receive();
		} catch (SocketException e) {
			throw Fail(e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock ? TimedOut() : $"{what}: {e.Message}");
		} catch (ObjectDisposedException) {
			throw Fail($"{what}: connection closed");
		}
		var r = new Reader(reply, this);
		var type = r.U8();
		var rtag = r.U16();
		if (rtag != t.Tag)
			throw Fail($"{what} answered tag {rtag} to tag {t.Tag}");
		if (type == Ninep.Rerror) {
			var ename = r.Str();
			r.End();
			throw new IOException($"{what}: {Show(ename)}");
		}
		if (type != rtype)
			throw Fail($"{what} answered message type {type} to {t.Type}");
		return r;
	}

	void Send(byte[] msg)
	{
		for (var off = 0; off < msg.Length;) {
			sock.SendTimeout = Remaining();
			off += sock.Send(msg, off, msg.Length - off, SocketFlags.None);
		}
	}

	byte[] Receive()
	{
		var head = new byte[4];
		Fill(head);
		var size = BinaryPrimitives.ReadUInt32LittleEndian(head);
		if (size < 7 || size > Msize)
			throw Fail($"{what} sent a message of {size} bytes (msize {Msize})");
		var body = new byte[size - 4];
		Fill(body);
		return body;
	}

	void Fill(byte[] buf)
	{
		for (var off = 0; off < buf.Length;) {
			sock.ReceiveTimeout = Remaining();
			var n = sock.Receive(buf, off, buf.Length - off, SocketFlags.None);
			if (n == 0)
				throw Fail($"{what} hung up");
			off += n;
		}
	}

	/// <summary>Milliseconds left before the deadline, for the socket timeouts (0 would mean forever).</summary>
	int Remaining()
	{
		if (Deadline == DateTime.MaxValue)
			return 0;
		var ms = (Deadline - DateTime.UtcNow).TotalMilliseconds;
		if (ms <= 0)
			throw Fail(TimedOut());
		return (int)Math.Clamp(Math.Ceiling(ms), 1, int.MaxValue);
	}

	string TimedOut() => $"{what}: no answer in time";

	/// <summary>Closes the connection and makes the IOException to throw.</summary>
	internal IOException Fail(string message)
	{
		Broken = true;
		sock.Dispose();
		return new IOException(message);
	}

	/// <summary>A peer's string as it may go into an error message: printable, bounded.</summary>
	internal static string Show(string s)
	{
		var sb = new StringBuilder();
		foreach (var c in s.Length > 200 ? s[..200] + "..." : s)
			sb.Append(char.IsControl(c) ? '?' : c);
		return sb.ToString();
	}

	/// <summary>A T-message being built: size[4] type[1] tag[2] then the fields, little-endian.</summary>
	sealed class Msg
	{
		readonly List<byte> b = new(64);
		public byte Type { get; }
		public ushort Tag { get; }

		public Msg(byte type, ushort tag)
		{
			Type = type;
			Tag = tag;
			U32(0);
			U8(type);
			U16(tag);
		}

		public void U8(byte v) => b.Add(v);

		public void U16(ushort v)
		{
			Span<byte> s = stackalloc byte[2];
			BinaryPrimitives.WriteUInt16LittleEndian(s, v);
			b.AddRange(s);
		}

		public void U32(uint v)
		{
			Span<byte> s = stackalloc byte[4];
			BinaryPrimitives.WriteUInt32LittleEndian(s, v);
			b.AddRange(s);
		}

		public void U64(ulong v)
		{
			Span<byte> s = stackalloc byte[8];
			BinaryPrimitives.WriteUInt64LittleEndian(s, v);
			b.AddRange(s);
		}

		public void Str(string s)
		{
			var bytes = Encoding.UTF8.GetBytes(s);
			if (bytes.Length > ushort.MaxValue)
				throw new ArgumentException("9P string longer than 65535 bytes");
			U16((ushort)bytes.Length);
			b.AddRange(bytes);
		}

		public void Raw(ReadOnlySpan<byte> data) => b.AddRange(data);

		public byte[] Finish()
		{
			var msg = b.ToArray();
			BinaryPrimitives.WriteUInt32LittleEndian(msg, (uint)msg.Length);
			return msg;
		}
	}

	/// <summary>An R-message after its size: bounds-checked field reads (a short message is an IOException).</summary>
	sealed class Reader(byte[] buf, NinepClient c)
	{
		int off;

		ReadOnlySpan<byte> Take(int n)
		{
			if (n < 0 || n > buf.Length - off)
				throw c.Fail($"{c.what} sent a short 9P message");
			var s = buf.AsSpan(off, n);
			off += n;
			return s;
		}

		public byte U8() => Take(1)[0];
		public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
		public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
		public byte[] Bytes(int n) => Take(n).ToArray();
		public void Qid() => Take(13);

		public string Str()
		{
			var n = U16();
			var s = Take(n);
			try {
				return new UTF8Encoding(false, true).GetString(s);
			} catch (DecoderFallbackException) {
				throw c.Fail($"{c.what} sent a string that is not UTF-8");
			}
		}

		/// <summary>Nothing may follow the last field.</summary>
		public void End()
		{
			if (off != buf.Length)
				throw c.Fail($"{c.what} sent {buf.Length - off} bytes too many in a 9P message");
		}
	}
}
