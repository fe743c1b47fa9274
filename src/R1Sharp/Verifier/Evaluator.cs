using System.Numerics;

namespace R1Sharp.Verifier;

/// <summary>Evaluates scalar expressions: exactly (as a <see cref="Rational"/>) when only rational
/// arithmetic is involved, otherwise in complex double precision with free variables bound to
/// pseudo-random points. Pure: the same tree and point always give the same value.</summary>
internal static class Evaluator
{
    /// <summary>The exact rational value, or null when the expression is not (provably) rational.</summary>
    public static Rational? Exact(Node n, Budget budget, int depth = 0)
    {
        budget.Tick();
        Budget.CheckDepth(depth);
        switch (n)
        {
            case Num x: return x.Value;
            case Neg x: return Exact(x.Arg, budget, depth + 1) is { } nv ? -nv : null;
            case Add x:
            {
                var acc = Rational.Zero;
                foreach (var t in x.Terms) { if (Exact(t, budget, depth + 1) is not { } v) return null; acc += v; if (acc.TooBig) return null; }
                return acc;
            }
            case Mul x:
            {
                var acc = Rational.One;
                foreach (var t in x.Factors) { if (Exact(t, budget, depth + 1) is not { } v) return null; acc *= v; if (acc.TooBig) return null; }
                return acc;
            }
            case Div x:
            {
                if (Exact(x.Top, budget, depth + 1) is not { } a || Exact(x.Bottom, budget, depth + 1) is not { } b || b.IsZero) return null;
                return a / b;
            }
            case Pow x:
            {
                if (Exact(x.Exp, budget, depth + 1) is not { } e || Exact(x.Base, budget, depth + 1) is not { } b) return null;
                if (e.IsInteger) return BigInteger.Abs(e.Num) > 10_000 ? null : Rational.Pow(b, e.Num);
                if (e.Den == 2 && Rational.Sqrt(b) is { } r && BigInteger.Abs(e.Num) < 1000) return Rational.Pow(r, e.Num);
                return null;
            }
            case Func { Name: "sqrt" } f: return Exact(f.Args[0], budget, depth + 1) is { } s ? Rational.Sqrt(s) : null;
            case Func { Name: "abs" } f: return Exact(f.Args[0], budget, depth + 1) is { } a2 ? (a2.Sign < 0 ? -a2 : a2) : null;
            default: return null;
        }
    }

    /// <summary>Value at evaluation point <paramref name="point"/>; NaN when undefined or not a scalar.</summary>
    public static Complex Eval(Node n, int point, Budget budget, int depth = 0)
    {
        budget.Tick();
        Budget.CheckDepth(depth);
        int d = depth + 1;
        switch (n)
        {
            case Num x: return x.Value.ToDouble();
            case Sym s: return VariableValue(s.Name, point);
            case Const c: return c.Name switch { "pi" => System.Math.PI, "e" => System.Math.E, "i" => Complex.ImaginaryOne, _ => c.Sign * double.PositiveInfinity };
            case Neg x: return -Eval(x.Arg, point, budget, d);
            case Add x: { Complex acc = 0; foreach (var t in x.Terms) acc += Eval(t, point, budget, d); return acc; }
            case Mul x: { Complex acc = 1; foreach (var t in x.Factors) acc *= Eval(t, point, budget, d); return acc; }
            case Div x:
            {
                var b = Eval(x.Bottom, point, budget, d);
                return b == Complex.Zero ? double.NaN : Eval(x.Top, point, budget, d) / b;
            }
            case Ratio x:
            {
                var b = Eval(x.Right, point, budget, d);
                return b == Complex.Zero ? double.NaN : Eval(x.Left, point, budget, d) / b;
            }
            case Pow x: return Power(Eval(x.Base, point, budget, d), Eval(x.Exp, point, budget, d));
            case Func f: return Function(f, point, budget, d);
            default: return double.NaN;
        }
    }

