namespace R1Sharp.Verifier;

/// <summary>The expression tree the parser produces. Records give structural equality for free,
/// which the comparer uses as a cheap first test before evaluating anything.</summary>
internal abstract record Node;

/// <summary>An exact number. <see cref="IsFloat"/> marks a written decimal (0.33), which makes
/// comparisons round to <see cref="VerifyOptions.FloatRounding"/> places, as Math-Verify does.</summary>
internal sealed record Num(Rational Value, bool IsFloat = false) : Node;

/// <summary>A free variable (x, x_1, S_{ABC}).</summary>
internal sealed record Sym(string Name) : Node;

/// <summary>π, e, i, ∞ (Sign ±1 for ∞).</summary>
internal sealed record Const(string Name, int Sign = 1) : Node;

internal sealed record Add(Node[] Terms) : Node
{
    public bool Equals(Add? o) => o is not null && Terms.AsSpan().SequenceEqual(o.Terms);
    public override int GetHashCode() => Terms.Length;
}

internal sealed record Mul(Node[] Factors) : Node
{
    public bool Equals(Mul? o) => o is not null && Factors.AsSpan().SequenceEqual(o.Factors);
    public override int GetHashCode() => Factors.Length;
}

internal sealed record Neg(Node Arg) : Node;
internal sealed record Div(Node Top, Node Bottom) : Node;
internal sealed record Pow(Node Base, Node Exp) : Node;

/// <summary>a ± b: stands for the two values a+b and a−b (expanded into a set before comparing).</summary>
internal sealed record PlusMinus(Node? Left, Node Right) : Node;

/// <summary>A known function: sin, cos, sqrt, ln, log, abs, floor, factorial, root (arg 2 = index), …</summary>
internal sealed record Func(string Name, Node[] Args) : Node
{
    public bool Equals(Func? o) => o is not null && Name == o.Name && Args.AsSpan().SequenceEqual(o.Args);
    public override int GetHashCode() => Name.GetHashCode();
}

/// <summary>Words: \text{Evelyn}, multiple-choice letters.</summary>
internal sealed record Text(string Value) : Node;

/// <summary>Brackets around a comma list. Two elements in matching round brackets are ambiguous
/// (point or open interval); the comparer decides from what they are compared with.</summary>
internal sealed record Seq(Node[] Items, char Open, char Close) : Node
{
    public bool Equals(Seq? o) => o is not null && Open == o.Open && Close == o.Close && Items.AsSpan().SequenceEqual(o.Items);
    public override int GetHashCode() => Items.Length;
}

/// <summary>\{a, b\} or a bare list "1, 2" (<see cref="Bare"/>): unordered, duplicates ignored.</summary>
internal sealed record SetOf(Node[] Items, bool Bare = false) : Node
{
    public bool Equals(SetOf? o) => o is not null && Items.AsSpan().SequenceEqual(o.Items);
    public override int GetHashCode() => Items.Length;
}

internal sealed record Union(Node[] Parts) : Node
{
    public bool Equals(Union? o) => o is not null && Parts.AsSpan().SequenceEqual(o.Parts);
    public override int GetHashCode() => Parts.Length;
}

internal sealed record Matrix(Node[][] Rows) : Node
{
    public bool Equals(Matrix? o) => o is not null && Rows.Length == o.Rows.Length &&
        Rows.Zip(o.Rows).All(p => p.First.AsSpan().SequenceEqual(p.Second));
    public override int GetHashCode() => Rows.Length;
}

/// <summary>a : b as a ratio.</summary>
internal sealed record Ratio(Node Left, Node Right) : Node;

/// <summary>A chain a op b op c … with ops among = &lt; &gt; ≤ ≥ ≠ ≈ ∈.</summary>
internal sealed record Relation(Node[] Parts, string[] Ops) : Node
{
    public bool Equals(Relation? o) => o is not null && Parts.AsSpan().SequenceEqual(o.Parts) && Ops.AsSpan().SequenceEqual(o.Ops);
    public override int GetHashCode() => Parts.Length;
}
