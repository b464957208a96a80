namespace Upas.Smtpd;

enum Verb { Helo, Ehlo, Mail, Rcpt, Data, Rset, Noop, Quit, StartTls, Help, Vrfy, Auth }

/// <summary>Why a line is not a command; each kind is one reply and nothing in the line runs (decisions #3).</summary>
enum CmdError { None, Syntax, BadParam, EightBit }

/// <summary>One parsed command line. Value is the Bell Labs value: bang-form path, domain, or string.</summary>
sealed record Cmd(Verb Verb, string Value = "", string Raw = "", string? Arg2 = null)
{
	public long Size { get; init; } = -1;	// MAIL SIZE=
	public CmdError Error { get; init; }
	public string? BadParam { get; init; }
}

/// <summary>
/// The grammar of smtpd.y as a pure function of one line (no EOL; Latin-1, one char per byte):
/// keywords case-insensitive, values keep their case, local@domain becomes domain!local.
/// </summary>
static class CmdParser
{
	const string StringSpecials = "!#$%&'*+-/=?[]^_`{|}~";

	public static Cmd Parse(string line)
	{
		var p = new Cursor(line);
		try {
			return p.Command();
		} catch (BadLine e) {
			// the verb tells which reply a bad parameter gets; nothing else of the line is used
			return new Cmd(p.Verb) { Error = e.Kind, BadParam = e.Param };
		}
	}

	sealed class BadLine(CmdError kind, string? param = null) : Exception
	{
		public CmdError Kind { get; } = kind;
		public string? Param { get; } = param;
	}

	static BadLine Bad() => new(CmdError.Syntax);

	/// <summary>Recursive descent over the line; every method throws BadLine on the first error.</summary>
	sealed class Cursor(string s)
	{
		int i;
		public Verb Verb { get; private set; } = Verb.Noop;

		char Peek => i < s.Length ? s[i] : '\0';
		bool AtEnd => i >= s.Length;

