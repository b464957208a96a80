using System.Text;
using NUnit.Framework;

namespace Upas.Tests;

/// <summary>
/// Issue 10 item 2, aliasmail(8): names through the files of /mail/lib/namefiles (lists, aliases of aliases, loops,
/// several files, includes, continuations), local!name for the rest, -f's sending domain, and the refusals.
/// </summary>
[TestFixture]
public class AliasmailTests
{
	static (string Out, string Err, int Exit) Alias(Tree t, params string[] args)
	{
		var (o, e, x) = Tree.Exec(t.Prog(Repo.Bin("aliasmail"), args), []);
		return (Encoding.UTF8.GetString(o), e, x);
	}

	static Tree WithNames(string namesLocal, string? namefiles = null)
	{
		var t = new Tree();
		t.Write("/mail/lib/names.local", namesLocal);
		if (namefiles is not null)
			t.Write("/mail/lib/namefiles", namefiles);
		return t;
	}

	const string Names = """
		# alias file, listed in /mail/lib/namefiles

		postmaster	glenda
		staff	ken rob bob@example.com
		all	staff glenda
		Webmaster	testhost!rob
		hostmaster	rob@testhost
		loop1	loop2
		loop2	loop1 ken
		self	self self@archive.example
		gate	example.net!bob local!ken
		cont	ken \
			rob
		quoted	'john doe@example.org' "ken"
		empty

		""";

	[TestCase("postmaster", "local!glenda\n")]
	[TestCase("PostMaster", "local!glenda\n")]
	[TestCase("glenda", "local!glenda\n")]
	[TestCase("nobody", "local!nobody\n")]
	[TestCase("Nobody", "local!nobody\n")]
	[TestCase("staff", "local!ken\nlocal!rob\nbob@example.com\n")]
	[TestCase("all", "local!ken\nlocal!rob\nbob@example.com\nlocal!glenda\n")]
	[TestCase("webmaster", "local!rob\n")]
	[TestCase("hostmaster", "local!rob\n")]
	[TestCase("loop1", "local!loop1\nlocal!ken\n")]
	[TestCase("self", "local!self\nself@archive.example\n")]
	[TestCase("gate", "example.net!bob\nlocal!ken\n")]
	[TestCase("cont", "local!ken\nlocal!rob\n")]
	[TestCase("quoted", "john doe@example.org\nlocal!ken\n")]
	[TestCase("empty", "local!empty\n")]
	[TestCase("net!x", "local!net!x\n")]
	public void NamesLocal(string name, string want)
	{
		using var t = WithNames(Names);
		Assert.That(Alias(t, "--", name), Is.EqualTo((want, "", 0)));
	}

	[Test]
	public void SeveralNamesOneAfterTheOther()
	{
		using var t = WithNames(Names);
		Assert.That(Alias(t, "postmaster", "staff", "nobody"), Is.EqualTo(("local!glenda\nlocal!ken\nlocal!rob\nbob@example.com\nlocal!nobody\n", "", 0)));
	}

	[Test]
	public void NamefilesListsSeveralFilesTheFirstDefinitionWins()
	{
		using var t = WithNames("postmaster glenda\n", "# files listed here will be consulted for aliases\n\nnames.local\nnames.global " + "/mail/lib/names.extra\n");
		t.Write("/mail/lib/names.global", "postmaster rob\nken ken@example.org\n#include names.inc\n");
		t.Write("/mail/lib/names.inc", "rob rob@example.org\n");
		t.Write("/mail/lib/names.extra", "dmr dmr@example.org\n");
		Assert.That(Alias(t, "postmaster", "ken", "rob", "dmr"), Is.EqualTo(("local!glenda\nken@example.org\nrob@example.org\ndmr@example.org\n", "", 0)));
		// a file that is missing is no error
		File.Delete(t.P("/mail/lib/names.global"));
		Assert.That(Alias(t, "ken"), Is.EqualTo(("local!ken\n", "", 0)));
	}

