using System.Diagnostics;

namespace Upas.Runq;

/// <summary>How runq starts its commands and send: with files, not pipes through runq, as their standard input and error.</summary>
static class Spawn
{
	/// <summary>Held around every process start: while a job's lock is inheritable no other child may get it (JobLock.Inherit).</summary>
	public static readonly object Gate = new();

	/// <summary>
	/// argv with stdin the file input and, when errors is given, stderr appended to it (runq passes the files it opened
	/// safely as /proc/PID/fd/N, so sh reopens those very files and never follows a name). sh only opens the files and
	/// execs argv, so they are the command's own descriptors: a command outliving a killed runq still reads all of
	/// its input and leaves its words.
	/// </summary>
	public static ProcessStartInfo WithFiles(string input, string? errors, IEnumerable<string> argv)
	{
		var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
		if (errors is null) {
			foreach (var w in new[] { "-c", "i=$1; shift; exec \"$@\" <\"$i\"", "runq", input })
				psi.ArgumentList.Add(w);
		} else {
			foreach (var w in new[] { "-c", "i=$1 e=$2; shift 2; exec \"$@\" <\"$i\" 2>>\"$e\"", "runq", input, errors })
				psi.ArgumentList.Add(w);
		}
		foreach (var a in argv)
			psi.ArgumentList.Add(a);
		return ChildEnv.Apply(psi);
	}
}
