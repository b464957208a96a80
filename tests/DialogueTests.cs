using System.Text;
using NUnit.Framework;
using Tomlyn;
using Tomlyn.Serialization;

namespace Upas.Tests;

public sealed class DialogueFile
{
	public List<Dialogue> Dialogue { get; set; } = [];
}

public sealed class Dialogue
{
	public string Name { get; set; } = "";
	public List<string> Flags { get; set; } = [];
	public string Peer { get; set; } = "127.0.0.2";
	public string Conf { get; set; } = "";
	public Dictionary<string, string> Env { get; set; } = [];
	public bool Raw { get; set; }
	public string Input { get; set; } = "";
	public string Replies { get; set; } = "";
	public int Exit { get; set; }
	public string Log { get; set; } = "";
	public List<MailerRun> Mail { get; set; } = [];

	public override string ToString() => Name;
}

public sealed class MailerRun
{
	public List<string> Args { get; set; } = [];
	public string Msg { get; set; } = "";
}

[TomlSerializable(typeof(DialogueFile))]
[TomlSourceGenerationOptions(PropertyNameCaseInsensitive = true)]
internal sealed partial class DialogueToml : TomlSerializerContext;

/// <summary>The table-driven dialogues of dialogues.toml against the published smtpd over pipes.</summary>
public class DialogueTests
{
	static IEnumerable<Dialogue> Table()
	{
		var text = File.ReadAllText(Path.Join(Repo.Dir, "tests/dialogues.toml"));
		return TomlSerializer.Deserialize<DialogueFile>(text, DialogueToml.Default)!.Dialogue;
	}

	[Test]
	public void TableIsNotEmpty() => Assert.That(Table().Count(), Is.GreaterThan(30));

	[TestCaseSource(nameof(Table))]
	public void Dialogue(Dialogue d)
	{
		using var t = new Tree(Tree.DefaultConf + d.Conf, d.Peer);
		var input = d.Raw ? d.Input : Tree.Crlf(d.Input);
		var r = t.Run(Encoding.Latin1.GetBytes(input), d.Flags, d.Env);
		Assert.Multiple(() => {
			Assert.That(r.Out, Is.EqualTo(Tree.Crlf(d.Replies)), "replies");
			Assert.That(r.Exit, Is.EqualTo(d.Exit), "exit status");
			var caps = t.Captures();
			var sizes = new Queue<int>(caps.Where(c => c.Args[0] == "-r").Select(c => c.Msg.Length));
			var want = d.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries)
				.Select(l => l.Contains("sent SIZE bytes") && sizes.Count > 0 ? l.Replace("SIZE", sizes.Dequeue().ToString()) : l);
			var log = t.Log().Select(l => l.Replace(t.Mailer, "MAILER"));
			Assert.That(log, Is.EqualTo(want), "log/smtpd");
			Assert.That(caps.Select(c => string.Join(' ', c.Args)), Is.EqualTo(d.Mail.Select(m => string.Join(' ', m.Args))), "mailer argv");
			for (var i = 0; i < Math.Min(caps.Count, d.Mail.Count); i++)
				Assert.That(Tree.NoDates(caps[i].Text), Is.EqualTo(d.Mail[i].Msg), $"mailer input {i + 1}");
		});
	}
}
