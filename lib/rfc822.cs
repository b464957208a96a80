using System.Text;

namespace Upas;

/// <summary>What a header field means to smtp and smtpd.</summary>
public enum FieldClass { Originator, Destination, Date, MessageId, Other }

/// <summary>One parsed header field, ready to be written out.</summary>
public sealed class HeaderField
{
	/// <summary>The field name as written ("From", "X-Foo"); "BadHeader" for unparseable text.</summary>
	public required string Name { get; init; }
	public required FieldClass Class { get; init; }
	/// <summary>The whole field, name and colon included, addresses rewritten, white space, comments and
	/// continuation lines kept; without the final LF.</summary>
	public required string Text { get; init; }
	/// <summary>The first address of an originator or destination field as written, before rewriting
	/// ("" for a leading &lt;&gt;); null for other fields and for address fields without an address.</summary>
	public string? FirstAddress { get; init; }
}

/// <summary>The result of <see cref="Rfc822.Parse(string, Func{string, string})"/>.</summary>
public sealed class ParsedHeader
{
	/// <summary>The fields in input order, BadHeader: fields included.</summary>
	public List<HeaderField> Fields { get; } = new();
	public bool HasOriginator, HasDestination, HasDate, HasMessageId;
	/// <summary>The address of a leading "From addr date remote from sys" envelope line.</summary>
	public string? EnvelopeFrom;
	/// <summary>That line's date as an RFC 5322 Date: value, the zone made numeric when it is the local one.</summary>
	public string? EnvelopeDate;
	/// <summary>Chars consumed by the envelope line and the fields; the input from here on is the rest,
	/// to be written verbatim (it starts with the LF of the blank line when there is one).</summary>
	public int Consumed;
}

/// <summary>
/// The RFC 822 header parser of upas (smtp/rfc822.y): classifies the fields, rewrites every address of
/// the originator and destination fields through a caller's function and keeps all else byte-exact.
/// Input is Latin-1 text (one char per byte) with LF line ends.
/// </summary>
public static class Rfc822
{
	// More nested groups than this make the line unparseable; the original's yacc stack was 500 deep.
	const int MaxGroupDepth = 100;

	enum Syntax { MailboxList, Mailbox, AddressList, OptAddressList, RouteAddr, Things, OptThings }

	// The fields the original knows by name; any other "name:" is an ordinary field (OptThings).
	static readonly Dictionary<string, (FieldClass Class, Syntax Syntax)> Known = new(StringComparer.OrdinalIgnoreCase) {
		["from"] = (FieldClass.Originator, Syntax.MailboxList),
		["sender"] = (FieldClass.Originator, Syntax.Mailbox),
		["reply-to"] = (FieldClass.Originator, Syntax.AddressList),
		["resent-from"] = (FieldClass.Originator, Syntax.Mailbox),
		["resent-sender"] = (FieldClass.Originator, Syntax.Mailbox),
		["resent-reply-to"] = (FieldClass.Originator, Syntax.AddressList),
		["return_path"] = (FieldClass.Originator, Syntax.RouteAddr),
		["to"] = (FieldClass.Destination, Syntax.OptAddressList),
		["cc"] = (FieldClass.Destination, Syntax.OptAddressList),
		["bcc"] = (FieldClass.Destination, Syntax.OptAddressList),
		["resent-to"] = (FieldClass.Destination, Syntax.OptAddressList),
		["resent-cc"] = (FieldClass.Destination, Syntax.OptAddressList),
		["resent-bcc"] = (FieldClass.Destination, Syntax.OptAddressList),
		["date"] = (FieldClass.Date, Syntax.Things),
		["resent-date"] = (FieldClass.Date, Syntax.Things),
		["message-id"] = (FieldClass.MessageId, Syntax.OptThings),
	};

	/// <summary>Parses the header at the start of <paramref name="text"/>; <paramref name="rewrite"/> gets
	/// every address of the originator and destination fields as written and returns its replacement.</summary>
	public static ParsedHeader Parse(string text, Func<string, string> rewrite) => Parse(text, (a, _) => rewrite(a));

