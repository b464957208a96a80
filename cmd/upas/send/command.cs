using System.Diagnostics;
using System.Text;

namespace Upas.Send;

/// <summary>
/// A | rule's command (mailer.md §2 step 4): the first replacement, with the second of each recipient routed to
/// the same first one appended; run once through sh with the message on its standard input.
/// </summary>
sealed class Command(string line)
{
	/// <summary>At most this many recipients and characters of their arguments per execution, as Plan 9.</summary>
	public const int MaxRcpts = 32, MaxChars = 1024;

	/// <summary>A recipient: its shell-ready argument, the address that matched, the address given to send.</summary>
	public readonly record struct Rcpt(string Arg, string Addr, string? Origin);

	public string Line { get; } = line;
	public readonly List<Rcpt> Rcpts = [];
	int chars;

	/// <summary>The command line run: the first part, then each recipient's argument after a blank.</summary>
	public string Text => Line + string.Concat(Rcpts.Where(r => r.Arg.Length > 0).Select(r => " " + r.Arg));

	/// <summary>Adds a recipient to the first command of the same first part with room for it, or to a new one.</summary>
	public static void Merge(List<Command> cmds, string line, string arg, string addr, string? origin)
	{
		foreach (var c in cmds) {
			if (c.Line != line)
				continue;
			if (c.Rcpts.Any(r => r.Arg == arg))
				return; // the same argument twice is one recipient
			if (c.Rcpts.Count < MaxRcpts && c.chars + arg.Length < MaxChars) {
				c.Rcpts.Add(new Rcpt(arg, addr, origin));
				c.chars += arg.Length + 1;
				return;
			}
		}
		var n = new Command(line);
		n.Rcpts.Add(new Rcpt(arg, addr, origin));
		n.chars = arg.Length + 1;
		cmds.Add(n);
	}

	/// <summary>sysexits' EX_TEMPFAIL: a command exiting with it could not take the mail now, and says so.</summary>
	public const int TempFailStatus = 75;

	/// <summary>
	/// Runs the command with data on its standard input; null when it exited 0, else why it failed for good.
	/// TempFail when it ran too long or exited 75 (qmail when qer cannot queue): the mail is not lost but retried.
	/// </summary>
	public string? Run(Content data)
	{
		var why = Pipeto.Feed(Shell(Text), Line, data, "mailer", out var status);
		if (why is not null && status == TempFailStatus)
			throw new TempFail(why);
		return why;
	}

	/// <summary>How long a translate command may take.</summary>
	static readonly TimeSpan TranslateLimit = TimeSpan.FromSeconds(60);

	/// <summary>
	/// A translate rule's command: its output (lines joined, _nosummary_ lines dropped) as addresses; null and the
	/// start of its error output when it failed. TempFail when it cannot be started or runs too long.
	/// </summary>
	public static (List<string>? Addrs, string Err) Translate(string line)
	{
		if (OurAliasmail(line) is { } args)
			return RunAliasmail(args);
		var psi = Shell(line);
		psi.RedirectStandardInput = psi.RedirectStandardOutput = psi.RedirectStandardError = true;
		psi.UseShellExecute = false;
		psi.WorkingDirectory = "/";
		psi.Environment.Remove("upasparent");
		Process p;
		try {
			p = Process.Start(psi) ?? throw new TempFail($"cannot start {line}");
		} catch (System.ComponentModel.Win32Exception e) {
			throw new TempFail($"cannot run translation: {e.Message}");
		}
		using (p)
		using (p.StandardOutput) // Process.Dispose leaves read pipes open: smtpd -L runs this for every message
		using (p.StandardError) {
			p.StandardInput.Close();
			var outTask = ReadLimited(p.StandardOutput.BaseStream, 64 * 1024);
			var errTask = ReadLimited(p.StandardError.BaseStream, 1024);
			if (!p.WaitForExit(TranslateLimit)) {
				try {
					p.Kill(true);
				} catch (InvalidOperationException) {
				}
				p.WaitForExit(5000);
				throw new TempFail($"translation {line} timed out");
			}
			return Result(p.ExitCode, outTask.Wait(5000) ? outTask.Result : "", errTask.Wait(5000) ? errTask.Result : "");
		}
	}

	/// <summary>What a translation gave: its output (lines joined, _nosummary_ lines dropped) as addresses, or null and its error output.</summary>
	static (List<string>? Addrs, string Err) Result(int status, string output, string err)
	{
		err = err.Trim().Replace('\n', ' ');
		if (status != 0)
			return (null, err);
		var text = string.Join(' ', output.Split('\n').Where(l => !l.StartsWith("_nosummary_", StringComparison.Ordinal)));
		return (AddrList.Split(text), err);
	}

	/// <summary>aliasmail run in process: the output and error text as the program would print them, at most what a pipe read keeps.</summary>
	static (List<string>? Addrs, string Err) RunAliasmail(List<string> args)
	{
		var o = new StringBuilder();
		var e = new StringBuilder();
		int status;
		try {
			status = Upas.Alias.Aliasmail.Run([.. args], o, l => e.Append(l).Append('\n'));
		} catch (Exception x) when (x is IOException or UnauthorizedAccessException) {
			e.Append("aliasmail: ").Append(x.Message).Append('\n');
			status = 1;
		}
		var output = o.ToString();
		var err = e.ToString();
		return Result(status, output.Length > 64 * 1024 ? output[..(64 * 1024)] : output, err.Length > 1024 ? err[..1024] : err);
	}

	/// <summary>
	/// The arguments when line only runs this tree's own aliasmail (the shipped translate rule): then it runs in
	/// process, as the program would, without sh and two processes per recipient. Null for any other command.
	/// </summary>
	static List<string>? OurAliasmail(string line)
	{
		if (ShellWords.Simple(line) is not [var prog, .. var args] || prog != Root.Path9("/bin/upas/aliasmail") || !File.Exists(prog))
			return null;
		return args;
	}

	static async Task<string> ReadLimited(Stream s, int max)
	{
		var m = new MemoryStream();
		var buf = new byte[4096];
		int n;
		while ((n = await s.ReadAsync(buf)) > 0) {
			if (m.Length < max)
				m.Write(buf, 0, (int)Math.Min(n, max - m.Length));
		}
		return Encoding.UTF8.GetString(m.ToArray());
	}

	/// <summary>sh -c line, with the tree's bin first on PATH and PLAN9 set, as plan9port's 9 runs its programs.</summary>
	static ProcessStartInfo Shell(string line)
	{
		var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
		psi.ArgumentList.Add("-c");
		psi.ArgumentList.Add(line);
		psi.Environment["PLAN9"] = Root.Dir;
		return ChildEnv.Apply(psi);
	}
}
