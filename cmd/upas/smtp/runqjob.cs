namespace Upas.Smtp;

/// <summary>
/// The queue job runq runs smtp for: runq names its control file in $runqjob. smtp removes the job the
/// moment the server has taken the message for every recipient, before QUIT and before runq hears of it,
/// so a runq killed in between can neither lose the message nor send it a second time.
/// </summary>
static class RunqJob
{
	public static void Delivered()
	{
		var ctl = Environment.GetEnvironmentVariable("runqjob");
		if (string.IsNullOrEmpty(ctl) || !Path.GetFileName(ctl).StartsWith("C.", StringComparison.Ordinal))
			return;
		try {
			File.Delete(ctl); // the commit point: a D. without its C. is never run
			var dir = Path.GetDirectoryName(ctl) ?? ".";
			var id = Path.GetFileName(ctl)[2..];
			File.Delete(Path.Join(dir, "D." + id));
			File.Delete(Path.Join(dir, "E." + id));
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			// runq removes the job when we exit 0; only a runq killed meanwhile depends on us
			Console.Error.WriteLine($"smtp: can't remove {ctl}: {e.Message}");
		}
	}
}