	/// <summary>As above; the rewrite function also learns whether the address sits inside &lt;…&gt;
	/// (smtp wraps bare source routes). The local zone (Plan 9 name and offset) defaults to the
	/// machine's; it decides whether the envelope date's zone is made numeric.</summary>
	public static ParsedHeader Parse(string text, Func<string, bool, string> rewrite, string? localZone = null, TimeSpan? localOffset = null)
	{
		var h = new ParsedHeader();
		var lex = new Lexer(text);
		var pos = 0;
		var bad = -1;	// start of unparseable lines that wait for a field to follow
		for (;;) {
			var c = lex.Peek(pos);
			// An empty line ends the header; so does a line starting with white space or a comment, as in the original.
			if (c < 0 || c is '\n' or ' ' or '\t' or '\r' or '(')
				break;
			var toks = lex.Line(pos, out var end, out var terminated);
			if (pos == 0 && terminated && Envelope(toks, h, localZone, localOffset)) {
				pos = h.Consumed = end;
				continue;
			}
			var f = terminated ? Field(toks, rewrite) : null;
			if (f == null) {
				if (bad < 0)
					bad = pos;
				if (!terminated)
					break;
				pos = end;
				continue;
			}
			if (bad >= 0) {
				var skipped = Lexer.Clean(text, bad, pos - 1);
				if (!skipped.StartsWith("From ", StringComparison.Ordinal))	// a stray envelope line vanishes
					h.Fields.Add(new HeaderField { Name = "BadHeader", Class = FieldClass.Other, Text = "BadHeader: " + skipped });
				bad = -1;
			}
			h.Fields.Add(f);
			h.HasOriginator |= f.Class == FieldClass.Originator;
			h.HasDestination |= f.Class == FieldClass.Destination;
			h.HasDate |= f.Class == FieldClass.Date;
			h.HasMessageId |= f.Class == FieldClass.MessageId;
			pos = h.Consumed = end;
		}
		return h;
	}

	/// <summary>One field line: the name (words and &lt; &gt; @ ; , with no white space inside) up to the
	/// first colon, then what the name's syntax allows; null when the line does not parse.</summary>
	static HeaderField? Field(List<Token> t, Func<string, bool, string> rewrite)
	{
		var colon = t.FindIndex(x => x.Op == ':');
		if (colon <= 0)
			return null;
		for (var k = 0; k < colon - 1; k++)
			if (t[k].White.Length > 0)
				return null;
		var name = colon == 1 ? t[0].Text : string.Concat(t.Take(colon).Select(x => x.Text));
		var (cls, syntax) = colon == 1 && t[0].Op == Token.Word && Known.TryGetValue(name, out var known) ? known : (FieldClass.Other, Syntax.OptThings);

		var g = new Grammar(t, colon + 1);
		var ok = syntax switch {
			Syntax.MailboxList => g.MailboxList(),
			Syntax.Mailbox => g.Mailbox(),
			Syntax.AddressList => g.AddressList(),
			Syntax.OptAddressList => g.AtEnd || g.AddressList(),
			Syntax.RouteAddr => g.RouteAddr(false),
			Syntax.Things => !g.AtEnd && g.SkipAll(),
			_ => g.SkipAll(),
		};
		if (!ok || !g.AtEnd)
			return null;

		// Write the tokens back; an address's white space and comments follow it, as the original does.
		var sb = new StringBuilder();
		var a = 0;
		for (var k = 0; k < t.Count;) {
			if (a < g.Addresses.Count && g.Addresses[a].From == k) {
				var (from, to, bracketed) = g.Addresses[a++];
				sb.Append(rewrite(Tokens(t, from, to), bracketed));
				for (; k < to; k++)
					sb.Append(t[k].White);
			} else {
				sb.Append(t[k].Text).Append(t[k].White);
				k++;
			}
		}
		var isAddr = cls is FieldClass.Originator or FieldClass.Destination;
		return new HeaderField { Name = name, Class = cls, Text = sb.ToString(), FirstAddress = isAddr ? g.First : null };
	}

