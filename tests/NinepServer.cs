using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace Upas.Tests;

/// <summary>
/// A stand-in for plan9port's factotum behind 9pserve: 9P2000 on a Unix-domain socket, a root directory holding
/// one file, rpc, that plays factotum(4)'s rpc protocol for proto=pass with the keys it is given.
/// Written apart from lib/ninep.cs (its own encoding), so that a mistake there does not cancel out here.
/// Every request is logged in a readable form ("Tattach fid=0 afid=4294967295 uname=glenda aname=").
/// </summary>
sealed class NinepServer : IDisposable
{
	public enum NoKeyReply { Needkey, Error }

	const byte Tversion = 100, Tattach = 104, Rerror = 107, Twalk = 110, Topen = 112, Tread = 116, Twrite = 118, Tclunk = 120;
	const uint NoFid = 0xFFFFFFFF;
	const uint MaxMsize = 8192;

	readonly Socket listener;
	readonly List<Socket> conns = [];
	readonly object gate = new();
	volatile bool closed;

	public string SocketPath { get; }
	public List<FactotumKey> Keys { get; set; }
	/// <summary>What a read answers when no key matches: "needkey attrs" (plan9port) or "error no key matches attrs".</summary>
	public NoKeyReply NoKey { get; set; } = NoKeyReply.Needkey;
	/// <summary>Reads every message, answers none: a hung factotum.</summary>
	public bool Mute { get; set; }
	/// <summary>Answers everything but reads of rpc: a factotum stuck in a conversation.</summary>
	public bool MuteRpcRead { get; set; }
	/// <summary>The version Rversion names.</summary>
	public string VersionReply { get; set; } = "9P2000";
	/// <summary>When set, Rversion's size field says this (a corrupt or hostile peer).</summary>
	public uint? BogusVersionSize { get; set; }
	/// <summary>Given an rpc request ("start proto=pass ..."), a canned reply instead of the usual one (null: usual).</summary>
	public Func<string, string?>? Override { get; set; }
	/// <summary>The name of the rpc file (walks to any other name fail).</summary>
	public string RpcName { get; set; } = "rpc";
	public ConcurrentQueue<string> Log { get; } = new();
	public int Accepted;

	public NinepServer(string socketPath, string keys = "")
	{
		SocketPath = socketPath;
		Keys = Factotum.ParseKeys(keys);
		listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
		listener.Bind(new UnixDomainSocketEndPoint(socketPath));
		listener.Listen(8);
		new Thread(AcceptLoop) { IsBackground = true, Name = "9p accept" }.Start();
	}

	public void Dispose()
	{
		closed = true;
		listener.Dispose();
		lock (gate) {
			foreach (var c in conns)
				c.Dispose();
		}
		File.Delete(SocketPath);
	}

	public string[] Requests => [.. Log];

	void AcceptLoop()
	{
		while (!closed) {
			Socket s;
			try {
				s = listener.Accept();
			} catch (Exception) {
				return;
			}
			Interlocked.Increment(ref Accepted);
			lock (gate)
				conns.Add(s);
			new Thread(() => Serve(s)) { IsBackground = true, Name = "9p conn" }.Start();
		}
	}

	sealed class Fid
	{
		public bool IsRpc;
		public bool Open;
		public string? Pending;	// the rpc written, not yet read
		public List<(string Name, string Value)>? Attrs;	// after a good start
	}

	void Serve(Socket s)
	{
		var fids = new Dictionary<uint, Fid>();
		var msize = MaxMsize;
		try {
			while (true) {
				var head = ReadFull(s, 4);
				var size = BinaryPrimitives.ReadUInt32LittleEndian(head);
				if (size < 7 || size > msize)
					return;
				var m = new In(ReadFull(s, (int)size - 4));
				var type = m.U8();
				var tag = m.U16();
				if (Mute) {
					Log.Enqueue($"T{type} (ignored)");
					continue;
				}
				var reply = Handle(type, tag, m, fids, ref msize);
				if (reply is not null)
					s.Send(reply);
			}
		} catch (Exception) {
			// hung up, or disposed
		} finally {
			s.Dispose();
		}
	}

