using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using Upas.Send;

namespace Upas.Tests;

/// <summary>
/// rewrite(6), the rule engine of send (mailer.md §2 step 4): patterns, escapes, the shell quoting of what an
/// address contributes, the merging of | commands, the recursion limit; in process and through send -x / -r.
/// </summary>
[TestFixture]
public class RewriteTests
{
	static Rewrite Rules(string text, List<string>? log = null) => Rewrite.Parse(text, "testhost", m => log?.Add(m));

	/// <summary>The rule chosen for addr and its first replacement as plain text; null when no rule matches.</summary>
	static (Rewrite.Kind Type, string? Repl1, string? Repl2)? Apply(string rules, string addr, string sender = "example.org!alice")
	{
		var r = Rules(rules).Apply(addr, sender, false);
		return r is null ? null : (r.Rule.Type, r.Repl1?.Plain, r.Repl2?.Plain);
	}

	[TestCase("[^!@]+ alias x", "glenda", true)]
	[TestCase("[^!@]+ alias x", "a!b", false)]
	[TestCase("glen alias x", "glenda", false, TestName = "the pattern must match the whole address")]
	[TestCase("glen.a alias x", "glenda", true)]
	[TestCase("GLENDA alias x", "glenda", true, TestName = "matching ignores case (pattern)")]
	[TestCase("glenda alias x", "GlEnDa", true, TestName = "matching ignores case (address)")]
	[TestCase("a{2} alias x", "aa", false, TestName = "braces are literal, no counted repeat")]
	[TestCase("a{2} alias x", "a{2}", true)]
	[TestCase(@"\d alias x", "d", true, TestName = "backslash-letter is the letter")]
	[TestCase(@"\d alias x", "7", false)]
	[TestCase(@"a\.b alias x", "a.b", true)]
	[TestCase(@"a\.b alias x", "axb", false)]
	[TestCase("(a|b)+c alias x", "abbac", true)]
	[TestCase("[^.]+ alias x", "a.b", false)]
	[TestCase("[a-c]+ alias x", "abc", true)]
	[TestCase(@"[a\-c]+ alias x", "b", false, TestName = "an escaped - in a class is a -")]
	[TestCase(@"\l!(.+) alias x", "testhost!bob", true, TestName = "backslash-l in a pattern is the system name")]
	[TestCase(@"\l!(.+) alias x", "TESTHOST!bob", true)]
	[TestCase(@"\l!(.+) alias x", "testhostx!bob", false)]
	public void Pattern(string rule, string addr, bool matches) =>
		Assert.That(Apply(rule, addr) is not null, Is.EqualTo(matches));

	[Test]
	public void FirstMatchingRuleDecides()
	{
		const string rules = "# a comment\n\n  # another\nbob alias first\n.* alias second\nbob alias third\n";
		Assert.That(Apply(rules, "bob"), Is.EqualTo((Rewrite.Kind.Alias, "first", (string?)null)));
		Assert.That(Apply(rules, "carol"), Is.EqualTo((Rewrite.Kind.Alias, "second", (string?)null)));
	}

	[Test]
	public void BadRulesAreSkippedAndLogged()
	{
		var log = new List<string>();
		var rw = Rules("(?i)bob alias x\nbob frobnicate x\n[abc alias x\nbob\nbob >> /mail/box/bob/mbox\n", log);
		Assert.That(rw.Rules, Has.Count.EqualTo(1));
		Assert.That(rw.Rules[0].Type, Is.EqualTo(Rewrite.Kind.Cat));
		Assert.That(log, Has.Count.EqualTo(4));
		Assert.That(log, Has.Some.StartsWith("illegal rewrite rule: bob frobnicate"));
	}

	[Test]
	public void Escapes()
	{
		const string rule = @"([^!]+)!([^!]+)  |  ""cmd \s \l & \2 \1 \\\\ \p $PLAN9"" '\2 at \1'";
		var r = Apply(rule, "Example.NET!Bob", "example.org!alice");
		Assert.That(r, Is.EqualTo((Rewrite.Kind.Pipe, @$"cmd example.org!alice testhost Example.NET!Bob Bob Example.NET \ normal {Root.Dir}", "Bob at Example.NET")));
	}

