using System.Globalization;

namespace Upas.Dmarc;

public enum DmarcPolicy { None, Quarantine, Reject }

/// <summary>A DMARC policy record (RFC 7489 §6.3): the tags smtpd acts on; reporting tags are read only for rua's presence.</summary>
public sealed record DmarcRecord(DmarcPolicy P, DmarcPolicy? Sp, int Pct, bool StrictDkim, bool StrictSpf)
{
	/// <summary>Whether a TXT string is a DMARC record at all: "v=DMARC1" as its first tag (§6.6.3 step 3).</summary>
	public static bool IsDmarc(string txt)
	{
		var semi = txt.IndexOf(';');
		var first = (semi < 0 ? txt : txt[..semi]).Trim(' ', '\t');
		var eq = first.IndexOf('=');
		return eq > 0 && first[..eq].TrimEnd(' ', '\t') == "v" && first[(eq + 1)..].TrimStart(' ', '\t') == "DMARC1";
	}

	/// <summary>
	/// Parses a record that <see cref="IsDmarc"/> accepted; null with why when it has no valid p= (and no rua=, which
	/// would make it p=none, §6.6.3 step 6) or an invalid sp=. Unknown tags are ignored; a bad pct, adkim or aspf
	/// value leaves the default (100, relaxed), as §6.3 lets a receiver do.
	/// </summary>
	public static DmarcRecord? Parse(string txt, out string why)
	{
		why = "";
		DmarcPolicy? p = null, sp = null;
		var pct = 100;
		bool strictDkim = false, strictSpf = false, rua = false, badP = false, badSp = false;
		var seen = new HashSet<string>(StringComparer.Ordinal);
		foreach (var part in txt.Split(';')) {
			var t = part.Trim(' ', '\t', '\r', '\n');
			if (t.Length == 0)
				continue;
			var eq = t.IndexOf('=');
			if (eq <= 0)
				continue;
			var tag = t[..eq].TrimEnd(' ', '\t').ToLowerInvariant();
			var val = t[(eq + 1)..].TrimStart(' ', '\t');
			if (!seen.Add(tag))
				continue; // the first of a duplicated tag counts
			switch (tag) {
			case "p":
				p = Policy(val);
				badP = p is null;
				break;
			case "sp":
				sp = Policy(val);
				badSp = sp is null;
				break;
			case "pct":
				if (int.TryParse(val, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 100)
					pct = n;
				break;
			case "adkim":
				strictDkim = val.Equals("s", StringComparison.OrdinalIgnoreCase);
				break;
			case "aspf":
				strictSpf = val.Equals("s", StringComparison.OrdinalIgnoreCase);
				break;
			case "rua":
				rua = val.Contains(':');
				break;
			}
		}
		if (p is null || badSp) {
			if (!rua) {
				why = p is null ? (badP ? "invalid p=" : "no p=") : "invalid sp=";
				return null;
			}
			p = DmarcPolicy.None;
			sp = null;
		}
		return new DmarcRecord(p.Value, sp, pct, strictDkim, strictSpf);
	}

	static DmarcPolicy? Policy(string v) => v.ToLowerInvariant() switch {
		"none" => DmarcPolicy.None,
		"quarantine" => DmarcPolicy.Quarantine,
		"reject" => DmarcPolicy.Reject,
		_ => null,
	};

	public static string Name(DmarcPolicy p) => p switch {
		DmarcPolicy.Quarantine => "quarantine",
		DmarcPolicy.Reject => "reject",
		_ => "none",
	};
}
