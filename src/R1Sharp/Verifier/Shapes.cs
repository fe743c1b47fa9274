namespace R1Sharp.Verifier;

/// <summary>Tree rewrites the comparer needs: ± expansion, the "label = value" reading of equations,
/// inequalities as intervals, and variable renaming for non-strict comparison.</summary>
internal static class Shapes
{
    /// <summary>True for names of a quantity rather than a value: x, x_1, f(x), (p,q), |AB|, A:B, NO/BO.
    /// "k = 5" then answers 5, while "2x + z = 1" stays an equation.</summary>
    public static bool IsLabel(Node n) => n switch
    {
        Sym or Text => true,
        Const { Name: "e" or "i" } => true,
        Mul m => m.Factors.All(IsLabel),
        Div d => IsLabel(d.Top) && IsLabel(d.Bottom),
        Ratio r => IsLabel(r.Left) && IsLabel(r.Right),
        Func { Name: "abs" } f => IsLabel(f.Args[0]),
        Seq s => s.Items.Length > 0 && s.Items.All(IsLabel),
        Pow { Exp: Num } p => IsLabel(p.Base),
        _ => false,
    };

    public static bool HasFloat(Node n) => n switch
    {
        Num x => x.IsFloat,
        Neg x => HasFloat(x.Arg),
        Add x => x.Terms.Any(HasFloat),
        Mul x => x.Factors.Any(HasFloat),
        Div x => HasFloat(x.Top) || HasFloat(x.Bottom),
        Pow x => HasFloat(x.Base) || HasFloat(x.Exp),
        Func x => x.Args.Any(HasFloat),
        PlusMinus x => (x.Left is not null && HasFloat(x.Left)) || HasFloat(x.Right),
        Ratio x => HasFloat(x.Left) || HasFloat(x.Right),
        _ => false,
    };

    /// <summary>Simplifies a relation chain to what it answers: "x = 5+5+1 = 11" answers 11;
    /// "x = 1/3 ≈ 0.33" answers 1/3; "x ≈ 11" answers 11. Returns the relation itself otherwise.</summary>
    public static Node Settle(Relation r)
    {
        int approx = Array.IndexOf(r.Ops, "~");
        if (approx >= 0)
        {
            if (approx >= 1) return Settle(new Relation(r.Parts[..(approx + 1)], r.Ops[..approx]));
            return r.Parts[^1];
        }
        if (r.Ops.Length >= 2 && r.Ops.All(o => o == "=")) return r.Parts[^1];
        if (r.Ops.Length == 1 && r.Ops[0] == "in" && IsLabel(r.Parts[0])) return r.Parts[1];
        return r;
    }

    /// <summary>Expands every ± into its two values, giving a set (at most 32 values, to keep work bounded).</summary>
    public static IEnumerable<Node> ExpandPm(Node n) => ExpandPm(n, 0).Take(32);

    static IEnumerable<Node> ExpandPm(Node n, int depth)
    {
        Budget.CheckDepth(depth);
        switch (n)
        {
            case PlusMinus pm:
                foreach (var r in ExpandPm(pm.Right, depth + 1).Take(32))
                {
                    if (pm.Left is null) { yield return r; yield return new Neg(r); continue; }
                    foreach (var l in ExpandPm(pm.Left, depth + 1).Take(32)) { yield return new Add([l, r]); yield return new Add([l, new Neg(r)]); }
                }
                yield break;
            case Add a when ContainsPm(a):
                foreach (var v in Combine(a.Terms, depth)) yield return new Add(v);
                yield break;
            case Mul m when ContainsPm(m):
                foreach (var v in Combine(m.Factors, depth)) yield return new Mul(v);
                yield break;
            case Div d when ContainsPm(d):
                foreach (var t in ExpandPm(d.Top, depth + 1)) foreach (var b in ExpandPm(d.Bottom, depth + 1)) yield return new Div(t, b);
                yield break;
            case Neg g when ContainsPm(g):
                foreach (var t in ExpandPm(g.Arg, depth + 1)) yield return new Neg(t);
                yield break;
            case Pow p when ContainsPm(p):
                foreach (var t in ExpandPm(p.Base, depth + 1)) foreach (var e in ExpandPm(p.Exp, depth + 1)) yield return new Pow(t, e);
                yield break;
            default: yield return n; yield break;
        }
    }

    static IEnumerable<Node[]> Combine(Node[] parts, int depth)
    {
        IEnumerable<Node[]> acc = [[]];
        foreach (var p in parts)
        {
            var options = ExpandPm(p, depth + 1).Take(8).ToArray();
            acc = acc.SelectMany(prefix => options.Select(o => (Node[])[.. prefix, o])).Take(16).ToArray();
        }
        return acc;
    }

