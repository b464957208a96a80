using System.Runtime.ExceptionServices;
using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>A mailbox failure that another try may cure (lock held too long, disk full): exit non-zero, smtpd says 450.</summary>
sealed class TempFail(string msg) : Exception(msg);

/// <summary>
/// Appends entries to /mail/box/user/mbox under the L.mbox lock, then fsyncs them (mailer.md §3).
/// While it writes, L.mbox holds "inode offset length" of the append under way: a send killed in the
/// middle leaves that note behind, and the next delivery cuts the unfinished append off before its own.
/// Deliveries to one mailbox from the threads of one process (smtpd -L) queue in the process, never
/// polling: the first takes L.mbox and appends every entry waiting by then in one go with one fsync.
/// </summary>
static class Mbox
{
	const FilePermissions LockMode = (FilePermissions)0x1b6;   // 0666
	const FilePermissions BoxMode = (FilePermissions)0x192;    // 0622
	const OpenFlags Common = OpenFlags.O_CLOEXEC | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK;

	/// <summary>How long a held lock is waited for; Plan 9: 5 minutes, retrying every 0.5 s.</summary>
	public static TimeSpan LockWait = TimeSpan.FromMinutes(5);

	/// <summary>Whether a lock holder appends the entries that queued up behind it too (a switch for the stress harness).</summary>
	public static bool GroupCommit = true;

	/// <summary>One entry waiting for its mailbox, and what became of it.</summary>
	sealed class Entry(long length, Func<Sink, bool> write, DateTime deadline)
	{
		public readonly long Length = length;
		public readonly Func<Sink, bool> Write = write;
		public readonly DateTime Deadline = deadline;
		/// <summary>Its turn: true when it was appended and fsynced, or failed with Error; false when its caller is to lead.</summary>
		public readonly TaskCompletionSource<bool> Turn = new(TaskCreationOptions.RunContinuationsAsynchronously);
		public bool Leads;            // first in: its caller appends the next batch at once
		public ExceptionDispatchInfo? Error;
	}

	/// <summary>The entries queued for one mailbox in this process; Busy while some thread appends.</summary>
	sealed class Gate
	{
		public readonly List<Entry> Waiting = [];
		public bool Busy;
	}

	static readonly System.Threading.Lock table = new();
	static readonly Dictionary<string, Gate> gates = []; // an entry lives only while its mailbox has deliveries

	/// <summary>
	/// Delivers an entry of length bytes, which write hands to its sink, to the mailbox file path (a rewrite
	/// rule's >> file, or /mail/box/user/mbox); its directory must exist. Returns once the entry is durable;
	/// throws TempFail when it cannot be now. write may run on another delivering thread, after this one's
	/// turn came (it must only copy bytes the caller already has, never wait for more: it runs under the lock).
	/// </summary>
	public static void Append(string path, long length, Func<Sink, bool> write)
	{
		var (me, gate, key) = Enter(path, length, write);
		if (me.Leads || !me.Turn.Task.GetAwaiter().GetResult()) // waits until done, or our turn to lead
			Lead(path, key, gate, me);
		me.Error?.Throw();
	}

	/// <summary>Append for callers on the thread pool (smtpd -L): a delivery waiting for its turn holds no thread.</summary>
	public static async Task AppendAsync(string path, long length, Func<Sink, bool> write)
	{
		var (me, gate, key) = Enter(path, length, write);
		if (me.Leads || !await me.Turn.Task.ConfigureAwait(false))
			Lead(path, key, gate, me);
		me.Error?.Throw();
	}

	/// <summary>Queues an entry at its mailbox's gate; it leads when nobody appends to that mailbox now.</summary>
	static (Entry, Gate, string) Enter(string path, long length, Func<Sink, bool> write)
	{
		var key = Key(path);
		var me = new Entry(length, write, DateTime.UtcNow + LockWait);
		lock (table) {
			if (!gates.TryGetValue(key, out var gate))
				gates[key] = gate = new Gate();
			gate.Waiting.Add(me);
			me.Leads = !gate.Busy;
			gate.Busy = true;
			return (me, gate, key);
		}
	}

	/// <summary>How many deliveries to path wait in this process or are under way (for the tests).</summary>
	internal static int Queued(string path)
	{
		lock (table)
			return gates.TryGetValue(Key(path), out var g) ? g.Waiting.Count : 0;
	}

