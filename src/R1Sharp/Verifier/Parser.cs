using System.Numerics;

namespace R1Sharp.Verifier;

/// <summary>Recursive-descent parser from tokens to a <see cref="Node"/> tree. Precedence, loosest first:
/// ';' lists, ',' lists, relation chains (= &lt; ≤ ∈ ≈ …), ∪, ratio ':', + − ±, × ÷ and implicit
/// multiplication, unary sign, powers/subscripts/factorials, atoms. Throws <see cref="GiveUpException"/>
/// on input it cannot read; the verifier turns that into a verdict.</summary>
internal sealed partial class Parser
{
    readonly List<Token> _t;
    readonly Budget _budget;
    int _p, _depth;

    Parser(List<Token> tokens, Budget budget) { _t = tokens; _budget = budget; }

    public static Node Parse(string normalised, Budget budget)
    {
        var p = new Parser(Lexer.Lex(normalised, budget), budget);
        var node = p.ParseTop();
        if (p.Peek.Kind != Tok.End) throw new GiveUpException($"unexpected '{p.Peek.Text}'");
        return node;
    }

    Token Peek => _t[_p];
    Token Next() { var t = _t[_p]; if (t.Kind != Tok.End) _p++; return t; }
    bool IsOp(string s) => Peek.Kind == Tok.Op && Peek.Text == s;
    bool IsCmd(string s) => Peek.Kind == Tok.Cmd && Peek.Text == s;
    bool Accept(string op) { if (IsOp(op)) { _p++; return true; } return false; }
    void Expect(string op) { if (!Accept(op)) throw new GiveUpException($"expected '{op}' but found '{Peek.Text}'"); }

    void Enter() { _budget.Tick(); Budget.CheckDepth(++_depth); }

    Node ParseTop()
    {
        var groups = new List<List<Node>>();
        do groups.Add(ParseCommaList()); while (Accept(";"));
        groups.RemoveAll(g => g.Count == 0);
        if (groups.Count == 0) throw new GiveUpException("empty answer");
        // A top-level comma list "1, 2" is an unordered collection of answers; with ';' between
        // groups ("p=5,q=2; p=7,q=2") each group is one ordered answer.
        if (groups.Count == 1) return groups[0].Count == 1 ? groups[0][0] : new SetOf([.. groups[0]], Bare: true);
        return new SetOf([.. groups.Select(g => g.Count == 1 ? g[0] : new Seq([.. g], '(', ')'))]);
    }

    List<Node> ParseCommaList()
    {
        var items = new List<Node>();
        while (true)
        {
            if (IsOp(",")) { _p++; continue; } // tolerate empty items ("19, 46, and 82")
            if (AtListEnd()) break;
            items.Add(ParseRelation());
            if (!Accept(",")) break;
        }
        return items;
    }

    bool AtListEnd() => Peek.Kind == Tok.End || (Peek.Kind == Tok.Op && Peek.Text is ")" or "]" or "}" or "}}" or ";" or "&" or "\\\\")
        || IsCmd("end");

    static string? RelOp(Token t) => t.Kind switch
    {
        Tok.Op => t.Text switch { "=" => "=", "<" => "<", ">" => ">", "<=" => "<=", ">=" => ">=", "!=" => "!=", _ => null },
        Tok.Cmd => t.Text switch
        {
            "le" or "leq" or "leqslant" or "leqq" => "<=", "ge" or "geq" or "geqslant" or "geqq" => ">=",
            "lt" => "<", "gt" => ">", "ne" or "neq" => "!=", "approx" or "simeq" or "thickapprox" => "~",
            "in" => "in", "equiv" => "=", _ => null
        },
        _ => null
    };

    Node ParseRelation()
    {
        Enter();
        var parts = new List<Node> { ParseUnion() };
        var ops = new List<string>();
        while (RelOp(Peek) is { } op)
        {
            _p++;
            ops.Add(op);
            parts.Add(ParseUnion());
        }
        _depth--;
        return ops.Count == 0 ? parts[0] : new Relation([.. parts], [.. ops]);
    }

    Node ParseUnion()
    {
        var first = ParseRatio();
        if (!IsCmd("cup") && !IsOp("U")) return first;
        var parts = new List<Node> { first };
        while (IsCmd("cup")) { _p++; parts.Add(ParseRatio()); }
        return new Union([.. parts]);
    }

    Node ParseRatio()
    {
        var left = ParseAdditive();
        if (!IsOp(":")) return left;
        _p++;
        return new Ratio(left, ParseAdditive());
    }

    Node ParseAdditive()
    {
        Enter();
        var terms = new List<Node>();
        Node? pm = null;
        if (IsCmd("pm") || IsCmd("mp")) { _p++; pm = new PlusMinus(null, ParseTerm()); terms.Add(pm); }
        else terms.Add(ParseTerm());
        while (true)
        {
            if (Accept("+")) terms.Add(ParseTerm());
            else if (Accept("-")) terms.Add(new Neg(ParseTerm()));
            else if (IsCmd("pm") || IsCmd("mp"))
            {
                _p++;
                var left = terms.Count == 1 ? terms[0] : new Add([.. terms]);
                terms.Clear();
                terms.Add(new PlusMinus(left, ParseTerm()));
            }
            else break;
        }
        _depth--;
        return terms.Count == 1 ? terms[0] : new Add([.. terms]);
    }

