namespace R1Sharp.Verifier;

internal enum Tok { Num, Letter, Cmd, Op, Text, End }

/// <summary>One lexical token. Op covers single punctuation and the few multi-character operators
/// (&lt;=, &gt;=, !=); \{ \} and \\ become the private ops "{{", "}}" and "\\\\" so the parser can tell
/// them from grouping braces.</summary>
internal readonly record struct Token(Tok Kind, string Text);

/// <summary>Turns normalised LaTeX or plain text into tokens. Letters are single symbols (implicit
/// multiplication: "ab" is a·b) except a few plain-text function names such as sin and sqrt.</summary>
internal static class Lexer
{
    static readonly HashSet<string> PlainWords = ["sin", "cos", "tan", "sec", "csc", "cot", "ln", "log", "exp", "sqrt", "pi", "infty", "inf", "oo", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh"];
    static readonly HashSet<string> TextCommands = ["text", "mbox", "textbf", "textnormal", "textit", "textrm", "texttt", "textsf", "hbox"];
    static readonly HashSet<string> FontCommands = ["mathrm", "mathbf", "mathit", "operatorname", "mathsf", "boldsymbol", "bm", "mathbb", "mathcal", "rm"];

    public static List<Token> Lex(string s, Budget budget)
    {
        var tokens = new List<Token>(s.Length / 2 + 4);
        int i = 0;
        while (i < s.Length)
        {
            budget.Tick();
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
            {
                int start = i;
                while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
                {
                    i++;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                tokens.Add(new Token(Tok.Num, s[start..i]));
                continue;
            }
            if (char.IsAsciiLetter(c))
            {
                int start = i;
                while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
                var word = s[start..i];
                if (PlainWords.Contains(word)) tokens.Add(new Token(Tok.Cmd, word));
                else foreach (var ch in word) tokens.Add(new Token(Tok.Letter, ch.ToString()));
                continue;
            }
            if (c == '\\')
            {
                i++;
                if (i >= s.Length) break;
                if (!char.IsAsciiLetter(s[i]))
                {
                    char n = s[i++];
                    switch (n)
                    {
                        case '{': tokens.Add(new Token(Tok.Op, "{{")); break;
                        case '}': tokens.Add(new Token(Tok.Op, "}}")); break;
                        case '\\': tokens.Add(new Token(Tok.Op, "\\\\")); break;
                        case '|': tokens.Add(new Token(Tok.Op, "|")); break;
                        default: break; // \, \! \; \: \  \% \$ are spacing or already-handled symbols
                    }
                    continue;
                }
                int start = i;
                while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
                var name = s[start..i];
                if (TextCommands.Contains(name) || FontCommands.Contains(name))
                {
                    int save = i;
                    while (i < s.Length && s[i] == ' ') i++;
                    if (i < s.Length && s[i] == '{')
                    {
                        var content = ReadGroup(s, ref i);
                        if (TextCommands.Contains(name) || !IsMathish(content)) tokens.Add(new Token(Tok.Text, content));
                        else { var inner = Lex(content, budget); tokens.AddRange(inner.Take(inner.Count - 1)); }
                        continue;
                    }
                    i = save;
                    continue;
                }
                tokens.Add(new Token(Tok.Cmd, name));
                continue;
            }
            // Multi-character operators written in plain text.
            if (i + 1 < s.Length)
            {
                var two = s.Substring(i, 2);
                if (two is "<=" or ">=" or "!=" or "=<" or "=>" or "**")
                {
                    tokens.Add(new Token(Tok.Op, two switch { "=<" => "<=", "=>" => ">=", "**" => "^", _ => two }));
                    i += 2; continue;
                }
            }
            i++;
            string op = c switch
            {
                '≤' => "<=", '≥' => ">=", '≠' => "!=", '−' or '–' => "-", '·' or '×' or '⋅' => "*", '÷' => "/",
                '∞' => "infty", 'π' => "pi", '±' => "pm", '∪' => "cup", '≈' => "approx", '√' => "sqrt", '∈' => "in",
                _ => c.ToString()
            };
            if (op.Length > 1 && char.IsAsciiLetter(op[0])) tokens.Add(new Token(Tok.Cmd, op));
            else if (c == '²' || c == '³') { tokens.Add(new Token(Tok.Op, "^")); tokens.Add(new Token(Tok.Num, c == '²' ? "2" : "3")); }
            else if (c < 128 || op != c.ToString()) tokens.Add(new Token(Tok.Op, op));
            // Other non-ASCII characters (currency signs, stray bytes) carry no mathematical meaning here.
        }
        tokens.Add(new Token(Tok.End, ""));
        return tokens;
    }

    /// <summary>Reads a brace group starting at s[i]=='{' and returns its content; i ends after the '}'.</summary>
    public static string ReadGroup(string s, ref int i)
    {
        int depth = 0, start = i + 1;
        for (; i < s.Length; i++)
        {
            if (s[i] == '\\') { i++; continue; }
            if (s[i] == '{') depth++;
            else if (s[i] == '}' && --depth == 0) { i++; return s[start..(i - 1)]; }
        }
        return s[start..];
    }

    /// <summary>\mathrm{e}, \mathbf{v} and \operatorname{sin} hold mathematics; \mathrm{cm} holds a word.</summary>
    static bool IsMathish(string content)
    {
        var t = content.Trim();
        if (t.Length <= 1 || PlainWords.Contains(t)) return true;
        foreach (var ch in t) if (!char.IsAsciiLetter(ch) && ch != ' ') return true;
        return false;
    }
}
