using System.Numerics;

namespace R1Sharp.Verifier;

/// <summary>Decides whether a predicted answer tree equals the gold one. Structures (sets, tuples,
/// intervals, matrices, relations) are compared part by part; scalars exactly when both are rational,
/// otherwise numerically at several points (see <see cref="ScalarEqual"/>). Gold and prediction are
/// not symmetric: a gold "k = 5" accepts 5, but a gold "5" also accepts "k = 5", and a gold interval
/// accepts an inequality only with <see cref="VerifyOptions.AllowSetRelationComparison"/>.</summary>
internal sealed class Comparer(VerifyOptions options, Budget budget)
{
    /// <summary>Relative tolerance of numeric comparison in double precision (values are ~1e-16 exact;
    /// 1e-9 absorbs rounding through sqrt/trig while keeping distinct MATH answers apart).</summary>
    public const double Tolerance = 1e-9;
    const int Points = 4;

    public bool Equal(Node gold, Node pred, int depth = 0)
    {
        budget.Tick();
        Budget.CheckDepth(depth);
        int d = depth + 1;
        if (gold.Equals(pred)) return true;

        if (gold is Relation gr0 && Shapes.Settle(gr0) is var gs && !ReferenceEquals(gs, gr0)) return Equal(gs, pred, d);
        if (pred is Relation pr0 && Shapes.Settle(pr0) is var ps && !ReferenceEquals(ps, pr0)) return Equal(gold, ps, d);

        // ± stands for a set of values.
        if (Shapes.ContainsPm(gold)) return Equal(new SetOf([.. Shapes.ExpandPm(gold)]), pred, d);
        if (Shapes.ContainsPm(pred)) return Equal(gold, new SetOf([.. Shapes.ExpandPm(pred)]), d);

        switch (gold, pred)
        {
            case (Relation g, Relation p): return Relations(g, p, d);
            case (Relation g, _):
                if (g.Ops is ["="]) return Shapes.IsLabel(g.Parts[0]) && Equal(g.Parts[1], pred, d);
                if (Shapes.AsSet(g) is { } gi && pred is Seq or Union) return Equal(gi, pred, d);
                return false;
            case (_, Relation p):
                // "k = 5" and "1/2 $ = 10/9" answer their right side; "5x - 7y + 4 = 0" stays an equation.
                if (p.Ops is ["="]) return (Shapes.IsLabel(p.Parts[0]) || !HasSymbols(p.Parts[0])) && Equal(gold, p.Parts[1], d);
                if (p.Ops is ["in"] && gold is not Relation) return Equal(gold, p.Parts[1], d);
                if (options.AllowSetRelationComparison && Shapes.AsSet(p) is { } pi && gold is Seq or Union) return Equal(gold, pi, d);
                return false;
        }

        if (gold is Add or Mul or Neg) gold = MatrixAlgebra.Fold(gold);
        if (pred is Add or Mul or Neg) pred = MatrixAlgebra.Fold(pred);

        // Lists whose items are "label = value" answer with the values.
        if (gold is SetOf or Seq) gold = SettleItems(gold);
        if (pred is SetOf or Seq) pred = SettleItems(pred);

        switch (gold, pred)
        {
            case (SetOf g, SetOf p): return SameSet(g.Items, p.Items, d);
            // A braced set against a tuple is read in increasing order, as Math-Verify does ({1,3} = (1,3));
            // a bare list "-2, 1" (roots) is never a point or an interval.
            case (SetOf { Bare: false } g, Seq p) when g.Items.Length == p.Items.Length: return Ordered(Sorted(g.Items), p.Items, d);
            case (Seq g, SetOf { Bare: false } p) when g.Items.Length == p.Items.Length: return Ordered(g.Items, Sorted(p.Items), d);
            case (SetOf { Bare: true }, Seq) or (Seq, SetOf { Bare: true }): return false;
            case (SetOf g, _): return g.Items.Length > 0 && g.Items.All(x => Equal(x, pred, d));
            case (_, SetOf p): return p.Items.Length > 0 && p.Items.All(x => Equal(gold, x, d));
            case (Seq g, Seq p): return Sequences(g, p, d);
            case (Union g, Union p): return SameSet(g.Parts, p.Parts, d);
            case (Union g, _): return g.Parts.Length == 1 && Equal(g.Parts[0], pred, d);
            case (_, Union p): return p.Parts.Length == 1 && Equal(gold, p.Parts[0], d);
            case (Matrix g, Matrix p):
                return g.Rows.Length == p.Rows.Length && g.Rows[0].Length == p.Rows[0].Length &&
                       g.Rows.Zip(p.Rows).All(r => Ordered(r.First, r.Second, d));
            case (Matrix g, Seq p): return IsVector(g, out var gv) && Ordered(gv, p.Items, d);
            case (Seq g, Matrix p): return IsVector(p, out var pv) && Ordered(g.Items, pv, d);
            case (Text or Mul or Sym or Const, Text or Mul or Sym or Const) when gold is Text || pred is Text:
                return Words(gold, pred);
            case (Ratio g, Ratio p):
                return ScalarEqual(new Mul([g.Left, p.Right]), new Mul([p.Left, g.Right])) && !ScalarEqual(g.Right, new Num(Rational.Zero)) ||
                       Equal(g.Left, p.Left, d) && Equal(g.Right, p.Right, d);
            case (Seq or Matrix or Text, _) or (_, Seq or Matrix or Text): return false;
        }
        return ScalarEqual(gold, pred);
    }

