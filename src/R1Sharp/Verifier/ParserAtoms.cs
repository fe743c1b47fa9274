using System.Numerics;

namespace R1Sharp.Verifier;

/// <summary>Atoms: numbers (with base subscripts), letters, bracketed lists, intervals, sets, |abs|,
/// and LaTeX commands (\frac, \sqrt, functions, environments).</summary>
internal sealed partial class Parser
{
    static readonly HashSet<string> Functions = ["sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", "det", "gcd", "lcm", "max", "min", "arg"];
    static readonly HashSet<string> Transparent = ["boxed", "fbox", "overline", "hat", "vec", "widehat", "bar", "tilde", "underline", "displaystyle", "textstyle", "mathrm", "mathbf", "left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg", "biggl", "biggr", "limits", "nolimits", "angle", "measuredangle", "triangle", "phantom", "mathstrut", "overrightarrow"];

    Node ParseAtom()
    {
        Enter();
        var t = Next();
        Node r = t.Kind switch
        {
            Tok.Num => ParseNumberWithBase(t.Text),
            Tok.Letter => t.Text switch { "e" => new Const("e"), "i" => new Const("i"), _ => new Sym(t.Text) },
            Tok.Text => new Text(t.Text.Trim()),
            Tok.Op => ParseBracketed(t.Text),
            Tok.Cmd => ParseCommand(t.Text),
            _ => throw new GiveUpException("unexpected end of answer"),
        };
        _depth--;
        return r;
    }

    /// <summary>204_5 is 204 written in base 5.</summary>
    Node ParseNumberWithBase(string digits)
    {
        var n = MakeNumber(digits);
        if (!IsOp("_") || n.IsFloat) return n;
        int save = _p;
        _p++;
        var raw = ReadScriptRaw();
        if (int.TryParse(raw, out int b) && b >= 2 && b <= 36)
        {
            BigInteger v = 0;
            foreach (var ch in digits)
            {
                int d = ch - '0';
                if (d >= b) throw new GiveUpException($"digit {ch} invalid in base {b}");
                v = v * b + d;
            }
            return new Num(Rational.FromInt(v));
        }
        _p = save;
        return n;
    }

    Node ParseBracketed(string open)
    {
        switch (open)
        {
            case "(" or "[":
            {
                var items = ParseCommaList();
                while (Accept(";")) items.AddRange(ParseCommaList());
                char o = open[0];
                char c = IsOp(")") ? ')' : IsOp("]") ? ']' : throw new GiveUpException($"unclosed '{open}'");
                _p++;
                if (items.Count == 0) return new Seq([], o, c);
                if (items.Count == 1 && (o == '(' && c == ')' || o == '[' && c == ']')) return items[0];
                return new Seq([.. items], o, c);
            }
            case "{": return ParseGroupBody("}");
            case "{{":
            {
                var items = ParseCommaList();
                while (Accept(";")) items.AddRange(ParseCommaList());
                Expect("}}");
                return new SetOf([.. items]);
            }
            case "|":
            {
                var inner = ParseAdditive();
                Expect("|");
                return new Func("abs", [inner]);
            }
            default: throw new GiveUpException($"unexpected '{open}'");
        }
    }

    /// <summary>An argument of a command: a brace group, one digit of a number, or one atom.</summary>
    Node ParseArg()
    {
        if (Accept("{")) return ParseGroupBody("}");
        if (Peek.Kind == Tok.Num) return SplitDigit();
        return ParseAtom();
    }

