using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>
/// /mail/box/user/pipeto (mailer.md §3 step 2): a program the user's mail is piped to instead of being
/// appended to the mailbox, as Plan 9 runs it: "pipeto local!user /mail/box/user/mbox", upasname=user,
/// the message on standard input as "From sender date remote from sys" and the message unescaped.
/// Plan 9 runs it as none; here, when send is root, as nobody (through setpriv(1)), else as the invoking user.
/// </summary>
static class Pipeto
{
	/// <summary>How long a pipeto may run; past it, it is killed and send fails for now (exit 1, smtpd says 450).</summary>
	public static TimeSpan Limit = TimeSpan.FromMinutes(10);

	/// <summary>At most this much of its standard error becomes the reason of a failure.</summary>
	const int MaxReason = 1024;

	/// <summary>The user's pipeto: a regular file (not a link) with an execute bit; else null.</summary>
	public static string? Find(string dir)
	{
		var path = Path.Join(dir, "pipeto");
		if (BoxFile.Regular(path) is not { } st)
			return null;
		const FilePermissions anyExec = FilePermissions.S_IXUSR | FilePermissions.S_IXGRP | FilePermissions.S_IXOTH;
		return (st.st_mode & anyExec) != 0 ? path : null;
	}

	/// <summary>Runs the pipeto with data on its stdin; null when it exited 0, else the reason of the failure. Throws TempFail on a timeout.</summary>
	public static string? Run(string user, string path, string mbox, Content data)
	{
		var psi = Command(path, ["local!" + user, mbox]);
		psi.Environment["upasname"] = user;
		return Feed(psi, path, data, "pipeto", out _);
	}

	/// <summary>
	/// Runs psi with data on its stdin, its stdout discarded; null when it exited 0, else the reason: the start
	/// of its stderr, or "what exited with status n". Throws TempFail when it runs past Limit.
	/// </summary>
	public static string? Feed(ProcessStartInfo psi, string path, Content data, string what, out int status)
	{
		status = -1;
		psi.RedirectStandardInput = psi.RedirectStandardOutput = psi.RedirectStandardError = true;
		psi.UseShellExecute = false;
		psi.WorkingDirectory = "/"; // a directory nobody can enter would stop the start
		psi.Environment.Remove("upasparent");
		Process p;
		try {
			p = Process.Start(psi) ?? throw new TempFail($"cannot start {path}");
		} catch (Win32Exception e) {
			return $"cannot run {what}: {e.Message}";
		}
		using (p)
		using (p.StandardOutput) // Process.Dispose leaves read pipes open: smtpd -L runs this for every message
		using (p.StandardError) {
			// its stdout is not ours to pass on: smtpd never reads send's
			var outTask = p.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
			var errTask = ReadSome(p.StandardError.BaseStream);
			var inTask = Task.Run(() => {
				try {
					var stdin = p.StandardInput.BaseStream;
					data.CopyTo(b => {
						stdin.Write(b);
						return true;
					});
					p.StandardInput.Close();
				} catch (IOException) {
					// it need not read it all (Plan 9 ignores the broken pipe too): its exit status decides
				}
			});
			if (!p.WaitForExit(Limit)) {
				try {
					p.Kill(true);
				} catch (InvalidOperationException) {
				}
				p.WaitForExit(5000);
				Syslog.Log("mail", $"{path}: killed after {Limit.TotalSeconds:0} s");
				throw new TempFail($"{what} {path} timed out");
			}
			inTask.Wait(5000);
			outTask.Wait(5000);
			var err = errTask.Wait(5000) ? errTask.Result : "";
			status = p.ExitCode;
			if (p.ExitCode == 0)
				return null;
			return err.Length > 0 ? err : $"{what} exited with status {p.ExitCode}";
		}
	}

	/// <summary>The start of a stream as one line (Plan 9 gives the pipeto's error output as the reason), reading on to its end.</summary>
	static async Task<string> ReadSome(Stream s)
	{
		var m = new MemoryStream();
		var buf = new byte[4096];
		int n;
		while ((n = await s.ReadAsync(buf)) > 0) {
			if (m.Length < MaxReason)
				m.Write(buf, 0, (int)Math.Min(n, MaxReason - m.Length));
		}
		return Encoding.UTF8.GetString(m.ToArray()).Trim().Replace('\n', ' ');
	}

	/// <summary>The pipeto itself, or, when we are root, setpriv running it as nobody with no other groups.</summary>
	static ProcessStartInfo Command(string path, string[] args)
	{
		ProcessStartInfo psi;
		if (Syscall.geteuid() != 0) {
			psi = new ProcessStartInfo(path);
		} else {
			var pw = Syscall.getpwnam("nobody") ?? throw new TempFail("cannot run pipeto: no user nobody");
			var setpriv = new[] { "/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv", "/sbin/setpriv" }.FirstOrDefault(File.Exists)
				?? throw new TempFail("cannot run pipeto as nobody: setpriv (util-linux) not found");
			psi = new ProcessStartInfo(setpriv);
			foreach (var a in new[] { $"--reuid={pw.pw_uid}", $"--regid={pw.pw_gid}", "--clear-groups", "--", path })
				psi.ArgumentList.Add(a);
			psi.Environment["HOME"] = string.IsNullOrEmpty(pw.pw_dir) ? "/" : pw.pw_dir;
			psi.Environment["USER"] = psi.Environment["LOGNAME"] = pw.pw_name;
		}
		foreach (var a in args)
			psi.ArgumentList.Add(a);
		return ChildEnv.Apply(psi);
	}
}