    Node SettleItems(Node n)
    {
        Node One(Node x) => x is Relation r ? (Shapes.Settle(r) is var s && s is Relation { Ops: ["="] } e && Shapes.IsLabel(e.Parts[0]) ? e.Parts[1] : s) : x;
        return n switch
        {
            SetOf s => new SetOf([.. s.Items.SelectMany(x => Shapes.ContainsPm(x) ? Shapes.ExpandPm(x) : [One(x)])], s.Bare),
            Seq q => new Seq([.. q.Items.Select(One)], q.Open, q.Close),
            _ => n,
        };
    }

    bool Relations(Relation g, Relation p, int d)
    {
        if (g.Ops.Length == 1 && p.Ops.Length == 1)
        {
            string go = g.Ops[0], po = p.Ops[0];
            if (go == "=" && po == "=")
            {
                if (Shapes.IsLabel(g.Parts[0]) && Shapes.IsLabel(p.Parts[0]) && Equal(g.Parts[0], p.Parts[0], d) && Equal(g.Parts[1], p.Parts[1], d)) return true;
                return Proportional(Diff(g), Diff(p), positiveOnly: false);
            }
            if (go == "!=" && po == "!=") return Proportional(Diff(g), Diff(p), positiveOnly: false);
            if (go == "in" && po == "in") return Equal(g.Parts[0], p.Parts[0], d) && Equal(g.Parts[1], p.Parts[1], d);
            // Inequalities: bring both to "f > 0" or "f ≥ 0" and compare f up to a positive factor.
            if (Upward(g, out var gf, out bool gs) && Upward(p, out var pf, out bool ps)) return gs == ps && Proportional(gf, pf, positiveOnly: true);
        }
        if (Shapes.AsInterval(g) is { } gi && Shapes.AsInterval(p) is { } pi) return Equal(gi, pi, d);
        if (g.Ops.Length != p.Ops.Length || !g.Ops.SequenceEqual(p.Ops)) return false;
        for (int i = 0; i < g.Parts.Length; i++) if (!Equal(g.Parts[i], p.Parts[i], d)) return false;
        return true;
    }

    static bool HasInfinity(Node n) => n switch
    {
        Const { Name: "inf" } => true,
        Neg x => HasInfinity(x.Arg),
        Add x => x.Terms.Any(HasInfinity),
        Mul x => x.Factors.Any(HasInfinity),
        _ => false,
    };

    static bool HasSymbols(Node n) => n switch
    {
        Sym => true,
        Num or Const or Text => false,
        Neg x => HasSymbols(x.Arg),
        Add x => x.Terms.Any(HasSymbols),
        Mul x => x.Factors.Any(HasSymbols),
        Div x => HasSymbols(x.Top) || HasSymbols(x.Bottom),
        Pow x => HasSymbols(x.Base) || HasSymbols(x.Exp),
        Func x => x.Args.Any(HasSymbols),
        _ => true,
    };

    static Node Diff(Relation r) => new Add([r.Parts[0], new Neg(r.Parts[1])]);

    static bool Upward(Relation r, out Node f, out bool strict)
    {
        var (a, b) = (r.Parts[0], r.Parts[1]);
        switch (r.Ops[0])
        {
            case ">": f = new Add([a, new Neg(b)]); strict = true; return true;
            case ">=": f = new Add([a, new Neg(b)]); strict = false; return true;
            case "<": f = new Add([b, new Neg(a)]); strict = true; return true;
            case "<=": f = new Add([b, new Neg(a)]); strict = false; return true;
            default: f = a; strict = false; return false;
        }
    }

    /// <summary>Same set, ignoring order and repetition: every item has an equal partner on the other side.</summary>
    bool SameSet(Node[] g, Node[] p, int d)
    {
        foreach (var x in g) if (!p.Any(y => Equal(x, y, d))) return false;
        foreach (var y in p) if (!g.Any(x => Equal(x, y, d))) return false;
        return true;
    }

    bool Ordered(Node[] g, Node[] p, int d)
    {
        if (g.Length != p.Length) return false;
        for (int i = 0; i < g.Length; i++) if (!Equal(g[i], p[i], d)) return false;
        return true;
    }

    /// <summary>A set compared with a tuple is read in increasing order ({1,3} matches (1,3), not (3,1)).</summary>
    Node[] Sorted(Node[] items)
    {
        var keys = items.Select(x => Evaluator.Eval(x, 0, budget)).ToArray();
        if (keys.Any(k => k.Imaginary != 0 || double.IsNaN(k.Real))) return items;
        return [.. items.Zip(keys).OrderBy(z => z.Second.Real).Select(z => z.First)];
    }