	/// <summary>The gate's key: the mailbox by device and inode of its directory, so that two names for one box share it.</summary>
	static string Key(string path)
	{
		var dir = Path.GetDirectoryName(path) ?? "/";
		var name = Path.GetFileName(path);
		return Syscall.stat(dir, out var st) == 0 ? $"{st.st_dev}:{st.st_ino}/{name}" : path;
	}

	/// <summary>
	/// Takes L.mbox for the gate, appends me and (with GroupCommit) all that wait behind it, lets go, and
	/// hands the gate to the next waiter; every entry of the batch learns its fate only after the fsync.
	/// </summary>
	static void Lead(string path, string key, Gate gate, Entry me)
	{
		List<Entry> batch = [me];
		try {
			var lockfd = Lock(Path.GetDirectoryName(path) ?? "/", me.Deadline);
			try {
				lock (table) {
					if (GroupCommit) {
						batch = [.. gate.Waiting]; // me first: the waiters are in order of arrival
						gate.Waiting.Clear();
					} else {
						gate.Waiting.Remove(me);
					}
				}
				AppendBatch(path, lockfd, batch);
			} finally {
				if (lockfd >= 0)
					Syscall.close(lockfd); // releases the flock
			}
		} catch (Exception e) {
			// the lock not had in time, or what no entry should have met: all of the batch fail alike
			foreach (var b in batch)
				b.Error = ExceptionDispatchInfo.Capture(b == me ? e : new TempFail(e.Message));
		} finally {
			lock (table) {
				gate.Waiting.Remove(me);
				if (gate.Waiting.Count > 0) {
					gate.Waiting[0].Turn.SetResult(false); // the next in line leads
				} else {
					gate.Busy = false;
					gates.Remove(key);
				}
			}
			foreach (var b in batch) {
				if (b != me)
					b.Turn.SetResult(true); // its fate is known: appended and synced, or Error
			}
		}
	}

