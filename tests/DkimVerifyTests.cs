using System.Text;
using NUnit.Framework;
using Upas.Dkim;

namespace Upas.Tests;

/// <summary>
/// Messages signed by dkimpy (both algorithms, the four canonicalizations, with and without l=, over-signed and
/// folded fields) verify with ours whatever the chunking and line ends; changes to what is signed fail,
/// changes to what is not signed pass.
/// </summary>
public class DkimVerifyTests
{
	static readonly string Message = Tree.Crlf(DkimTests.Header + "\nX-Unsigned: 1\n\n" + DkimTests.Body);

	static readonly string[] Canons = ["simple/simple", "relaxed/relaxed", "simple/relaxed", "relaxed/simple"];
	static readonly string[] OverSigned = ["from", "from", "subject", "subject", "to", "date", "message-id", "cc"];

	/// <summary>Each variant: its description and the one DKIM-Signature field dkimpy made for Message (CR LF).</summary>
	static readonly Lazy<List<(string What, string Field)>> Signed = new(() => {
		var sigs = new List<PySig>();
		var what = new List<string>();
		foreach (var alg in new[] { DkimAlgorithm.RsaSha256, DkimAlgorithm.Ed25519Sha256 })
			foreach (var c in Canons)
				foreach (var l in new[] { false, true }) {
					var sel = alg == DkimAlgorithm.RsaSha256 ? "rsa" : "ed";
					sigs.Add(new PySig("example.com", sel, DkimTests.Key(alg), c, l, l ? OverSigned : null));
					what.Add($"{DkimNames.Tag(alg)} c={c}{(l ? " l= over-signed" : "")}");
				}
		var all = Encoding.Latin1.GetString(DkimPy.Sign(Encoding.Latin1.GetBytes(Message), sigs.ToArray()));
		var fields = all.Split("DKIM-Signature:", StringSplitOptions.RemoveEmptyEntries).Select(f => "DKIM-Signature:" + f).ToList();
		Assert.That(fields, Has.Count.EqualTo(sigs.Count));
		return what.Zip(fields).ToList();
	});

	static TableDns Keys() => new TableDns()
		.Txt("rsa._domainkey.example.com", DkimTests.Rsa.Value.DnsRecord())
		.Txt("ed._domainkey.example.com", DkimTests.Ed.Value.DnsRecord());

	static IEnumerable<int> Variants() => Enumerable.Range(0, 16);

	static DkimOutcome One(string msg, int chunk = 0) => Ours.Verify(Encoding.Latin1.GetBytes(msg), Keys(), chunk).Single();

	[TestCaseSource(nameof(Variants))]
	public void DkimpySignaturesPassAtEveryCut(int v)
	{
		var (what, field) = Signed.Value[v];
		var msg = Encoding.Latin1.GetBytes(field + Message);
		var first = Ours.Verify(msg, Keys()).Single();
		Assert.That(first.Result, Is.EqualTo(DkimResult.Pass), $"{what}: {first.Detail}\n{field}");
		Assert.That(first.Length is null, Is.EqualTo(!what.Contains("l=")), what);
		// every cut into two chunks
		for (var cut = 1; cut < msg.Length; cut++) {
			var dv = new DkimVerifier();
			dv.Feed(msg.AsSpan(0, cut));
			dv.Feed(msg.AsSpan(cut));
			var o = dv.FinishAsync(Keys(), CancellationToken.None).Result.Single();
			Assert.That(o, Is.EqualTo(first), $"{what}, cut at {cut}");
		}
		foreach (var chunk in new[] { 1, 2, 3, 7, 64 })
			Assert.That(One(field + Message, chunk), Is.EqualTo(first), $"{what}, chunks of {chunk}");
		// the same message with LF line ends
		Assert.That(One((field + Message).Replace("\r\n", "\n")), Is.EqualTo(first), $"{what}, LF");
	}

	[TestCaseSource(nameof(Variants))]
	public void ChangesToSignedPartsFailOthersPass(int v)
	{
		var (what, field) = Signed.Value[v];
		var simpleBody = field.Contains("c=relaxed/simple") || field.Contains("c=simple/simple") || !field.Contains("c=") || field.Contains("c=simple;");
		Assert.Multiple(() => {
			Assert.That(One(field + Message.Replace("end.", "end!")).Detail, Is.EqualTo("body hash did not verify"), what);
			Assert.That(One(field + Message.Replace("Subject: a test", "Subject: a best")).Detail, Is.EqualTo("signature did not verify"), what);
			Assert.That(One(field + Message.Replace("X-Unsigned: 1", "X-Unsigned: 2")).Result, Is.EqualTo(DkimResult.Pass), what);
			// a field added on top: over-signed names fail, others pass
			var added = One(field + "Subject: forged\r\n" + Message);
			Assert.That(added.Result, Is.EqualTo(what.Contains("over-signed") ? DkimResult.Fail : DkimResult.Pass), what);
			// relaxed body: white space changes inside a line do not matter
			var ws = One(field + Message.Replace("white  space", "white \t space"));
			Assert.That(ws.Result, Is.EqualTo(simpleBody ? DkimResult.Fail : DkimResult.Pass), what);
			// text after l= is not signed: still pass, and the length is reported
			var appended = One(field + Message + "appended by a list\r\n");
			if (what.Contains("l=")) {
				Assert.That(appended.Result, Is.EqualTo(DkimResult.Pass), what);
				Assert.That(appended.Detail, Does.Match(@"^signature verified \(l= covers \d+ of \d+ body bytes\)$"), what);
				Assert.That(appended.Length, Is.GreaterThan(0));
			} else
				Assert.That(appended.Detail, Is.EqualTo("body hash did not verify"), what);
		});
	}

	[Test]
	public void AllSixteenAtOnceEachVerified()
	{
		var msg = string.Concat(Signed.Value.Select(s => s.Field)) + Message;
		var o = Ours.Verify(Encoding.Latin1.GetBytes(msg), Keys(), max: 16);
		Assert.That(o.Select(x => x.Result), Is.EqualTo(Enumerable.Repeat(DkimResult.Pass, 16)));
		// the default evaluates the first 8 only
		var v = new DkimVerifier();
		v.Feed(Encoding.Latin1.GetBytes(msg));
		Assert.That(v.HeaderDone, Is.True);
		Assert.That(v.Signatures, Is.EqualTo(16));
		Assert.That(v.FinishAsync(Keys(), CancellationToken.None).Result, Has.Count.EqualTo(8));
	}
}