	[Test]
	public void QuotedFieldsAndContinuations()
	{
		var r = Apply("bob \\\n alias 'carol dave'\n", "bob");
		Assert.That(r, Is.EqualTo((Rewrite.Kind.Alias, "carol dave", (string?)null)));
	}

	static readonly string[] Hostile = [
		"'; touch /tmp/x #", "$(id)", "`id`", "a\"b", "a'b", "\\", "x\\'y", "$HOME", "*", "a b  c", ">out", "|id", "!!", "${IFS}", "'\"'\"'",
	];

	/// <summary>Renders one template with the given address through the engine and runs it with sh; its output.</summary>
	static (string? Out, string Why) RunShell(string template, string addr)
	{
		var rule = new Rewrite.Rule(new System.Text.RegularExpressions.Regex("^(h)!(.*)$", System.Text.RegularExpressions.RegexOptions.Singleline), Rewrite.Kind.Pipe, template, null, "");
		var m = rule.Pattern.Match(addr);
		var t = Template.Fill(template, m, "example.org!alice", false)!;
		var line = t.Shell(out var why);
		if (line is null)
			return (null, why);
		var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
		psi.ArgumentList.Add("-c");
		psi.ArgumentList.Add(line);
		using var p = Process.Start(psi)!;
		var o = p.StandardOutput.ReadToEnd();
		p.WaitForExit();
		return (o, "");
	}

	[Test]
	public void HostilePiecesComeOutExactly()
	{
		using var t = new Tree();
		var marker = t.P("/touched");
		// the templates an administrator may write around an address: '…', "…", bare, glued to other text, several
		var templates = new (string Tpl, Func<string, string> Want)[] {
			(@"printf '[%s]\\n' '\2'", a => $"[{a}]\n"),
			(@"printf '[%s]\\n' ""\2""", a => $"[{a}]\n"),
			(@"printf '[%s]\\n' \2", a => $"[{a}]\n"),
			(@"printf '[%s]\\n' x'\2'y", a => $"[x{a}y]\n"),
			(@"printf '[%s]\\n' ""a\1b""'\2'", a => $"[ahb{a}]\n"),
			(@"printf '[%s]\\n' & ""&""", a => $"[h!{a}]\n[h!{a}]\n"),
			(@"printf '[%s]\\n' '\s'", _ => "[example.org!alice]\n"),
		};
		foreach (var raw in Hostile) {
			var a = raw.Replace("/tmp/x", marker);
			foreach (var (tpl, want) in templates) {
				var (o, why) = RunShell(tpl, "h!" + a);
				Assert.That(o, Is.EqualTo(want(a)), $"{tpl} with {a}: {why}");
			}
		}
		Assert.That(File.Exists(marker), Is.False, "nothing of an address was run");
	}

	[TestCase("a\nb")]
	[TestCase("a\rb")]
	[TestCase("a\u007fb")]
	[TestCase("a\u0001b")]
	public void ControlBytesNeverReachACommand(string a)
	{
		var (o, why) = RunShell(@"printf '%s' '\2'", "h!" + a);
		Assert.That((o, why), Is.EqualTo(((string?)null, "control character in address")));
	}

	[TestCase(@"echo 'open \2")]
	[TestCase(@"echo ""open \2")]
	[TestCase(@"echo \\\2")]
	public void RulesThatCannotQuoteAnAddressAreRefused(string tpl)
	{
		var (o, why) = RunShell(tpl, "h!bob");
		Assert.That(o, Is.Null);
		Assert.That(why, Does.StartWith("rewrite rule"));
	}

	[Test]
	public void PipeCommandsMergeUpTo32RecipientsAnd1024Characters()
	{
		var cmds = new List<Command>();
		for (var i = 0; i < 40; i++)
			Command.Merge(cmds, "qmail 'a' 'net!h'", $"'u{i}'", $"h!u{i}", null);
		Command.Merge(cmds, "qmail 'a' 'net!h'", "'u3'", "h!u3", null); // the same recipient again: once
		Command.Merge(cmds, "qmail 'a' 'net!other'", "'u1'", "other!u1", null);
		Assert.That(cmds.Select(c => c.Rcpts.Count), Is.EqualTo(new[] { 32, 8, 1 }));
		Assert.That(cmds[0].Text, Does.StartWith("qmail 'a' 'net!h' 'u0' 'u1' 'u2'"));

		cmds.Clear();
		var big = "'" + new string('x', 300) + "'";
		for (var i = 0; i < 5; i++)
			Command.Merge(cmds, "c", big + i, "h!x" + i, null);
		Assert.That(cmds.Select(c => c.Rcpts.Count), Is.EqualTo(new[] { 3, 2 }), "at most 1024 characters of arguments per run");
		Assert.That(cmds.All(c => c.Text.Length - 1 < 1024 + 2), Is.True);
	}