	/// <summary>"From addr wday mon mday hh:mm[:ss] zone year remote from sys": the Unix envelope line.
	/// Without "remote from" the original does not take it as one (it is then just an unparseable line).</summary>
	static bool Envelope(List<Token> t, ParsedHeader h, string? localZone, TimeSpan? localOffset)
	{
		if (t.Count == 0 || !IsWord(t[0], "from"))
			return false;
		var g = new Grammar(t, 1);
		if (!g.RouteAddr(false))
			return false;
		var k = g.Addresses[0].To;
		if (k + 3 > t.Count || !t.Skip(k).Take(3).All(x => x.Op == Token.Word))
			return false;
		var (wday, mon, mday) = (t[k].Text, t[k + 1].Text, t[k + 2].Text);
		k += 3;
		var time = k;	// word (':' word)*
		if (k >= t.Count || t[k++].Op != Token.Word)
			return false;
		while (k + 1 < t.Count && t[k].Op == ':' && t[k + 1].Op == Token.Word)
			k += 2;
		var clock = Tokens(t, time, k);
		if (k + 5 != t.Count || t.Skip(k).Any(x => x.Op != Token.Word) || !IsWord(t[k + 2], "remote") || !IsWord(t[k + 3], "from"))
			return false;
		var (zone, year) = (t[k].Text, t[k + 1].Text);
		var now = DateTime.Now;	// the original compares with the zone in force now, not at the envelope's date
		if (zone == (localZone ?? PlanTime.Zone(now)))
			zone = PlanTime.NumericZone(localOffset ?? TimeZoneInfo.Local.GetUtcOffset(now));
		h.EnvelopeFrom = Tokens(t, 1, g.Addresses[0].To);
		h.EnvelopeDate = $"{wday}, {mday} {mon} {year} {clock} {zone}";
		return true;
	}

	static bool IsWord(Token x, string w) => x.Op == Token.Word && x.Text.Equals(w, StringComparison.OrdinalIgnoreCase);

	static string Tokens(List<Token> t, int from, int to)
	{
		if (to - from == 1)
			return t[from].Text;
		var sb = new StringBuilder();
		for (var k = from; k < to; k++)
			sb.Append(t[k].Text);
		return sb.ToString();
	}

	/// <summary>A word (Op == Word) or one of the specials @ &lt; &gt; : , ; with the white space and comments after it.</summary>
	readonly record struct Token(char Op, string Text, string White)
	{
		public const char Word = '\0';
	}

	/// <summary>The original's lexer. NULs are invisible: skipped everywhere, dropped from the tokens.</summary>
	readonly struct Lexer(string s)
	{
		static bool IsSpecial(char c) => c is '@' or '<' or '>' or ':' or ',' or ';';

		/// <summary>The first char at or after i that is not NUL, or -1 at the end.</summary>
		public int Peek(int i)
		{
			for (; i < s.Length; i++)
				if (s[i] != '\0')
					return s[i];
			return -1;
		}

		// An LF followed by a space or tab continues the line.
		bool Continues(int lf) => Peek(lf + 1) is ' ' or '\t';

		/// <summary>The tokens of the logical line at start: up to an LF that is not a continuation
		/// (terminated, end after it) or to the end of the input.</summary>
		public List<Token> Line(int start, out int end, out bool terminated)
		{
			var toks = new List<Token>();
			var i = start;
			for (;;) {
				var c = Peek(i);
				if (c < 0) {
					(end, terminated) = (s.Length, false);
					return toks;
				}
				while (s[i] == '\0')
					i++;
				if (c == '\n') {
					(end, terminated) = (i + 1, true);
					return toks;
				}
				var from = i;
				var op = IsSpecial((char)c) ? (char)c : Token.Word;
				if (op == Token.Word)
					SkipWord(ref i);
				else
					i++;
				var text = Clean(s, from, i);
				from = i;
				SkipWhite(ref i);
				toks.Add(new Token(op, text, Clean(s, from, i)));
			}
		}

		/// <summary>A word: quoted strings and \-escapes stay in it; an unclosed quote ends with its line
		/// and an LF is never escaped (a trailing backslash must not swallow the next line).</summary>
		void SkipWord(ref int i)
		{
			bool quoting = false, escaping = false;
			for (; i < s.Length; i++) {
				var c = s[i];
				if (c == '\0')
					continue;
				if (escaping && c != '\n') {
					escaping = false;
					continue;
				}
				escaping = false;
				if (quoting) {
					if (c == '\\')
						escaping = true;
					else if (c == '"')
						quoting = false;
					if (c != '\n' || Continues(i))
						continue;
					quoting = false;
				}
				if (c is '(' or ' ' or '\t' or '\r' or '\n' || IsSpecial(c))
					return;
				if (c == '\\')
					escaping = true;
				else if (c == '"')
					quoting = true;
			}
		}

		/// <summary>White space, (nested (comments)) and continuation line breaks.</summary>
		void SkipWhite(ref int i)
		{
			int depth = 0;
			var escaping = false;
			for (; i < s.Length; i++) {
				var c = s[i];
				if (c == '\0')
					continue;
				if (escaping && c != '\n') {
					escaping = false;
					continue;
				}
				escaping = false;
				if (c == '\n') {
					if (!Continues(i))
						return;
				} else if (depth > 0) {
					if (c == '\\')
						escaping = true;
					else if (c == '(')
						depth++;
					else if (c == ')')
						depth--;
				} else if (c == '(')
					depth++;
				else if (c is not (' ' or '\t' or '\r'))
					return;
			}
		}

		/// <summary>s[from..to) without its NULs.</summary>
		public static string Clean(string s, int from, int to)
		{
			var span = s.AsSpan(from, to - from);
			return span.Contains('\0') ? span.ToString().Replace("\0", "") : span.ToString();
		}
	}

