using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using NUnit.Framework;
using Upas.Send;

namespace Upas.Tests;

/// <summary>
/// The mailbox lock (send(8), issue 11 item 3): deliveries to one mailbox wait for L.mbox without polling, in one
/// process on a queue of their own (appended in batches with one fsync), across processes by a blocking flock;
/// nothing is lost, doubled or interleaved, and a batch cut by kill -9 is cut off whole by the next delivery.
/// </summary>
[NonParallelizable] // Mbox.LockWait is the library's, shared by the tests of this process
public class MboxLockTests
{
	const string Env = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \n";

	[DllImport("libc", SetLastError = true)]
	static extern int flock(int fd, int op);

	static Tree NewTree(params string[] users) => Tree.WithMailboxes(users);

	/// <summary>A process holding L.mbox of a box as a mail reader would, until disposed.</summary>
	sealed class Held : IDisposable
	{
		readonly FileStream f;

		public Held(Tree t, string user)
		{
			f = new FileStream(t.P($"/mail/box/{user}/L.mbox"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
			Assert.That(flock((int)f.SafeFileHandle.DangerousGetHandle(), 2 /* LOCK_EX */), Is.EqualTo(0));
		}

		public void Dispose() => f.Dispose(); // the close lets go of the flock
	}

	/// <summary>A whole mailbox entry, in the shape send writes it, different for every (who, i).</summary>
	static string Entry(string who, int i, int lines) =>
		$"From alice Mon Nov 24 01:21:00 EST 2025\nSubject: {who} {i}\n\n" +
		string.Concat(Enumerable.Range(0, lines).Select(j => $"{who} message {i} line {j} .......................\n")) + "\n";

	/// <summary>A file's text read without .NET's own flock (which a held L.mbox would refuse).</summary>
	static string Unlocked(string path)
	{
		var fd = Mono.Unix.Native.Syscall.open(path, Mono.Unix.Native.OpenFlags.O_RDONLY);
		Assert.That(fd, Is.GreaterThanOrEqualTo(0), path);
		using var f = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, true), FileAccess.Read);
		return new StreamReader(f, Encoding.ASCII).ReadToEnd();
	}

	static void Append(string box, string entry)
	{
		var b = Encoding.Latin1.GetBytes(entry);
		Mbox.Append(box, b.Length, s => s(b));
	}

	/// <summary>Checks that box is exactly the entries of expected, each once and whole, in any order.</summary>
	static void AssertExactly(string box, IReadOnlyCollection<string> expected)
	{
		var text = File.ReadAllText(box, Encoding.Latin1);
		var left = new HashSet<string>(expected);
		var pos = 0;
		while (pos < text.Length) {
			var next = text.IndexOf("\n\nFrom alice ", pos, StringComparison.Ordinal);
			var end = next < 0 ? text.Length : next + 2;
			var e = text[pos..end];
			Assert.That(left.Remove(e), Is.True, $"at offset {pos} no whole entry, or one seen twice: {e[..Math.Min(e.Length, 80)]}");
			pos = end;
		}
		Assert.That(left, Is.Empty, "entries lost");
	}