	/// <summary>
	/// Appends the entries of batch to path and fsyncs them, L.mbox noting the whole batch meanwhile. An entry
	/// whose own write throws is cut off again and fails alone; a write or fsync of the file that fails cuts
	/// off the whole batch and fails every entry in it.
	/// </summary>
	static void AppendBatch(string path, int lockfd, List<Entry> batch)
	{
		var fd = Open(path, OpenFlags.O_WRONLY | OpenFlags.O_APPEND, BoxMode); // 0622, as the mail tools create mailboxes
		if (fd < 0)
			throw new TempFail($"mail file cannot be opened: {path}: {Posix.Err()}");
		try {
			if (Syscall.fstat(fd, out var st) != 0 || (st.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
				throw new TempFail($"mail file is not a plain file: {path}");
			var size = Recover(lockfd, fd, st, path, out var clean);
			Note(lockfd, $"{st.st_ino} {size} {batch.Sum(b => b.Length)}\n", clean);
			string? err = null; // why a write(2) of the file failed: nothing after it can be trusted
			using var g = new Gather(b => {
				if (!Fd.WriteAll(fd, b))
					err ??= Posix.Err();
				return err is null;
			});
			foreach (var e in batch) {
				var start = g.Taken;
				try {
					if (e.Write(g.Put))
						continue;
				} catch (Exception x) {
					e.Error = ExceptionDispatchInfo.Capture(x); // its own failure, unless the file's write failed
				}
				if (err is not null || !g.Flush())
					break;
				if (Syscall.ftruncate(fd, size + start) != 0) {
					err = Posix.Err();
					break;
				}
				e.Error ??= ExceptionDispatchInfo.Capture(new TempFail($"error writing mail file {path}"));
				g.Rewind(start); // the entry is gone from the file: the next starts where it started
			}
			if (err is null && g.Flush() && Syscall.fsync(fd) != 0)
				err = Posix.Err();
			if (err is not null) {
				Syscall.ftruncate(fd, size); // never leave half an entry behind
				Note(lockfd, "");
				foreach (var e in batch)
					e.Error = ExceptionDispatchInfo.Capture(new TempFail($"error writing mail file {path}: {err}"));
				return;
			}
			Note(lockfd, "");
		} finally {
			Syscall.close(fd);
		}
	}

	/// <summary>
	/// Cuts off what an interrupted append left (the note in L.mbox names this mailbox and the mailbox ends
	/// inside that append); the size the next entry starts at. The killed send never exited 0, so nobody
	/// was told the entry was delivered: its sender sends it again.
	/// </summary>
	static long Recover(int lockfd, int fd, Stat st, string path, out bool clean)
	{
		clean = true; // L.mbox is empty after this: a note can be written without a truncate
		if (lockfd < 0)
			return st.st_size;
		if (ReadNote(lockfd, out var any) is not { } n) {
			clean = !any;
			return st.st_size;
		}
		if (n.Ino == st.st_ino && st.st_size > n.Offset && st.st_size <= n.Offset + n.Length && Syscall.ftruncate(fd, n.Offset) == 0) {
			Syslog.Log("mail", $"{path}: removed {st.st_size - n.Offset} bytes of an interrupted delivery");
			Note(lockfd, "");
			return n.Offset;
		}
		Note(lockfd, "");
		return st.st_size;
	}

	/// <summary>The "inode offset length" note of L.mbox, or null when it holds none; any: whether it holds anything.</summary>
	static (ulong Ino, long Offset, long Length)? ReadNote(int lockfd, out bool any)
	{
		var buf = new byte[64];
		long n;
		unsafe {
			fixed (byte* p = buf)
				n = Syscall.pread(lockfd, p, (ulong)buf.Length, 0);
		}
		any = n > 0;
		if (n <= 0)
			return null;
		var f = System.Text.Encoding.ASCII.GetString(buf, 0, (int)n).Split(' ', '\n');
		if (f.Length >= 3 && ulong.TryParse(f[0], out var ino) && long.TryParse(f[1], out var off) && long.TryParse(f[2], out var len) && off >= 0 && len > 0)
			return (ino, off, len);
		return null;
	}

	/// <summary>Replaces L.mbox's note (clean: it is empty now); a lock file opened read-only takes none (and then nothing is recovered).</summary>
	static void Note(int lockfd, string text, bool clean = false)
	{
		if (lockfd < 0)
			return;
		var b = System.Text.Encoding.ASCII.GetBytes(text);
		if (b.Length > 0) {
			unsafe {
				fixed (byte* p = b)
					Syscall.pwrite(lockfd, p, (ulong)b.Length, 0);
			}
		}
		if (!clean)
			Syscall.ftruncate(lockfd, b.Length);
	}

	/// <summary>
	/// Opens path, which is there but for the first delivery; one missing is created exclusively, given mode
	/// whatever the umask. -1 and errno when it can be neither.
	/// </summary>
	static int Open(string path, OpenFlags flags, FilePermissions mode)
	{
		for (var i = 0; i < 3; i++) {
			var fd = Syscall.open(path, flags | Common);
			if (fd >= 0 || Stdlib.GetLastError() != Errno.ENOENT)
				return fd;
			fd = Syscall.open(path, flags | OpenFlags.O_CREAT | OpenFlags.O_EXCL | Common, mode);
			if (fd >= 0) {
				Syscall.fchmod(fd, mode);
				return fd;
			}
			if (Stdlib.GetLastError() != Errno.EEXIST)
				return -1;
			// made by another delivery between the two opens: open it again
		}
		return -1;
	}

	/// <summary>Opens (creating, mode 0666) dir/L.mbox and takes an exclusive flock on it by deadline; -1 when the directory allows no lock file.</summary>
	static int Lock(string dir, DateTime deadline)
	{
		var path = Path.Join(dir, "L.mbox");
		var fd = Open(path, OpenFlags.O_RDWR, LockMode); // 0666: the next sender may be another user
		if (fd < 0)
			fd = Syscall.open(path, OpenFlags.O_RDONLY | Common); // flock needs no write permission
		if (fd < 0) {
			Syslog.Log("mail", $"lock error: {path}: {Posix.Err()}");
			return -1; // as Plan 9: deliver without the lock rather than not at all
		}
		// a blocking wait: the lock is ours the moment its holder lets go (FileLock.Wait closes fd when it fails)
		if (!FileLock.Wait(fd, deadline))
			throw new TempFail($"mailbox locked: {path}");
		return fd;
	}
}
