using System.Text.RegularExpressions;

namespace Upas.Runq;

/// <summary>
/// A queue script that could not run one of its programs: sh says "upas/smtp: not found" (and exits 127),
/// bash "command not found", rc (9base) "upas/smtp: No such file or directory" after a failed exec and then
/// exits 0. Such an exit 0 delivered nothing: runq keeps the job and tries again.
/// </summary>
static partial class Missing
{
	[GeneratedRegex(@"^.*(: not found|: command not found|: No such file or directory|can't exec|cannot execute|: Permission denied)\s*$", RegexOptions.Multiline)]
	private static partial Regex NotFound();

	/// <summary>The first line of errors saying a program could not be run, or null.</summary>
	public static string? Said(string errors) =>
		NotFound().Match(errors) is { Success: true } m ? EnvAddr.Printable(m.Value.Trim()) : null;
}

static partial class Missing
{
	/// <summary>CPU time after which an rc that said a program was missing counts as spinning.</summary>
	static readonly TimeSpan SpinCpu = TimeSpan.FromSeconds(5);

	/// <summary>
	/// Waits for p; false when it was killed instead: 9base's rc, once an exec has failed in a script, loops for
	/// ever at full CPU and ignores SIGTERM. Only a process still running rc, that said a program was missing and
	/// has used SpinCpu of processor, is killed (SIGKILL): an smtp that rc did exec is never touched.
	/// </summary>
	public static bool WaitOrSpin(System.Diagnostics.Process p, Func<string> errors)
	{
		while (!p.WaitForExit(500)) {
			try {
				p.Refresh();
				if (p.TotalProcessorTime < SpinCpu || Exe(p.Id) != "rc" || Said(errors()) is null)
					continue;
				p.Kill();
				p.WaitForExit();
				return false;
			} catch (InvalidOperationException) {
				// it exited meanwhile
			}
		}
		p.WaitForExit();
		return true;
	}

	static string Exe(int pid)
	{
		try {
			return Path.GetFileName(File.ResolveLinkTarget($"/proc/{pid}/exe", false)?.FullName ?? "");
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			return "";
		}
	}
}