	[Test]
	public void ThreadsOfOneProcessAppendEveryEntryWholeAndOnce()
	{
		using var t = NewTree("bob");
		var box = t.P("/mail/box/bob/mbox");
		const int threads = 12, each = 25;
		var all = new List<string>();
		for (var n = 0; n < threads; n++)
			for (var i = 0; i < each; i++)
				all.Add(Entry("t" + n, i, 1 + (n * 37 + i * 11) % 400)); // up to 20 KB: some span Gather's 64 KB writes
		Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, n => {
			for (var i = 0; i < each; i++)
				Append(box, all[n * each + i]);
		});
		AssertExactly(box, all);
		Assert.That(new FileInfo(t.P("/mail/box/bob/L.mbox")).Length, Is.EqualTo(0), "no note left behind");
		Assert.That(Mbox.Queued(box), Is.EqualTo(0), "the gate is gone once nobody delivers");
	}

	[Test]
	public void AsyncAppendsFromManyTasksLandEveryEntryWholeAndOnce()
	{
		using var t = NewTree("bob");
		var box = t.P("/mail/box/bob/mbox");
		var all = Enumerable.Range(0, 200).Select(i => Entry("async", i, 1 + i * 7 % 300)).ToList();
		var tasks = all.Select(async e => {
			await Task.Yield();
			var b = Encoding.Latin1.GetBytes(e);
			await Mbox.AppendAsync(box, b.Length, s => s(b));
		}).ToArray();
		Assert.That(Task.WhenAll(tasks).Wait(60_000), Is.True);
		AssertExactly(box, all);
		Assert.That(Mbox.Queued(box), Is.EqualTo(0));
	}

	[Test]
	public void ProcessesAndThreadsTogetherAppendEveryEntryWholeAndOnce()
	{
		using var t = NewTree("bob");
		var box = t.P("/mail/box/bob/mbox");
		const int procs = 6, threads = 4, each = 10;
		var sent = Enumerable.Range(0, procs).Select(p => Entry("p" + p, 0, 300 + p * 50)).ToArray();
		var mine = new List<string>();
		for (var n = 0; n < threads; n++)
			for (var i = 0; i < each; i++)
				mine.Add(Entry("t" + n, i, 1 + (n * 13 + i * 7) % 200));
		var sends = sent.Select(e => Task.Run(() => {
			var body = e[(e.IndexOf('\n') + 1)..^1]; // send adds the From_ line and the empty line itself
			var (_, err, x) = Tree.Exec(t.Prog(Repo.Bin("send"), ["-r", "bob"]), Encoding.Latin1.GetBytes("From alice Mon Nov 24 01:21:00 EST 2025 remote from \n" + body));
			Assert.That(x, Is.EqualTo(0), err);
		})).ToArray();
		Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, n => {
			for (var i = 0; i < each; i++)
				Append(box, mine[n * each + i]);
		});
		Task.WaitAll(sends);
		AssertExactly(box, [.. sent, .. mine]);
	}

	[Test]
	public void DeliveryGoesTheMomentAHeldLockIsLetGo()
	{
		using var t = NewTree("bob", "carol");
		using var bob = new Held(t, "bob");
		var carol = new Held(t, "carol");
		try {
			var send = Task.Run(() => Tree.Exec(t.Prog(Repo.Bin("send"), ["-r", "bob", "carol"]), Encoding.Latin1.GetBytes(Env + "Subject: locked\n\nwait\n")));
			Thread.Sleep(1000);
			Assert.That(send.IsCompleted, Is.False, "send waits for the lock");
			Assert.That(Mail.Box(t, "bob"), Is.Empty);
			bob.Dispose();
			Wait.Until(() => Mail.Box(t, "bob").Length > 0, () => "bob's entry", TimeSpan.FromSeconds(10), 2);
			// send now waits for carol's lock; a poll every 500 ms would see it free only ~400 ms after this
			Thread.Sleep(100);
			var sw = Stopwatch.StartNew();
			carol.Dispose();
			Wait.Until(() => Mail.Box(t, "carol").Length > 0, () => "carol's entry", TimeSpan.FromSeconds(10), 2);
			var late = sw.Elapsed;
			Assert.That(send.Wait(10_000), Is.True);
			Assert.That(send.Result.Exit, Is.EqualTo(0), send.Result.Err);
			Assert.That(late, Is.LessThan(TimeSpan.FromMilliseconds(300)), "delivered as soon as the lock was free");
			Assert.That(Mail.Box(t, "carol"), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: locked\n\nwait\n\n"));
		} finally {
			carol.Dispose();
		}
	}

	[Test]
	public void ALockHeldPastTheLimitIsATemporaryFailure()
	{
		using var t = NewTree("bob");
		var box = t.P("/mail/box/bob/mbox");
		var saved = Mbox.LockWait;
		Mbox.LockWait = TimeSpan.FromMilliseconds(400);
		try {
			using (new Held(t, "bob")) {
				var sw = Stopwatch.StartNew();
				// the first waits for L.mbox, the others behind it in the process; each gives up at its own limit
				var tries = Enumerable.Range(0, 3).Select(i => Task.Run(() => {
					try {
						Append(box, Entry("x", i, 1));
						return "delivered";
					} catch (TempFail e) {
						return e.Message;
					}
				})).ToArray();
				Assert.That(Task.WaitAll(tries, 10_000), Is.True, "no waiter waits for ever");
				Assert.That(tries.Select(x => x.Result), Is.All.EqualTo($"mailbox locked: {t.P("/mail/box/bob/L.mbox")}"));
				Assert.That(sw.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(390)));
			}
			Assert.That(Mail.Box(t, "bob"), Is.Empty);
			// the abandoned wait lets go again at once: the next delivery finds the lock free
			Mbox.LockWait = TimeSpan.FromSeconds(10);
			Append(box, Entry("y", 0, 1));
			Assert.That(File.ReadAllText(box), Is.EqualTo(Entry("y", 0, 1)));
		} finally {
			Mbox.LockWait = saved;
		}
	}

	[Test]
	public void AnEntryWhoseWriteFailsFailsAloneInItsBatch()
	{
		using var t = NewTree("bob");
		var box = t.P("/mail/box/bob/mbox");
		using var hold = new ManualResetEventSlim(false);
		var first = Task.Run(() => {
			var b = Encoding.Latin1.GetBytes(Entry("a", 0, 3));
			Mbox.Append(box, b.Length, s => hold.Wait(10_000) && s(b)); // holds the lock while the others queue
		});
		Wait.Until(() => new FileInfo(t.P("/mail/box/bob/L.mbox")) is { Exists: true, Length: > 0 }, () => "the first append under way", TimeSpan.FromSeconds(10), 2);
		var ok1 = Task.Run(() => Append(box, Entry("b", 1, 3)));
		Wait.Until(() => Mbox.Queued(box) == 1, () => "b queued", TimeSpan.FromSeconds(10), 2);
		var bad = Task.Run(() => {
			var b = Encoding.Latin1.GetBytes(Entry("c", 2, 3));
			Mbox.Append(box, b.Length, s => {
				s(b.AsSpan(0, 40));
				throw new TempFail("cannot read the spool file: short"); // as Content's spool read does
			});
		});
		Wait.Until(() => Mbox.Queued(box) == 2, () => "c queued", TimeSpan.FromSeconds(10), 2);
		var ok2 = Task.Run(() => Append(box, Entry("d", 3, 3)));
		Wait.Until(() => Mbox.Queued(box) == 3, () => "d queued", TimeSpan.FromSeconds(10), 2);
		hold.Set();
		Assert.That(Task.WhenAll(first, ok1, ok2).Wait(10_000), Is.True);
		var e = Assert.Throws<AggregateException>(() => bad.Wait(10_000))!.InnerException;
		Assert.That(e, Is.TypeOf<TempFail>().And.Message.EqualTo("cannot read the spool file: short"));
		Assert.That(File.ReadAllText(box), Is.EqualTo(Entry("a", 0, 3) + Entry("b", 1, 3) + Entry("d", 3, 3)));
	}

	/// <summary>
	/// kill -9 of a process in the middle of a batch leaves the mailbox as it is at that instant: the batch's
	/// entries before the one under way whole, that one in part, and L.mbox noting the whole batch. Taken here
	/// at that instant (a copy of both files), then delivered to by send as the next delivery would.
	/// </summary>
	[Test]
	public void AKilledBatchIsCutOffWholeByTheNextDelivery()
	{
		using var t = NewTree("bob");
		var box = t.P("/mail/box/bob/mbox");
		using var holdA = new ManualResetEventSlim(false);
		using var holdD = new ManualResetEventSlim(false);
		using var inD = new ManualResetEventSlim(false);
		var a = Encoding.Latin1.GetBytes(Entry("a", 0, 3));
		var first = Task.Run(() => Mbox.Append(box, a.Length, s => holdA.Wait(10_000) && s(a)));
		Wait.Until(() => new FileInfo(t.P("/mail/box/bob/L.mbox")) is { Exists: true, Length: > 0 }, () => "a under way", TimeSpan.FromSeconds(10), 2);
		var b = Entry("b", 1, 2000); // past Gather's 64 KB: some of it is in the file when d stops
		var c = Entry("c", 2, 5);
		var d = Encoding.Latin1.GetBytes(Entry("d", 3, 5));
		var rest = new List<Task> { Task.Run(() => Append(box, b)) };
		Wait.Until(() => Mbox.Queued(box) == 1, () => "b queued", TimeSpan.FromSeconds(10), 2);
		rest.Add(Task.Run(() => Append(box, c)));
		Wait.Until(() => Mbox.Queued(box) == 2, () => "c queued", TimeSpan.FromSeconds(10), 2);
		rest.Add(Task.Run(() => Mbox.Append(box, d.Length, s => {
			var ok = s(d.AsSpan(0, 50));
			inD.Set();
			return ok && holdD.Wait(10_000) && s(d.AsSpan(50));
		})));
		Wait.Until(() => Mbox.Queued(box) == 3, () => "d queued", TimeSpan.FromSeconds(10), 2);
		holdA.Set();
		Assert.That(first.Wait(10_000), Is.True);
		Assert.That(inD.Wait(10_000), Is.True);
		// the instant of the kill: b, c and part of d appended after a, L.mbox noting b+c+d
		var ino = new Mono.Unix.UnixFileInfo(box).Inode;
		var note = Unlocked(t.P("/mail/box/bob/L.mbox"));
		var batch = Encoding.Latin1.GetByteCount(b + c) + d.Length;
		Assert.That(note, Is.EqualTo($"{ino} {a.Length} {batch}\n"), "the note covers the whole batch");
		var leftBox = File.ReadAllBytes(box);
		Assert.That(leftBox.Length, Is.GreaterThan(a.Length).And.LessThan(a.Length + batch));
		holdD.Set();
		Assert.That(Task.WhenAll(rest).Wait(10_000), Is.True);

		using var k = NewTree("bob");
		var kbox = k.P("/mail/box/bob/mbox");
		File.WriteAllBytes(kbox, leftBox);
		File.WriteAllText(k.P("/mail/box/bob/L.mbox"), $"{new Mono.Unix.UnixFileInfo(kbox).Inode} {a.Length} {batch}\n");
		var (_, err, x) = Tree.Exec(k.Prog(Repo.Bin("send"), ["-r", "bob"]), Encoding.Latin1.GetBytes(Env + "Subject: next\n\nafter\n"));
		Assert.That(x, Is.EqualTo(0), err);
		Assert.That(Mail.Box(k, "bob"), Is.EqualTo(Encoding.Latin1.GetString(a) + "From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: next\n\nafter\n\n"));
		Assert.That(k.Read("/sys/log/mail"), Does.Contain($"{kbox}: removed {leftBox.Length - a.Length} bytes of an interrupted delivery"));
	}

	/// <summary>
	/// The stress harness of issue 11 (a benchmark, not a test: run it by name): 20 threads × 50 appends to one
	/// mailbox, with and without group commit, 1 KiB and 64 KiB, 5 interleaved rounds; prints the medians.
	/// </summary>
	[Test, Explicit("a benchmark: prints appends per second")]
	public void StressGroupCommit()
	{
		const int threads = 20, each = 50, rounds = 5;
		var saved = Mbox.GroupCommit;
		try {
			foreach (var size in new[] { 1024, 65536 }) {
				var rates = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
				for (var r = 0; r < rounds; r++) {
					foreach (var group in new[] { true, false }) {
						Mbox.GroupCommit = group;
						using var t = NewTree("bob");
						var box = t.P("/mail/box/bob/mbox");
						var sw = Stopwatch.StartNew();
						Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, n => {
							for (var i = 0; i < each; i++) {
								var b = Encoding.Latin1.GetBytes($"From a Mon Nov 24 01:21:00 EST 2025\nSubject: {n} {i}\n\n{new string('x', size)}\n\n");
								Mbox.Append(box, b.Length, s => s(b));
							}
						});
						rates[group].Add(threads * each / sw.Elapsed.TotalSeconds);
					}
				}
				foreach (var (group, list) in rates) {
					list.Sort();
					TestContext.Out.WriteLine($"{size} B, group commit {(group ? "on " : "off")}: median {list[rounds / 2]:F0}/s (min {list[0]:F0}, max {list[^1]:F0})");
				}
			}
		} finally {
			Mbox.GroupCommit = saved;
		}
	}
}
