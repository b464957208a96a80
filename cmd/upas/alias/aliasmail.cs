using System.Text;

namespace Upas.Alias;

/// <summary>
/// upas/aliasmail: what local names stand for, from the names files listed in /mail/lib/namefiles (rewrite(6)'s
/// translate rule runs it; mailer.md §2.4).
///	aliasmail name…		each name's destinations, one per line: its aliases followed to the end, local!name for
///				a name that is no alias
///	aliasmail -f addr…	the domain mail from addr is sent as (remotemail's smtp -h), or nothing
/// Exit 0; 1 for a usage error, an address refused (control byte, angle bracket, leading '-') or an alias that
/// cannot be expanded; the other names are still answered.
/// </summary>
static class Program
{
	static int Main(string[] argv)
	{
		var o = new StringBuilder();
		int status;
		try {
			status = Aliasmail.Run(argv, o, line => Console.Error.WriteLine(line));
		} catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
			Console.Error.WriteLine("aliasmail: " + e.Message);
			return 1;
		}
		using var stdout = Console.OpenStandardOutput();
		stdout.Write(Encoding.UTF8.GetBytes(o.ToString()));
		return status;
	}
}
