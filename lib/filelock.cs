using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Upas;

/// <summary>flock(2), which Mono.Posix lacks: send's mailbox lock and runq's job, directory and load locks.</summary>
public static partial class FileLock
{
	public const int Ex = 2, Nb = 4, Un = 8;

	[LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
	private static partial int flock_(int fd, int op);

	/// <summary>flock(fd, op), restarted when a signal interrupts it; on failure the errno is Marshal.GetLastPInvokeError().</summary>
	public static int Flock(int fd, int op)
	{
		int r;
		do
			r = flock_(fd, op);
		while (r < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
		return r;
	}

	/// <summary>How Wait waits for a lock another process holds (a switch for the stress harness; Blocking is what ships).</summary>
	public enum Strategy { Blocking, Backoff }

	public static Strategy WaitBy = Strategy.Blocking;

	/// <summary>
	/// Takes an exclusive flock on fd, waiting until deadline for a holder to let go. True: locked, the
	/// caller owns fd. False: not locked by then, and fd is no longer the caller's (it is closed, now or
	/// when the abandoned wait ends).
	/// </summary>
	public static bool Wait(int fd, DateTime deadline)
	{
		if (Flock(fd, Ex | Nb) == 0)
			return true;
		if (WaitBy == Strategy.Backoff || Marshal.GetLastPInvokeError() != (int)Errno.EWOULDBLOCK)
			return Backoff(fd, deadline);
		var w = new BlockedWait(fd);
		return w.Until(deadline);
	}

	/// <summary>LOCK_NB tries 1 ms apart, doubling to 50 ms: what Wait falls back on when flock fails for another reason than a holder.</summary>
	static bool Backoff(int fd, DateTime deadline)
	{
		for (var pause = 1; ; pause = Math.Min(pause * 2, 50)) {
			var left = deadline - DateTime.UtcNow;
			if (left <= TimeSpan.Zero) {
				Syscall.close(fd);
				return false;
			}
			Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(pause, Math.Ceiling(left.TotalMilliseconds))));
			if (Flock(fd, Ex | Nb) == 0)
				return true;
		}
	}

	/// <summary>
	/// A blocking flock on a thread of its own: the kernel hands the lock over the moment it is let go, and the
	/// caller still gives up at its deadline. fd belongs to whichever side loses the race: an abandoned wait
	/// closes it as soon as its flock returns, so the lock is never held for nobody.
	/// </summary>
	sealed class BlockedWait(int fd)
	{
		const int Waiting = 0, Locked = 1, Abandoned = 2;
		int state;
		readonly ManualResetEventSlim done = new(false);

		public bool Until(DateTime deadline)
		{
			var t = new Thread(Run, 64 * 1024) { IsBackground = true, Name = "flock" };
			t.Start();
			var left = deadline - DateTime.UtcNow;
			if (left > TimeSpan.Zero && done.Wait(left))
				return Volatile.Read(ref state) == Locked;
			if (Interlocked.CompareExchange(ref state, Abandoned, Waiting) == Waiting)
				return false; // Run closes fd when its flock returns
			done.Wait(); // it locked (or failed) just now: the outcome is ours
			return Volatile.Read(ref state) == Locked;
		}

		void Run()
		{
			var ok = Flock(fd, Ex) == 0;
			if (Interlocked.CompareExchange(ref state, ok ? Locked : Abandoned, Waiting) != Waiting || !ok)
				Syscall.close(fd); // abandoned: nobody wants the lock any more; failed: the caller gets false
			done.Set();
		}
	}
}