    Node ParseTerm()
    {
        Enter();
        var factors = new List<Node> { ParseUnary() };
        while (true)
        {
            if (Accept("*") || IsCmd("cdot") || IsCmd("times") || IsCmd("ast"))
            {
                if (Peek.Kind == Tok.Cmd && Peek.Text is "cdot" or "times" or "ast") _p++;
                factors.Add(ParseUnary());
            }
            else if (Accept("/") || IsCmd("div") || IsCmd("over"))
            {
                if (IsCmd("div") || IsCmd("over")) _p++;
                var d = ParseUnary();
                var top = factors.Count == 1 ? factors[0] : new Mul([.. factors]);
                factors.Clear();
                factors.Add(new Div(top, d));
            }
            else if (StartsAtom(Peek))
            {
                var next = ParsePower();
                // Mixed number: 15\frac{39}{40} is 15 + 39/40, not 15·39/40.
                if (factors.Count == 1 && factors[0] is Num { IsFloat: false } whole && next is Div { Top: Num { IsFloat: false } top, Bottom: Num { IsFloat: false } bottom }
                    && _t[_p - 1].Kind == Tok.Op && !bottom.Value.IsZero)
                    factors[0] = new Num(whole.Value + top.Value / bottom.Value);
                else factors.Add(next);
            }
            else break;
        }
        _depth--;
        // Words beside a value are units ("5.4 \text{ cents}", "15\mbox{ cm}^2"): they carry no value.
        if (factors.Count > 1 && factors.Any(f => !IsWord(f))) factors.RemoveAll(IsWord);
        return factors.Count == 1 ? factors[0] : new Mul([.. factors]);
    }

    static bool IsWord(Node n) => n is Text || n is Pow { Base: Text };

    Node ParseUnary()
    {
        Enter();
        Node r;
        if (Accept("-")) r = new Neg(ParseUnary());
        else if (Accept("+")) r = ParseUnary();
        else r = ParsePower();
        _depth--;
        return r;
    }

    /// <summary>Tokens that may begin a factor of an implicit product ("2x", "3\sqrt2", "(a+5)(b+2)").
    /// '[' and '|' are left out: after a value they more likely close something.</summary>
    static bool StartsAtom(Token t) => t.Kind switch
    {
        Tok.Num or Tok.Letter or Tok.Text => true,
        Tok.Op => t.Text is "(" or "{" or "{{",
        Tok.Cmd => !NotAtoms.Contains(t.Text) && RelOp(t) is null,
        _ => false,
    };

    static readonly HashSet<string> NotAtoms = ["cdot", "times", "div", "pm", "mp", "cup", "cap", "end", "right", "to", "rightarrow", "Rightarrow", "implies", "ast", "over",
        "rfloor", "rceil", "rvert", "rVert", "rangle", "and", "quad", "qquad", "colon", "mid", "setminus"];

    Node ParsePower()
    {
        Enter();
        var b = ParseAtom();
        while (true)
        {
            if (Accept("^"))
            {
                var e = ParseScript();
                b = new Pow(b, e);
            }
            else if (Accept("!")) b = new Func("factorial", [b]);
            else if (IsOp("_") && b is Sym s0) { _p++; b = new Sym(s0.Name + "_" + ReadScriptRaw()); }
            else if (Accept("'")) b = b is Sym s1 ? new Sym(s1.Name + "'") : b;
            else break;
        }
        _depth--;
        return b;
    }

    /// <summary>A superscript: a braced group or a single signed atom (x^-1, 2^{10}, x^2).</summary>
    Node ParseScript()
    {
        if (IsOp("{")) { _p++; var g = ParseGroupBody("}"); return g; }
        if (Accept("-")) return new Neg(ParseScriptAtom());
        if (Accept("+")) return ParseScriptAtom();
        return ParseScriptAtom();
    }

    Node ParseScriptAtom()
    {
        if (Peek.Kind == Tok.Num) return SplitDigit();
        return ParseAtom();
    }

    /// <summary>TeX takes one digit as an unbraced argument: \frac12 is 1/2 and x^23 is x²·3.</summary>
    Node SplitDigit()
    {
        var t = Next();
        if (t.Text.Length > 1)
        {
            _p--;
            _t[_p] = new Token(Tok.Num, t.Text[1..]);
            return new Num(Rational.FromInt(t.Text[0] - '0'));
        }
        return MakeNumber(t.Text);
    }

    string ReadScriptRaw()
    {
        if (IsOp("{"))
        {
            _p++;
            var sb = new System.Text.StringBuilder();
            int depth = 1;
            while (Peek.Kind != Tok.End)
            {
                var t = Next();
                if (t.Kind == Tok.Op && t.Text == "{") depth++;
                if (t.Kind == Tok.Op && t.Text == "}" && --depth == 0) break;
                sb.Append(t.Text);
            }
            return sb.ToString();
        }
        return Next().Text;
    }

    internal static Num MakeNumber(string text)
    {
        int dot = text.IndexOf('.');
        if (dot < 0) return new Num(Rational.FromInt(BigInteger.Parse(text)));
        if (text.Length > 2000) throw new GiveUpException("number too long");
        var digits = text.Remove(dot, 1);
        return new Num(new Rational(BigInteger.Parse(digits), BigInteger.Pow(10, text.Length - dot - 1)), IsFloat: true);
    }

    /// <summary>Parses up to <paramref name="close"/>; a comma inside braces makes a set ("{1,2,3}").</summary>
    Node ParseGroupBody(string close)
    {
        Enter();
        var items = ParseCommaList();
        while (Accept(";")) items.AddRange(ParseCommaList());
        Expect(close);
        _depth--;
        if (items.Count == 0) return close == "}" ? new Text("") : new SetOf([]);
        return items.Count == 1 && close == "}" ? items[0] : new SetOf([.. items]);
    }
}