    static Complex Power(Complex b, Complex e)
    {
        if (b.Imaginary == 0 && e.Imaginary == 0)
        {
            // Real powers stay real where they are defined (a cube root of a negative number is real).
            if (b.Real >= 0 || double.IsInteger(e.Real)) return System.Math.Pow(b.Real, e.Real);
            double inv = 1 / e.Real;
            if (double.IsInteger(System.Math.Round(inv, 9)) && ((long)System.Math.Round(inv)) % 2 != 0)
                return -System.Math.Pow(-b.Real, e.Real);
        }
        if (b == Complex.Zero) return e.Real > 0 ? Complex.Zero : double.NaN;
        return Complex.Pow(b, e);
    }

    static Complex Function(Func f, int point, Budget budget, int depth)
    {
        if (f.Args.Length == 2 && f.Name == "binom")
        {
            var n = Eval(f.Args[0], point, budget, depth).Real;
            var k = Eval(f.Args[1], point, budget, depth).Real;
            return System.Math.Exp(LogGamma(n + 1) - LogGamma(k + 1) - LogGamma(n - k + 1));
        }
        if (f.Args.Length != 1) return double.NaN;
        var a = Eval(f.Args[0], point, budget, depth);
        switch (f.Name)
        {
            case "sqrt": return a.Imaginary == 0 && a.Real >= 0 ? System.Math.Sqrt(a.Real) : Complex.Sqrt(a);
            case "sin": return Complex.Sin(a);
            case "cos": return Complex.Cos(a);
            case "tan": return Complex.Tan(a);
            case "sec": return 1 / Complex.Cos(a);
            case "csc": return 1 / Complex.Sin(a);
            case "cot": return 1 / Complex.Tan(a);
            case "arcsin": return Complex.Asin(a);
            case "arccos": return Complex.Acos(a);
            case "arctan": return Complex.Atan(a);
            case "sinh": return Complex.Sinh(a);
            case "cosh": return Complex.Cosh(a);
            case "tanh": return Complex.Tanh(a);
            case "ln" or "log": return a == Complex.Zero ? double.NaN : Complex.Log(a);
            case "exp": return Complex.Exp(a);
            case "abs": return a.Magnitude;
            case "floor": return a.Imaginary == 0 ? System.Math.Floor(a.Real) : double.NaN;
            case "ceil": return a.Imaginary == 0 ? System.Math.Ceiling(a.Real) : double.NaN;
            case "factorial":
                return a.Imaginary == 0 && a.Real >= 0 && a.Real < 171 ? System.Math.Round(System.Math.Exp(LogGamma(a.Real + 1))) : double.NaN;
            default: return double.NaN;
        }
    }

    /// <summary>Lanczos approximation (g=7, n=9), accurate to ~15 digits; enough for factorials and binomials.</summary>
    static double LogGamma(double x)
    {
        if (x < 0.5) return System.Math.Log(System.Math.PI / System.Math.Abs(System.Math.Sin(System.Math.PI * x))) - LogGamma(1 - x);
        double[] c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
        x -= 1;
        double s = c[0];
        for (int i = 1; i < 9; i++) s += c[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * System.Math.Log(2 * System.Math.PI) + (x + 0.5) * System.Math.Log(t) - t + System.Math.Log(s);
    }

    /// <summary>A free variable's value at a point: deterministic, in [0.6, 2.1) so that roots and
    /// logarithms stay real, and different for different names so x+1 never equals y+1.</summary>
    public static double VariableValue(string name, int point)
    {
        ulong h = 14695981039346656037UL;
        foreach (var ch in name) h = (h ^ ch) * 1099511628211UL;
        h ^= (ulong)(point + 1) * 0x9E3779B97F4A7C15UL;
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
        h ^= h >> 31;
        return 0.6 + 1.5 * ((h >> 11) * (1.0 / (1UL << 53)));
    }
}
