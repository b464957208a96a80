namespace Upas.Send;

/// <summary>Remote mail into qer's queue (mailer.md §4.1), with qer's own code (lib/qer.cs): /mail/queue/user, D.id then C.id.</summary>
static class Queue
{
	public static string Root9 => Upas.Root.Path9("/mail/queue");

	/// <summary>
	/// Queues one job, "smtp sender net!host users…" in upas's %%XX form; returns the control file once D. and C.
	/// are durable. A TempFail says why it could not be.
	/// </summary>
	public static string Enqueue(string sender, string host, IEnumerable<string> users, Content data, string? id = null)
	{
		try {
			return Qer.Enqueue(Root9, null, ["smtp", sender, "net!" + host, .. users], sink => data.CopyTo(b => sink(b)), null, id);
		} catch (Qer.Failure e) {
			throw new TempFail(e.Message);
		}
	}
}
