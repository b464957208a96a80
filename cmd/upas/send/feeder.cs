using Mono.Unix.Native;

namespace Upas.Send;

/// <summary>
/// The process writing the message to send: $upasparent as smtpd sets it (it may be gone before we
/// start, or be our grandparent behind a wrapper script), else our parent. A feeder that died before
/// the end of the input may have cut the message short.
/// </summary>
readonly record struct Feeder(int Pid, bool Named)
{
	/// <summary>Reads (and removes, so runq and its children never see it) $upasparent.</summary>
	public static Feeder Of()
	{
		var env = Environment.GetEnvironmentVariable("upasparent");
		Environment.SetEnvironmentVariable("upasparent", null);
		if (int.TryParse(env, out var pid) && pid > 1)
			return new(pid, true);
		return new(Syscall.getppid(), false);
	}

	/// <summary>Gone or dying now, or (when it is only our parent) no longer our parent.</summary>
	public bool Died() => Pid > 1 && (Posix.Dying(Pid) || !Named && Syscall.getppid() != Pid);
}