	// --- through the real send ---

	static Tree NewTree(string rewrite, params string[] users)
	{
		var t = new Tree();
		t.Write("/sys/log/mail", "");
		t.Write("/mail/lib/rewrite", rewrite);
		foreach (var u in users)
			Directory.CreateDirectory(t.P("/mail/box/" + u));
		return t;
	}

	static (string Out, string Err, int Exit) Send(Tree t, string input, params string[] args)
	{
		var (o, e, x) = Tree.Exec(t.Prog(Repo.Bin("send"), args), Encoding.Latin1.GetBytes(input));
		return (Encoding.UTF8.GetString(o), e, x);
	}

	const string Env = "From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from \n";

	[Test]
	public void AliasChainsStopAt32()
	{
		var rules = new StringBuilder();
		for (var i = 0; i < 40; i++)
			rules.Append($"a{i} alias a{i + 1}\n");
		rules.Append("a40 >> /mail/box/glenda/mbox\nloop1 alias loop2\nloop2 alias loop1\n");
		using var t = NewTree(rules.ToString(), "glenda");
		Assert.That(Send(t, "", "-x", "a8"), Is.EqualTo(("local!a40\n", "", 0)), "32 steps");
		Assert.That(Send(t, "", "-x", "a7"), Is.EqualTo(("forwarding loop: a7\n", "", 1)), "33 steps");
		Assert.That(Send(t, "", "-x", "loop1"), Is.EqualTo(("forwarding loop: loop1\n", "", 1)));
		var r = Send(t, Env + "Subject: loop\n\nround\n", "-r", "loop1", "a8");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var box = File.ReadAllText(t.P("/mail/box/glenda/mbox"));
		Assert.That(box, Does.StartWith("From example.org!alice Mon Nov 24 01:21:00 EST 2025\nSubject: loop\n"));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("error+ forwarding loop"));
	}

	[Test]
	public void NoMatchingRuleIsAnInvalidAddress()
	{
		using var t = NewTree("bob >> /mail/box/bob/mbox\n", "bob");
		Assert.That(Send(t, "", "-x", "bob", "carol"), Is.EqualTo(("local!bob\nInvalid address: carol\n", "", 1)));
	}

	[Test]
	public void CatRefusesPathsThatClimbOut()
	{
		using var t = NewTree(@"local!(.+)  >>  /mail/box/\1/mbox" + "\n", "bob");
		Directory.CreateDirectory(t.P("/mail/box/..x"));
		Assert.That(Send(t, "", "-x", "local!bob"), Is.EqualTo(("local!bob\n", "", 0)));
		foreach (var a in new[] { "local!..", "local!../box/bob", "local!.", "local!..x", "local!nobody" })
			Assert.That(Send(t, "", "-x", a), Is.EqualTo(($"unknown user: {a}\n", "", 1)), a);
	}

	/// <summary>
	/// A | rule gets hostile addresses through send -r: the recorder sees each address as one exact argument,
	/// the shell runs none of it, and the recipients of one host share one run.
	/// </summary>
	[Test]
	public void PipeRuleGetsHostileAddressesExactly()
	{
		using var t = NewTree("", "glenda");
		var marker = t.P("/touched");
		t.Write("/rec", "#!/bin/sh\nd=$(dirname \"$0\")\nn=$(ls \"$d\" | grep -c '^run')\nprintf '%s\\n' \"$@\" > \"$d/run$n\"\ncat > \"$d/msg$n\"\n", 0x1ed);
		t.Write("/mail/lib/rewrite", $"([^!]+)!(.+)  |  \"{t.P("/rec")} '\\s' 'net!\\1'\"  \"'\\2'\"\n");
		var addrs = new[] { $"'; touch {marker} #", "$(touch " + marker + ")", "`touch " + marker + "`", "\"john doe\"", "a\\b" };
		var r = Send(t, Env + "Subject: hi\n\nbody\n", ["-r", "--", .. addrs.Select(a => "corp.example!" + a), "other.example!bob"]);
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(File.Exists(marker), Is.False);
		Assert.That(File.ReadAllText(t.P("/run0")), Is.EqualTo(string.Concat(new[] { "example.org!alice", "net!corp.example" }.Concat(addrs).Select(a => a + "\n"))));
		Assert.That(File.ReadAllText(t.P("/run1")), Is.EqualTo("example.org!alice\nnet!other.example\nbob\n"));
		Assert.That(File.ReadAllText(t.P("/msg0")), Is.EqualTo("From example.org!alice Mon Nov 24 01:21:00 EST 2025 remote from testhost\nSubject: hi\n\nbody\n"));
	}

	[Test]
	public void FailingPipeIsBouncedWithItsErrorOutput()
	{
		using var t = NewTree("([^!]+)!(.+)  |  \"echo no such mailbox >\\&2; exit 3\"\n[^!]+  >>  /mail/box/&/mbox\n", "alice");
		var r = Send(t, "From alice Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nbody\n", "-r", "h.example!bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		var box = File.ReadAllText(t.P("/mail/box/alice/mbox"));
		Assert.That(box, Does.Contain("The attached mail from 'alice'\nto 'h.example!bob'\nfailed with error 'no such mailbox'.\n"));
		// without -r: on stderr, exit 1
		r = Send(t, "From alice Mon Nov 24 01:21:00 EST 2025 remote from \nSubject: x\n\nbody\n", "h.example!bob");
		Assert.That((r.Exit, r.Err), Is.EqualTo((1, "send: h.example!bob: no such mailbox\n")));
	}

	[Test]
	public void TranslateOutputIsRoutedAgain()
	{
		using var t = NewTree("", "bob", "carol");
		t.Write("/tr", "#!/bin/sh\ncase $1 in\nteam) echo bob; echo _nosummary_; echo carol ;;\nfail) echo no such list >&2; exit 1 ;;\n*) echo local!$1 ;;\nesac\n", 0x1ed);
		t.Write("/mail/lib/rewrite", $"[^!@]+  translate  \"{t.P("/tr")} '&'\"\nlocal!([^!]+)  >>  /mail/box/\\1/mbox\n");
		Assert.That(Send(t, "", "-x", "team"), Is.EqualTo(("local!bob\nlocal!carol\n", "", 0)));
		Assert.That(Send(t, "", "-x", "fail"), Is.EqualTo(("invalid address: no such list: fail\n", "", 1)));
		var r = Send(t, Env + "Subject: t\n\nx\n", "-r", "team");
		Assert.That((r.Exit, r.Err), Is.EqualTo((0, "")));
		Assert.That(File.ReadAllText(t.P("/mail/box/carol/mbox")), Does.StartWith("From example.org!alice "));
		Assert.That(File.ReadAllText(t.P("/sys/log/mail")), Does.Contain("delivered bob From example.org!alice Mon Nov 24 01:21:00 EST 2025 (team)"));
	}

	[Test]
	public void WithoutARewriteFileRoutingIsBuiltIn()
	{
		using var t = NewTree("", "bob");
		File.Delete(t.P("/mail/lib/rewrite"));
		Assert.That(Send(t, "", "-x", "bob", "example.net!carol", "nobody"), Is.EqualTo(("local!bob\nexample.net!carol\nunknown user: nobody\n", "", 1)));
	}

	[Test]
	public void OurDomainsAreDroppedBeforeTheRules()
	{
		using var t = NewTree("local!([^!]+)  >>  /mail/box/\\1/mbox\n[^!@]+  alias  local!&\n([^!]+)!(.+)  |  \"cat >/dev/null\"  \"'\\2'\"\n", "bob");
		Assert.That(Send(t, "", "-x", "example.com!bob", "testhost!bob", "x.example.com!bob", "example.net!bob"),
			Is.EqualTo(("local!bob\nlocal!bob\nlocal!bob\nexample.net!bob\n", "", 0)));
	}
}