    /// <summary>Brackets matter for two-item intervals: (0,1) ≠ [0,1). A plain (a,b) may also be read as a point.</summary>
    bool Sequences(Seq g, Seq p, int d)
    {
        if (g.Items.Length != p.Items.Length) return false;
        bool gInterval = g.Items.Length == 2 && (g.Open != '(' || g.Close != ')');
        bool pInterval = p.Items.Length == 2 && (p.Open != '(' || p.Close != ')');
        if ((gInterval || pInterval) && (g.Open != p.Open || g.Close != p.Close) && g.Items.Length == 2) return false;
        return Ordered(g.Items, p.Items, d);
    }

    static bool IsVector(Matrix m, out Node[] items)
    {
        items = m.Rows.Length == 1 ? m.Rows[0] : m.Rows[0].Length == 1 ? [.. m.Rows.Select(r => r[0])] : [];
        return items.Length > 0;
    }

    static bool Words(Node g, Node p)
    {
        var a = Shapes.Spelling(g); var b = Shapes.Spelling(p);
        if (a is null || b is null) return false;
        // Words ignore case ("East" = "east"); single letters do not (choice "E" is not the constant e written "e").
        var (ca, cb) = (Clean(a), Clean(b));
        return ca.Length > 1 ? string.Equals(ca, cb, StringComparison.OrdinalIgnoreCase) : ca == cb;
        static string Clean(string s) => new string([.. s.Where(c => !char.IsWhiteSpace(c) && c != '(' && c != ')' && c != '.' && c != '{' && c != '}')]);
    }

    /// <summary>f and g equal up to a constant factor c (c &gt; 0 when <paramref name="positiveOnly"/>):
    /// the same equation or inequality written with its sides scaled or swapped.</summary>
    bool Proportional(Node f, Node g, bool positiveOnly)
    {
        Complex? ratio = null;
        for (int k = 0; k < Points; k++)
        {
            var a = Evaluator.Eval(f, k, budget); var b = Evaluator.Eval(g, k, budget);
            if (!IsFinite(a) || !IsFinite(b)) return false;
            if (a.Magnitude < 1e-12 || b.Magnitude < 1e-12) { if (a.Magnitude < 1e-12 && b.Magnitude < 1e-12) continue; return false; }
            var r = a / b;
            if (ratio is null) { if (positiveOnly && (r.Real <= 0 || System.Math.Abs(r.Imaginary) > Tolerance)) return false; ratio = r; }
            else if ((r - ratio.Value).Magnitude > Tolerance * System.Math.Max(1, ratio.Value.Magnitude)) return false;
        }
        return true;
    }

    static bool IsFinite(Complex c) => double.IsFinite(c.Real) && double.IsFinite(c.Imaginary);

    /// <summary>Scalars: exact rational comparison when both sides are rational; with a written decimal
    /// on either side, values are first rounded to FloatRounding places (so 0.33 equals 1/3 at 2 places);
    /// otherwise complex double evaluation at <see cref="Points"/> points with relative tolerance
    /// <see cref="Tolerance"/>.</summary>
    public bool ScalarEqual(Node g, Node p)
    {
        bool rounding = Shapes.HasFloat(g) || Shapes.HasFloat(p);
        if (Evaluator.Exact(g, budget) is { } eg && Evaluator.Exact(p, budget) is { } ep)
            return rounding ? eg.Round(options.FloatRounding).Equals(ep.Round(options.FloatRounding)) || eg.Equals(ep) : eg.Equals(ep);
        int usable = 0;
        for (int k = 0; k < Points; k++)
        {
            var a = Evaluator.Eval(g, k, budget); var b = Evaluator.Eval(p, k, budget);
            if (double.IsNaN(a.Real) || double.IsNaN(b.Real) || double.IsNaN(a.Imaginary) || double.IsNaN(b.Imaginary)) continue;
            if (!IsFinite(a) || !IsFinite(b))
            {
                // ∞ written as ∞ compares; a finite expression that overflows double (10^{10^{10}}) cannot be decided.
                if (a == b && HasInfinity(g) && HasInfinity(p)) { usable++; continue; }
                if (a == b) throw new GiveUpException("value too large to compare");
                return false;
            }
            usable++;
            if (Close(a, b)) continue;
            if (rounding && RoundEq(a.Real, b.Real) && RoundEq(a.Imaginary, b.Imaginary)) continue;
            return false;
        }
        return usable > 0;
    }

    static bool Close(Complex a, Complex b) => (a - b).Magnitude <= Tolerance * System.Math.Max(1, System.Math.Max(a.Magnitude, b.Magnitude));

    bool RoundEq(double a, double b)
    {
        int digits = System.Math.Clamp(options.FloatRounding, 0, 15);
        return System.Math.Abs(a) < 1e15 && System.Math.Round(a, digits, MidpointRounding.AwayFromZero) == System.Math.Round(b, digits, MidpointRounding.AwayFromZero);
    }
}
