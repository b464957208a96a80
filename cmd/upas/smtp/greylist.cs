namespace Upas.Smtpd;

/// <summary>-g greylisting (smtpd.md §11).</summary>
sealed partial class Session
{
	async Task<bool> GreylistPasses()
	{
		await Task.CompletedTask;
		return true;
	}
}