	/// <summary>Recursive descent over one line's tokens, after the original's BNF (rfc822.y):
	/// <code>
	/// address_list: address (',' address)*       address: mailbox | group
	/// group:        phrase ':' [address_list] ';'  mailbox_list: mailbox (',' mailbox)*
	/// mailbox:      route_addr | [phrase] '&lt;' [route_addr] '&gt;'
	/// route_addr:   ['@' word (',' '@' word)* ':'] word ('@' word)*   (after a route, one '@' at least)
	/// phrase:       word+
	/// </code>
	/// It records each route_addr's token range.</summary>
	sealed class Grammar(List<Token> t, int i)
	{
		public readonly List<(int From, int To, bool Bracketed)> Addresses = [];
		public string? First;	// the first address as written; "" when it is <>
		int depth;

		public bool AtEnd => i >= t.Count;
		bool Is(char op, int ahead = 0) => i + ahead < t.Count && t[i + ahead].Op == op;

		bool Eat(char op)
		{
			if (!Is(op))
				return false;
			i++;
			return true;
		}

		int Words()
		{
			var n = 0;
			while (Is(Token.Word, n))
				n++;
			return n;
		}

		public bool SkipAll()
		{
			i = t.Count;
			return true;
		}

		public bool AddressList()
		{
			do
				if (!Address())
					return false;
			while (Eat(','));
			return true;
		}

		public bool MailboxList()
		{
			do
				if (!Mailbox())
					return false;
			while (Eat(','));
			return true;
		}

		bool Address()
		{
			var n = Words();
			if (n == 0 || !Is(':', n))
				return Mailbox();
			i += n + 1;
			if (Eat(';'))
				return true;
			if (++depth > MaxGroupDepth)
				return false;
			var ok = AddressList() && Eat(';');
			depth--;
			return ok;
		}

		public bool Mailbox()
		{
			if (Is('@'))
				return RouteAddr(false);
			var n = Words();
			if (Is('<', n)) {
				i += n + 1;
				if (Eat('>')) {	// the null address <>: nothing to rewrite
					First ??= "";
					return true;
				}
				return RouteAddr(true) && Eat('>');
			}
			return n == 1 && RouteAddr(false);
		}

		public bool RouteAddr(bool bracketed)
		{
			var from = i;
			if (Eat('@')) {
				if (!Eat(Token.Word))
					return false;
				while (Eat(','))
					if (!Eat('@') || !Eat(Token.Word))
						return false;
				if (!Eat(':') || !Is('@', 1))
					return false;
			}
			if (!Eat(Token.Word))
				return false;
			while (Eat('@'))
				if (!Eat(Token.Word))
					return false;
			Addresses.Add((from, i, bracketed));
			First ??= Tokens(t, from, i);
			return true;
		}
	}
}