		static bool IsSpace(char c) => c is ' ' or '\t' or '\v' or '\f' or '\r';
		static bool IsLetter(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z';
		static bool IsDigit(char c) => c is >= '0' and <= '9';
		static bool IsLetDig(char c) => IsLetter(c) || IsDigit(c);

		public Cmd Command()
		{
			foreach (var c in s) {
				if (c < ' ' && !IsSpace(c) || c == '\x7f')
					throw Bad(); // NUL and other controls are never part of a command
			}
			var start = i;
			while (IsLetter(Peek))
				i++;
			var kw = s[start..i].ToUpperInvariant();
			Verb = kw switch {
				"MAIL" or "SEND" or "SOML" or "SAML" => Verb.Mail,
				"RCPT" => Verb.Rcpt,
				_ => Verb.Noop,
			};
			switch (kw) {
			case "HELO":
			case "EHLO": {
				Spaces1();
				var d0 = i;
				var dom = Domain();
				var raw = s[d0..i];
				Spaces0();
				End();
				return new Cmd(kw == "HELO" ? Verb.Helo : Verb.Ehlo, dom, raw);
			}
			case "MAIL":
			case "SEND":
			case "SOML":
			case "SAML":
				return Mail();
			case "RCPT": {
				Spaces1();
				Keyword("TO:");
				Spaces0();
				var path = Path();
				Spaces0();
				if (!AtEnd)
					throw Bad(); // RCPT has no parameters we honour
				return new Cmd(Verb.Rcpt, path);
			}
			case "DATA": End(); return new Cmd(Verb.Data);
			case "RSET": End(); return new Cmd(Verb.Rset);
			case "NOOP": End(); return new Cmd(Verb.Noop);
			case "QUIT": End(); return new Cmd(Verb.Quit);
			case "STARTTLS": End(); return new Cmd(Verb.StartTls);
			case "HELP":
				if (!AtEnd) {
					Spaces1();
					String();
					End();
				}
				return new Cmd(Verb.Help);
			case "VRFY":
			case "EXPN": {
				Spaces1();
				var v0 = i;
				var v = String();
				var raw = s[v0..i];
				End();
				return new Cmd(Verb.Vrfy, v, raw);
			}
			case "AUTH": {
				Spaces1();
				var mech = String();
				string? resp = null;
				Spaces0(); // trailing blanks are harmless here, and clients send them
				if (!AtEnd) {
					resp = String();
					Spaces0();
				}
				End();
				return new Cmd(Verb.Auth, mech, Arg2: resp);
			}
			default:
				throw Bad();
			}
		}

		Cmd Mail()
		{
			Spaces1();
			Keyword("FROM:");
			Spaces0();
			var path = Path();
			long size = -1;
			while (true) {
				var before = i;
				Spaces0();
				if (AtEnd)
					break;
				if (i == before)
					throw Bad();
				var p0 = i;
				while (!AtEnd && !IsSpace(Peek) && Peek != '=')
					i++;
				var name = s[p0..i].ToUpperInvariant();
				if (Peek != '=')
					throw new BadLine(CmdError.BadParam, s[p0..i]);
				i++;
				switch (name) {
				case "AUTH":
					// RFC 4954: the value is ignored, as Bell Labs does
					Spaces0();
					if (Peek == '<')
						Path();
					else
						Mailbox();
					break;
				case "SIZE": {
					var d0 = i;
					while (IsDigit(Peek))
						i++;
					if (i == d0 || i - d0 > 18)
						throw Bad();
					size = long.Parse(s.AsSpan(d0, i - d0));
					break;
				}
				case "BODY": {
					var b0 = i;
					while (IsLetDig(Peek))
						i++;
					var body = s[b0..i].ToUpperInvariant();
					if (body is not ("7BIT" or "8BITMIME"))
						throw new BadLine(CmdError.BadParam, s[p0..i]);
					break;
				}
				default:
					while (!AtEnd && !IsSpace(Peek))
						i++;
					throw new BadLine(CmdError.BadParam, s[p0..i]);
				}
			}
			return new Cmd(Verb.Mail, path) { Size = size };
		}

		void End()
		{
			if (!AtEnd)
				throw Bad();
		}

		void Spaces0()
		{
			while (IsSpace(Peek))
				i++;
		}

		void Spaces1()
		{
			if (!IsSpace(Peek))
				throw Bad();
			Spaces0();
		}

		void Keyword(string kw)
		{
			if (i + kw.Length > s.Length || string.Compare(s, i, kw, 0, kw.Length, StringComparison.OrdinalIgnoreCase) != 0)
				throw Bad();
			i += kw.Length;
		}

		void Expect(char c)
		{
			if (Peek != c)
				throw Bad();
			i++;
		}

		/// <summary>&lt;&gt; is /dev/null; &lt;@a,@b:box&gt; is a!b!box.</summary>
		string Path()
		{
			Expect('<');
			if (Peek == '>') {
				i++;
				return "/dev/null";
			}
			var route = new List<string>();
			if (Peek == '@') {
				while (true) {
					Expect('@');
					route.Add(Domain());
					if (Peek != ',')
						break;
					i++;
				}
				Expect(':');
			}
			var box = Mailbox();
			Expect('>');
			route.Add(box);
			var v = string.Join('!', route);
			foreach (var c in v) {
				if (c > '\x7f')
					throw new BadLine(CmdError.EightBit); // decisions #19: no SMTPUTF8 yet
			}
			return v;
		}

		string Mailbox()
		{
			var local = Local();
			if (Peek != '@')
				return local;
			i++;
			return Domain() + "!" + local;
		}

		/// <summary>dot-string or quoted string (quotes kept, \x gives x).</summary>
		string Local()
		{
			if (Peek == '"') {
				var sb = new System.Text.StringBuilder();
				sb.Append('"');
				i++;
				while (true) {
					if (AtEnd)
						throw Bad();
					var c = s[i++];
					if (c == '"')
						break;
					if (c == '\\') {
						if (AtEnd)
							throw Bad();
						c = s[i++];
					}
					sb.Append(c);
				}
				sb.Append('"');
				return sb.ToString();
			}
			var parts = new List<string> { String() };
			while (Peek == '.') {
				i++;
				parts.Add(String());
			}
			return string.Join('.', parts);
		}

		/// <summary>Letters, digits, the specials, 8-bit bytes, or \ and any character.</summary>
		string String()
		{
			var sb = new System.Text.StringBuilder();
			while (!AtEnd) {
				var c = Peek;
				if (c == '\\' && i + 1 < s.Length) {
					sb.Append(s[i + 1]);
					i += 2;
				} else if (IsLetDig(c) || StringSpecials.Contains(c) || c > '\x7f') {
					sb.Append(c);
					i++;
				} else
					break;
			}
			if (sb.Length == 0)
				throw Bad();
			return sb.ToString();
		}

		/// <summary>Elements joined by dots, optional trailing dot (dropped from the value).</summary>
		string Domain()
		{
			var parts = new List<string> { Element() };
			while (Peek == '.') {
				i++;
				if (!IsLetDig(Peek) && Peek != '#' && Peek != '[')
					break; // trailing dot
				parts.Add(Element());
			}
			return string.Join('.', parts);
		}

		/// <summary>A name, #digits, [] or an address literal [a.b.c.d] / [IPv6:...].</summary>
		string Element()
		{
			var e0 = i;
			if (Peek == '#') {
				i++;
				var d0 = i;
				while (IsDigit(Peek))
					i++;
				if (i == d0)
					throw Bad();
				return s[e0..i];
			}
			if (Peek == '[') {
				i++;
				while (!AtEnd && (IsLetDig(Peek) || Peek is '.' or ':'))
					i++;
				Expect(']');
				var lit = s[(e0 + 1)..(i - 1)];
				if (lit.Length > 0 && !IsAddressLiteral(lit))
					throw Bad();
				return s[e0..i];
			}
			// names start and end with a letter or digit; hyphens and underscores only inside (RFC 5321 allows xn--)
			if (!IsLetDig(Peek))
				throw Bad();
			while (IsLetDig(Peek) || Peek is '-' or '_')
				i++;
			if (!IsLetDig(s[i - 1]))
				throw Bad();
			return s[e0..i];
		}

		static bool IsAddressLiteral(string lit)
		{
			if (lit.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
				return System.Net.IPAddress.TryParse(lit[5..], out var a6) && a6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
			var parts = lit.Split('.');
			return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(IsDigit) && int.Parse(p) <= 255);
		}
	}
}