	[Test]
	public void WithoutNamefilesNamesLocalIsRead()
	{
		using var t = WithNames("postmaster glenda\n");
		Assert.That(File.Exists(t.P("/mail/lib/namefiles")), Is.False);
		Assert.That(Alias(t, "postmaster"), Is.EqualTo(("local!glenda\n", "", 0)));
		// -n names another list
		t.Write("/mail/lib/othernames", "names.other\n");
		t.Write("/mail/lib/names.other", "postmaster rob\n");
		Assert.That(Alias(t, "-n", "othernames", "postmaster"), Is.EqualTo(("local!rob\n", "", 0)));
	}

	[Test]
	public void AliasesNestedTooDeepAreRefused()
	{
		var chain = new StringBuilder();
		for (var i = 0; i < 40; i++)
			chain.Append($"a{i} a{i + 1}\n");
		using var t = WithNames(chain.ToString());
		Assert.That(Alias(t, "a8"), Is.EqualTo(("local!a40\n", "", 0)), "32 levels are followed");
		var r = Alias(t, "a0", "glenda");
		Assert.That(r, Is.EqualTo(("local!glenda\n", "aliasmail: a0: aliases nested deeper than 32\n", 1)), "the other names are still answered");
	}

	[TestCase("-x", "aliasmail: address begins with -: -x\n")]
	[TestCase("a\u0001b", "aliasmail: control character in address: a\\x01b\n")]
	[TestCase("a%%0Ab", "aliasmail: control character in address: a\\x0ab\n")]
	[TestCase("<glenda>", "aliasmail: angle bracket in address: <glenda>\n")]
	[TestCase("", "aliasmail: empty address: \n")]
	public void AddressesThatCanBeNoneAreRefused(string addr, string err)
	{
		using var t = WithNames(Names);
		Assert.That(Alias(t, "--", addr), Is.EqualTo(("", err, 1)));
		Assert.That(Alias(t, "-f", "--", addr), Is.EqualTo(("", err, 1)));
	}

	[Test]
	public void AnAliasToAnOptionOrAControlByteIsRefused()
	{
		using var t = WithNames("bad -oQ/tmp/x\nctl 'a\u000bb'\n");
		Assert.That(Alias(t, "bad"), Is.EqualTo(("", "aliasmail: bad: not an address: '-oQ/tmp/x'\n", 1)));
		Assert.That(Alias(t, "ctl"), Is.EqualTo(("", "aliasmail: ctl: control character in address: a\\x0bb\n", 1)));
	}

	[TestCase("glenda", "9fans.net\n")]
	[TestCase("ken", "plan9.example\n")]
	[TestCase("rob", "")]
	[TestCase("example.org!alice", "example.org\n")]
	[TestCase("alice@corp.example", "corp.example\n")]
	[TestCase("%%22john%%20doe%%22@corp.example", "corp.example\n")]
	[TestCase("\"a!b\"@corp.example", "corp.example\n")]
	[TestCase("bob@bad%name", "")]
	public void DashFSaysTheSendingDomain(string sender, string want)
	{
		using var t = WithNames("glenda rob\n");
		t.Write("/mail/lib/fromfiles", "froms\n");
		t.Write("/mail/lib/froms", "glenda glenda@9fans.net\nken plan9.example!ken\n");
		Assert.That(Alias(t, "-f", "--", sender), Is.EqualTo((want, "", 0)));
	}

	[Test]
	public void DashFWithoutFromfilesHasNoDomainForALocalName()
	{
		using var t = WithNames("glenda glenda@9fans.net\n");
		Assert.That(Alias(t, "-f", "glenda"), Is.EqualTo(("", "", 0)), "namefiles is not read for -f, as on Plan 9");
	}

	[Test]
	public void UsageErrors()
	{
		using var t = WithNames(Names);
		const string usage = "usage: aliasmail [-df] [-n namefiles] [--] name ...\n";
		Assert.That(Alias(t), Is.EqualTo(("", usage, 1)));
		Assert.That(Alias(t, "-z", "glenda"), Is.EqualTo(("", usage, 1)));
		Assert.That(Alias(t, "-n"), Is.EqualTo(("", usage, 1)));
	}
}
