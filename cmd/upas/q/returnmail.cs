using System.Diagnostics;
using System.Text;

namespace Upas.Runq;

/// <summary>
/// The bounce of a job that failed for good (mailer.md §5, "by runq"): a MIME message from postmaster with
/// the reason and the E. file's text, the original message attached, given to ROOT/bin/upas/send with
/// upasname=/dev/null so that it can never bounce back.
/// </summary>
static class ReturnMail
{
	public static string SendPath => Root.Path9("/bin/upas/send");

	/// <summary>Sends the bounce; failures are logged through logit (the job is removed all the same, as Plan 9's runq does).</summary>
	public static void Send(Action<string> logit, List<string> av, string dfile, string efile, string status)
	{
		if (av.Count < 3) {
			logit("runq - dumping bad file");
			return;
		}
		var sender = av[2];
		if (!Returnable(sender)) {
			logit("runq - dumping p to p mail");
			return;
		}
		logit("returning");
		// send reads the bounce from a file, not a pipe: a runq killed meanwhile cannot cut it short
		var bfile = Path.Join(Path.GetDirectoryName(dfile), "B." + Path.GetFileName(dfile)[2..]);
		try {
			File.WriteAllBytes(bfile, Message(av, dfile, efile, status));
			var psi = Spawn.WithFiles(bfile, null, [SendPath, sender]);
			psi.Environment["upasname"] = "/dev/null";
			Process p;
			lock (Spawn.Gate)
				p = Process.Start(psi)!;
			using (p) {
				p.WaitForExit();
				if (p.ExitCode != 0) {
					Syslog.Log(Program.Log, $"returnmail child: exit {p.ExitCode}");
					logit("returnmail child failed");
				}
			}
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception) {
			Syslog.Log(Program.Log, $"returnmail: can't run {SendPath}: {e.Message}");
			logit("returnmail failed");
		} finally {
			File.Delete(bfile);
		}
	}

	/// <summary>Whether a bounce may go to sender: not to /dev/null (bulk) nor to postmaster (no loops).</summary>
	internal static bool Returnable(string sender) =>
		sender.Length > 0 && sender != "/dev/null" && !sender.EndsWith("!/dev/null", StringComparison.Ordinal) && sender != "postmaster";

	/// <summary>The bounce: "Your request ``tag dest rcpts… '' failed (code status)." and the E. file, then the message.</summary>
	internal static byte[] Message(List<string> av, string dfile, string efile, string status)
	{
		var text = new StringBuilder();
		var tag = av[1].Length > 20 ? av[1][..20] : av[1];
		text.Append($"Your request ``{tag} ");
		foreach (var w in av.Skip(3))
			text.Append(w).Append(' ');
		text.Append($"'' failed (code {status}).\nThe symptom was:\n\n");
		if (File.Exists(efile))
			text.Append(Encoding.Latin1.GetString(File.ReadAllBytes(efile)));

		var now = DateTimeOffset.Now;
		var header = $"From: postmaster\nTo: {av[2]}\nSubject: permanent failure\n" +
			$"Date: {now:ddd, d MMM yyyy HH:mm:ss} {(now.Offset < TimeSpan.Zero ? '-' : '+')}{now.Offset:hhmm}\n";
		var data = File.Exists(dfile) ? File.ReadAllBytes(dfile) : [];
		var start = 0;
		if (data.AsSpan().StartsWith("From "u8)) {
			// the queue's envelope line is not part of the RFC 822 message
			var nl = Array.IndexOf(data, (byte)'\n');
			start = nl < 0 ? data.Length : nl + 1;
		}
		byte[] message = data.Length > start && data[^1] != '\n' ? [.. data.AsSpan(start), (byte)'\n'] : data[start..];
		return MimeBounce.Compose(header, text.ToString(), message);
	}
}