    public static bool ContainsPm(Node n) => n switch
    {
        PlusMinus => true,
        Add a => a.Terms.Any(ContainsPm),
        Mul m => m.Factors.Any(ContainsPm),
        Div d => ContainsPm(d.Top) || ContainsPm(d.Bottom),
        Neg g => ContainsPm(g.Arg),
        Pow p => ContainsPm(p.Base) || ContainsPm(p.Exp),
        _ => false,
    };

    /// <summary>An inequality as a set of reals: an interval, or for "a ≤ |x| ≤ b" (a ≥ 0 assumed, as
    /// written in answers) the union [-b, -a] ∪ [a, b].</summary>
    public static Node? AsSet(Relation r)
    {
        if (r.Ops.Length == 2 && r.Ops.All(o => o is "<" or "<=") && r.Parts[1] is Func { Name: "abs" } abs && IsLabel(abs.Args[0]))
        {
            var (a, b) = (r.Parts[0], r.Parts[2]);
            char lo = r.Ops[0] == "<" ? '(' : '[', hi = r.Ops[1] == "<" ? ')' : ']';
            char loFlip = hi == ')' ? '(' : '[', hiFlip = lo == '(' ? ')' : ']';
            return new Union([new Seq([new Neg(b), new Neg(a)], loFlip, hiFlip), new Seq([a, b], lo, hi)]);
        }
        return AsInterval(r);
    }

    /// <summary>An inequality in one quantity as an interval: "a &lt; x ≤ b" is (a, b]; "x ≥ 5" is [5, ∞).
    /// Null when the relation is not of that shape.</summary>
    public static Seq? AsInterval(Relation r)
    {
        static bool Lt(string o) => o is "<" or "<=";
        static bool Gt(string o) => o is ">" or ">=";
        var inf = new Const("inf"); var ninf = new Const("inf", -1);
        if (r.Ops.Length == 2 && IsLabel(r.Parts[1]) && !IsLabel(r.Parts[0]) && !IsLabel(r.Parts[2]))
        {
            if (Lt(r.Ops[0]) && Lt(r.Ops[1])) return new Seq([r.Parts[0], r.Parts[2]], r.Ops[0] == "<" ? '(' : '[', r.Ops[1] == "<" ? ')' : ']');
            if (Gt(r.Ops[0]) && Gt(r.Ops[1])) return new Seq([r.Parts[2], r.Parts[0]], r.Ops[1] == ">" ? '(' : '[', r.Ops[0] == ">" ? ')' : ']');
            return null;
        }
        if (r.Ops.Length != 1) return null;
        var (l, op, rt) = (r.Parts[0], r.Ops[0], r.Parts[1]);
        if (IsLabel(rt) && !IsLabel(l)) { (l, rt) = (rt, l); op = op switch { "<" => ">", ">" => "<", "<=" => ">=", ">=" => "<=", _ => op }; }
        if (!IsLabel(l) || IsLabel(rt)) return null;
        return op switch
        {
            "<" => new Seq([ninf, rt], '(', ')'),
            "<=" => new Seq([ninf, rt], '(', ']'),
            ">" => new Seq([rt, inf], '(', ')'),
            ">=" => new Seq([rt, inf], '[', ')'),
            _ => null,
        };
    }

    /// <summary>Renames free variables to v0, v1, … in order of appearance (used when not strict,
    /// so that f(x) and f(y) compare equal).</summary>
    public static Node Rename(Node n, Dictionary<string, string> map)
    {
        Node R(Node c) => Rename(c, map);
        Node[] RA(Node[] a) => [.. a.Select(R)];
        return n switch
        {
            Sym s => new Sym(map.TryGetValue(s.Name, out var v) ? v : map[s.Name] = "v" + map.Count),
            Neg x => new Neg(R(x.Arg)),
            Add x => new Add(RA(x.Terms)),
            Mul x => new Mul(RA(x.Factors)),
            Div x => new Div(R(x.Top), R(x.Bottom)),
            Pow x => new Pow(R(x.Base), R(x.Exp)),
            Func x => new Func(x.Name, RA(x.Args)),
            PlusMinus x => new PlusMinus(x.Left is null ? null : R(x.Left), R(x.Right)),
            Seq x => new Seq(RA(x.Items), x.Open, x.Close),
            SetOf x => new SetOf(RA(x.Items), x.Bare),
            Union x => new Union(RA(x.Parts)),
            Ratio x => new Ratio(R(x.Left), R(x.Right)),
            Relation x => new Relation(RA(x.Parts), x.Ops),
            Matrix x => new Matrix([.. x.Rows.Select(RA)]),
            _ => n,
        };
    }

    /// <summary>The letters a product of symbols spells ("odd" parsed as o·d·d), for comparing with words.</summary>
    public static string? Spelling(Node n) => n switch
    {
        Text t => t.Value,
        Sym s => s.Name,
        Const { Name: "e" or "i" } c => c.Name,
        Mul m => m.Factors.Select(Spelling).Aggregate((string?)"", (a, b) => a is null || b is null ? null : a + b),
        _ => null,
    };
}