	byte[]? Handle(byte type, ushort tag, In m, Dictionary<uint, Fid> fids, ref uint msize)
	{
		switch (type) {
		case Tversion: {
			var ms = m.U32();
			var v = m.Str();
			Log.Enqueue($"Tversion tag={tag} msize={ms} version={v}");
			msize = Math.Min(ms, MaxMsize);
			var o = new Out((byte)(type + 1), tag).U32(msize).Str(v.StartsWith("9P2000") ? VersionReply : "unknown");
			var b = o.Finish();
			if (BogusVersionSize is { } bogus)
				BinaryPrimitives.WriteUInt32LittleEndian(b, bogus);
			fids.Clear();
			return b;
		}
		case Tattach: {
			var fid = m.U32();
			var afid = m.U32();
			var uname = m.Str();
			var aname = m.Str();
			Log.Enqueue($"Tattach fid={fid} afid={afid} uname={uname} aname={aname}");
			if (afid != NoFid)
				return Error(tag, "authentication not required");
			if (fids.ContainsKey(fid))
				return Error(tag, "fid in use");
			fids[fid] = new Fid();
			return new Out((byte)(type + 1), tag).Qid(0x80, 0).Finish();
		}
		case Twalk: {
			var fid = m.U32();
			var newfid = m.U32();
			var n = m.U16();
			var names = new List<string>();
			for (var i = 0; i < n; i++)
				names.Add(m.Str());
			Log.Enqueue($"Twalk fid={fid} newfid={newfid} {string.Join('/', names)}");
			if (!fids.TryGetValue(fid, out var f))
				return Error(tag, "unknown fid");
			if (newfid != fid && fids.ContainsKey(newfid))
				return Error(tag, "fid in use");
			if (n == 0) {
				fids[newfid] = new Fid { IsRpc = f.IsRpc };
				return new Out((byte)(type + 1), tag).U16(0).Finish();
			}
			if (f.IsRpc || names[0] != RpcName)
				return Error(tag, "file does not exist");
			if (n > 1)	// rpc is a file: the walk stops after one element
				return new Out((byte)(type + 1), tag).U16(1).Qid(0, 1).Finish();
			fids[newfid] = new Fid { IsRpc = true };
			return new Out((byte)(type + 1), tag).U16(1).Qid(0, 1).Finish();
		}
		case Topen: {
			var fid = m.U32();
			var mode = m.U8();
			Log.Enqueue($"Topen fid={fid} mode={mode}");
			if (!fids.TryGetValue(fid, out var f))
				return Error(tag, "unknown fid");
			if (f.Open)
				return Error(tag, "already open");
			if (f.IsRpc && (mode & 3) != 2)
				return Error(tag, "permission denied");
			f.Open = true;
			return new Out((byte)(type + 1), tag).Qid(f.IsRpc ? (byte)0 : (byte)0x80, f.IsRpc ? 1UL : 0).U32(0).Finish();
		}
		case Twrite: {
			var fid = m.U32();
			var offset = m.U64();
			var count = m.U32();
			var data = m.Bytes((int)count);
			var text = Encoding.UTF8.GetString(data);
			Log.Enqueue($"Twrite fid={fid} offset={offset} {text}");
			if (!fids.TryGetValue(fid, out var f) || !f.Open || !f.IsRpc)
				return Error(tag, "not open for writing");
			var verb = text.Split(' ', 2)[0];
			if (verb is not ("authinfo" or "attr" or "read" or "start" or "write" or "readhex" or "writehex"))
				return Error(tag, "bad rpc verb: " + verb);
			f.Pending = text;
			return new Out((byte)(type + 1), tag).U32(count).Finish();
		}
		case Tread: {
			var fid = m.U32();
			var offset = m.U64();
			var count = m.U32();
			Log.Enqueue($"Tread fid={fid} offset={offset} count={count}");
			if (!fids.TryGetValue(fid, out var f) || !f.Open || !f.IsRpc)
				return Error(tag, "not open for reading");
			if (f.Pending is not { } req)
				return Error(tag, "no rpc pending");
			if (MuteRpcRead)
				return null;
			f.Pending = null;
			var reply = Encoding.UTF8.GetBytes(Override?.Invoke(req) ?? Exec(f, req));
			if (reply.Length > count)
				reply = reply[..(int)count];
			return new Out((byte)(type + 1), tag).U32((uint)reply.Length).Raw(reply).Finish();
		}
		case Tclunk: {
			var fid = m.U32();
			Log.Enqueue($"Tclunk fid={fid}");
			if (!fids.Remove(fid))
				return Error(tag, "unknown fid");
			return new Out((byte)(type + 1), tag).Finish();
		}
		default:
			Log.Enqueue($"T{type} tag={tag}");
			return Error(tag, "not supported");
		}
	}