    Node ParseCommand(string name)
    {
        switch (name)
        {
            case "frac" or "dfrac" or "tfrac" or "cfrac":
            {
                var a = ParseArg();
                return new Div(a, ParseArg());
            }
            case "binom" or "dbinom" or "tbinom":
            {
                var a = ParseArg();
                return new Func("binom", [a, ParseArg()]);
            }
            case "sqrt":
            {
                Node? index = null;
                if (Accept("[")) { index = ParseAdditive(); Expect("]"); }
                var a = ParseArg();
                return index is null ? new Func("sqrt", [a]) : new Pow(a, new Div(new Num(Rational.One), index));
            }
            case "pi": return new Const("pi");
            case "infty" or "inf" or "oo" or "infin": return new Const("inf");
            case "emptyset" or "varnothing" or "empty": return new SetOf([]);
            case "lfloor": { var a = ParseAdditive(); if (!IsCmd("rfloor")) throw new GiveUpException("unclosed floor"); _p++; return new Func("floor", [a]); }
            case "lceil": { var a = ParseAdditive(); if (!IsCmd("rceil")) throw new GiveUpException("unclosed ceil"); _p++; return new Func("ceil", [a]); }
            case "lvert" or "vert" or "lVert" or "Vert":
            {
                var a = ParseAdditive();
                if (Peek.Kind == Tok.Cmd && Peek.Text is "rvert" or "vert" or "rVert" or "Vert") _p++; else Expect("|");
                return new Func("abs", [a]);
            }
            case "begin": return ParseEnvironment();
        }
        if (Transparent.Contains(name))
        {
            if (IsOp("{")) return ParseArg();
            return ParseAtom();
        }
        if (Functions.Contains(name)) return ParseFunction(name);
        // Greek letters and unknown commands are opaque symbols (\alpha, \theta, \zzz).
        return new Sym("\\" + name);
    }

    /// <summary>\sin^2 x, \log_2 8, \cos(a+b), \ln x: an optional power, an optional base, then a
    /// parenthesised argument or one factor.</summary>
    Node ParseFunction(string name)
    {
        Node? power = null, logBase = null;
        for (int k = 0; k < 2; k++)
        {
            if (Accept("^")) power = ParseScript();
            else if (Accept("_")) logBase = ParseScript();
        }
        Node arg;
        if (IsOp("("))
        {
            _p++;
            var items = ParseCommaList();
            Expect(")");
            arg = items.Count == 1 ? items[0] : new Seq([.. items], '(', ')');
        }
        else arg = ParsePower();
        Node f = name == "log" && logBase is not null ? new Div(new Func("ln", [arg]), new Func("ln", [logBase])) : new Func(name, [arg]);
        if (power is not null) f = power is Neg { Arg: Num { Value.IsInteger: true } one } && one.Value.Equals(Rational.One) && name is "sin" or "cos" or "tan"
            ? new Func("arc" + name, [arg]) : new Pow(f, power);
        return f;
    }

    /// <summary>pmatrix, bmatrix, array …: rows split by \\ and cells by &amp;.</summary>
    Node ParseEnvironment()
    {
        Expect("{");
        var env = ReadRawUntilBrace();
        if (env == "array") { Expect("{"); ReadRawUntilBrace(); }
        var rows = new List<Node[]>();
        var row = new List<Node>();
        while (true)
        {
            _budget.Tick();
            if (Peek.Kind == Tok.End) throw new GiveUpException($"unclosed environment {env}");
            if (IsCmd("end")) { _p++; Expect("{"); ReadRawUntilBrace(); break; }
            if (Accept("&")) continue;
            if (Accept("\\\\")) { if (row.Count > 0) rows.Add([.. row]); row = []; continue; }
            row.Add(ParseRelation());
            if (!IsOp("&") && !IsOp("\\\\") && !IsCmd("end")) throw new GiveUpException($"unexpected '{Peek.Text}' in {env}");
        }
        if (row.Count > 0) rows.Add([.. row]);
        if (rows.Count == 0) throw new GiveUpException("empty matrix");
        if (env is "align" or "align*" or "aligned" or "gather" or "cases" or "split")
            return rows.Count == 1 && rows[0].Length == 1 ? rows[0][0] : throw new GiveUpException($"{env} is not an answer");
        int w = rows[0].Length;
        if (rows.Any(r => r.Length != w)) throw new GiveUpException("ragged matrix");
        return new Matrix([.. rows]);
    }

    string ReadRawUntilBrace()
    {
        var sb = new System.Text.StringBuilder();
        while (Peek.Kind != Tok.End && !IsOp("}")) sb.Append(Next().Text);
        Expect("}");
        return sb.ToString();
    }
}
