using System.Text;
using Upas.Dmarc;

namespace Upas.Smtpd;

/// <summary>
/// The client's header past smtpd's 16 KB window, up to its empty line: an Authentication-Results field there
/// that claims our domain (or an X-upas-quarantine field) is dropped as in the window, so padding cannot smuggle
/// one past the check. Lines in, lines out; the body after the empty line passes through untouched.
/// </summary>
sealed class HeaderTail(string dom)
{
	/// <summary>A field we may drop is held up to this size; a longer one is dropped whole (no real one is that long).</summary>
	const int MaxField = 64 * 1024;

	bool done;
	readonly MemoryStream line = new();	// the current line, until its LF
	MemoryStream? held;			// a field named like ours, until we see where it ends
	bool overflow;
	readonly MemoryStream output = new();

	/// <summary>Whether the header has ended: everything now passes as it is.</summary>
	public bool Done => done && line.Length == 0 && held is null;

	/// <summary>What of chunk goes on (valid until the next call).</summary>
	public ReadOnlyMemory<byte> Filter(ReadOnlySpan<byte> chunk)
	{
		output.SetLength(0);
		while (chunk.Length > 0) {
			if (done) {
				output.Write(chunk);
				break;
			}
			var nl = chunk.IndexOf((byte)'\n');
			if (nl < 0) {
				line.Write(chunk);
				if (line.Length > DotReader.DefaultMaxLine) {
					// a line this long gets the message refused (552) anyway: pass it on rather than hold it
					output.Write(line.GetBuffer(), 0, (int)line.Length);
					line.SetLength(0);
				}
				break;
			}
			line.Write(chunk[..(nl + 1)]);
			chunk = chunk[(nl + 1)..];
			Line(line.GetBuffer().AsSpan(0, (int)line.Length));
			line.SetLength(0);
		}
		return output.GetBuffer().AsMemory(0, (int)output.Length);
	}

	/// <summary>The rest at the end of the message (a field still held, a last line without LF).</summary>
	public ReadOnlyMemory<byte> Flush()
	{
		output.SetLength(0);
		if (!done && line.Length > 0)
			Line(line.GetBuffer().AsSpan(0, (int)line.Length)); // a last line without LF is judged like the others
		else
			output.Write(line.GetBuffer().AsSpan(0, (int)line.Length));
		line.SetLength(0);
		EndField();
		done = true;
		return output.GetBuffer().AsMemory(0, (int)output.Length);
	}

	void Line(ReadOnlySpan<byte> l)
	{
		if (l.Length == 1 || (l.Length == 2 && l[0] == '\r')) {
			EndField();
			output.Write(l);
			done = true;
			return;
		}
		if (l[0] is (byte)' ' or (byte)'\t') {
			if (held is null) {
				output.Write(l);
			} else if (held.Length + l.Length > MaxField) {
				overflow = true;
			} else {
				held.Write(l);
			}
			return;
		}
		EndField();
		if (Ours(l)) {
			held = new MemoryStream();
			held.Write(l);
		} else
			output.Write(l);
	}

	static bool Ours(ReadOnlySpan<byte> l)
	{
		var colon = l.IndexOf((byte)':');
		if (colon < 0)
			return false;
		var name = Encoding.Latin1.GetString(l[..colon]).TrimEnd(' ', '\t');
		return name.Equals("Authentication-Results", StringComparison.OrdinalIgnoreCase) || name.Equals("X-upas-quarantine", StringComparison.OrdinalIgnoreCase);
	}

	void EndField()
	{
		if (held is null)
			return;
		var text = Encoding.Latin1.GetString(held.GetBuffer(), 0, (int)held.Length);
		var drop = overflow || text.StartsWith("X-upas-quarantine", StringComparison.OrdinalIgnoreCase) || AuthResults.ClaimsDomain(text.TrimEnd('\n', '\r'), dom);
		if (!drop)
			output.Write(held.GetBuffer(), 0, (int)held.Length);
		held = null;
		overflow = false;
	}
}