	/// <summary>factotum's rpc for proto=pass role=client: start, then read answered "ok user password".</summary>
	string Exec(Fid f, string req)
	{
		var sp = req.IndexOf(' ');
		var verb = sp < 0 ? req : req[..sp];
		var data = sp < 0 ? "" : req[(sp + 1)..];
		switch (verb) {
		case "start": {
			f.Attrs = null;
			var words = Factotum.Tokenize(data);
			if (words is null || words.Count == 0)
				return "error empty attr";
			var attrs = words.Select(w => w.IndexOf('=') is var eq && eq < 0 ? (w, "") : (w[..eq], w[(eq + 1)..])).ToList();
			string? Find(string name) => attrs.FirstOrDefault(a => a.Item1 == name).Item2;
			if (Find("proto") is not { } proto)
				return "error no proto in attrs";
			if (proto != "pass")
				return "error unknown proto " + proto;
			if (Find("role") is not { } role)
				return "error no role in attrs";
			if (role != "client")
				return "error unknown role";
			f.Attrs = attrs;
			return "ok";
		}
		case "read": {
			if (data.Length > 0)
				return "error read takes no parameters";
			if (f.Attrs is not { } attrs)
				return "error protocol has not started";
			f.Attrs = null;
			var query = attrs.Where(a => a.Name is not ("role" or "disabled")).ToList();
			var key = Keys.FirstOrDefault(k => query.All(q => k[q.Name] == q.Value));
			var shown = string.Join(' ', attrs.Select(a => a.Name + "=" + Q(a.Value)));
			if (key is null)
				return NoKey == NoKeyReply.Needkey ? "needkey " + shown : "error no key matches " + shown;
			return $"ok {Q(key["user"] ?? "")} {Q(key["password"] ?? "")}";
		}
		default:
			return "error unsupported rpc " + verb;
		}
	}

	/// <summary>Plan 9's %q: quotes only when a blank, control character or quote needs it.</summary>
	public static string Q(string s) =>
		s.Length > 0 && s.All(c => c > ' ' && c != '\'') ? s : "'" + s.Replace("'", "''") + "'";

	static byte[] Error(ushort tag, string ename) => new Out(Rerror, tag).Str(ename).Finish();

	static byte[] ReadFull(Socket s, int n)
	{
		var b = new byte[n];
		for (var off = 0; off < n;) {
			var got = s.Receive(b, off, n - off, SocketFlags.None);
			if (got == 0)
				throw new EndOfStreamException();
			off += got;
		}
		return b;
	}

	sealed class In(byte[] b)
	{
		int off;

		byte[] Take(int n)
		{
			if (n < 0 || off + n > b.Length)
				throw new InvalidDataException("short message");
			var r = b[off..(off + n)];
			off += n;
			return r;
		}

		public byte U8() => Take(1)[0];
		public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
		public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
		public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
		public byte[] Bytes(int n) => Take(n);
		public string Str() => Encoding.UTF8.GetString(Take(U16()));
	}

	sealed class Out
	{
		readonly MemoryStream ms = new();

		public Out(byte type, ushort tag)
		{
			U32(0);
			ms.WriteByte(type);
			U16(tag);
		}

		public Out U16(ushort v)
		{
			ms.WriteByte((byte)v);
			ms.WriteByte((byte)(v >> 8));
			return this;
		}

		public Out U32(uint v)
		{
			for (var i = 0; i < 4; i++)
				ms.WriteByte((byte)(v >> (8 * i)));
			return this;
		}

		public Out Qid(byte qtype, ulong path)
		{
			ms.WriteByte(qtype);
			U32(0);	// vers
			for (var i = 0; i < 8; i++)
				ms.WriteByte((byte)(path >> (8 * i)));
			return this;
		}

		public Out Str(string s)
		{
			var b = Encoding.UTF8.GetBytes(s);
			U16((ushort)b.Length);
			ms.Write(b);
			return this;
		}

		public Out Raw(byte[] b)
		{
			ms.Write(b);
			return this;
		}

		public byte[] Finish()
		{
			var b = ms.ToArray();
			var n = (uint)b.Length;
			for (var i = 0; i < 4; i++)
				b[i] = (byte)(n >> (8 * i));
			return b;
		}
	}
}
