namespace R1Sharp.Verifier;

/// <summary>Folds sums and products of written matrices into one matrix of scalar expressions, so that
/// "A + B" or "I·I" can be compared with the matrix it equals. Cells stay symbolic trees; the
/// comparer evaluates them.</summary>
internal static class MatrixAlgebra
{
    public static Node Fold(Node n) => n switch
    {
        Add a when a.Terms.Length > 1 && a.Terms.Select(Fold).ToArray() is var t && t.All(x => x is Matrix) => Sum(t.Cast<Matrix>().ToArray()) ?? n,
        Mul m when m.Factors.Length > 1 && m.Factors.Select(Fold).ToArray() is var f && f.Any(x => x is Matrix) => Product(f) ?? n,
        Neg g when Fold(g.Arg) is Matrix x => Map(x, c => new Neg(c)),
        _ => n,
    };

    static Matrix Map(Matrix m, Func<Node, Node> f) => new([.. m.Rows.Select(r => r.Select(f).ToArray())]);

    static Matrix? Sum(Matrix[] ms)
    {
        int h = ms[0].Rows.Length, w = ms[0].Rows[0].Length;
        if (ms.Any(m => m.Rows.Length != h || m.Rows[0].Length != w)) return null;
        return new([.. Enumerable.Range(0, h).Select(i => Enumerable.Range(0, w).Select(j => (Node)new Add([.. ms.Select(m => m.Rows[i][j])])).ToArray())]);
    }

    static Matrix? Product(Node[] factors)
    {
        Node scalar = new Num(Rational.One);
        Matrix? acc = null;
        foreach (var f in factors)
        {
            if (f is not Matrix m) { scalar = new Mul([scalar, f]); continue; }
            if (acc is null) { acc = m; continue; }
            int h = acc.Rows.Length, inner = acc.Rows[0].Length, w = m.Rows[0].Length;
            if (m.Rows.Length != inner || (long)h * w * inner > 10_000) return null;
            var a = acc;
            acc = new([.. Enumerable.Range(0, h).Select(i => Enumerable.Range(0, w).Select(j =>
                (Node)new Add([.. Enumerable.Range(0, inner).Select(k => (Node)new Mul([a.Rows[i][k], m.Rows[k][j]]))])).ToArray())]);
        }
        return acc is null ? null : Map(acc, c => new Mul([scalar, c]));
    }
}
