using System.Numerics;

namespace R1Sharp.Verifier;

/// <summary>An exact rational number p/q with q &gt; 0 and gcd(p,q)=1. Used so that 1/3, 0.333… and
/// 10,080 compare exactly instead of through floating point.</summary>
internal readonly struct Rational : IEquatable<Rational>
{
    public readonly BigInteger Num;
    public readonly BigInteger Den;

    /// <summary>Numbers larger than this many bits are not kept exact: they only appear in adversarial input.</summary>
    public const int MaxBits = 4096;

    public Rational(BigInteger num, BigInteger den)
    {
        if (den.IsZero) throw new DivideByZeroException();
        if (den.Sign < 0) { num = -num; den = -den; }
        var g = BigInteger.GreatestCommonDivisor(num, den);
        if (!g.IsOne && !g.IsZero) { num /= g; den /= g; }
        Num = num; Den = den;
    }

    public static readonly Rational Zero = new(0, 1);
    public static readonly Rational One = new(1, 1);
    public static Rational FromInt(BigInteger n) => new(n, 1);

    public bool IsZero => Num.IsZero;
    public bool IsInteger => Den.IsOne;
    public int Sign => Num.Sign;
    public bool TooBig => Num.GetBitLength() > MaxBits || Den.GetBitLength() > MaxBits;

    public static Rational operator +(Rational a, Rational b) => new(a.Num * b.Den + b.Num * a.Den, a.Den * b.Den);
    public static Rational operator -(Rational a, Rational b) => new(a.Num * b.Den - b.Num * a.Den, a.Den * b.Den);
    public static Rational operator -(Rational a) => new(-a.Num, a.Den);
    public static Rational operator *(Rational a, Rational b) => new(a.Num * b.Num, a.Den * b.Den);
    public static Rational operator /(Rational a, Rational b) => new(a.Num * b.Den, a.Den * b.Num);

    /// <summary>a^n for a small integer n; null when the result would be too large to keep exact.</summary>
    public static Rational? Pow(Rational a, BigInteger n)
    {
        if (n.IsZero) return One;
        if (a.IsZero) return n.Sign > 0 ? Zero : null;
        if (BigInteger.Abs(n) > 1 && (long)(a.Num.GetBitLength() + a.Den.GetBitLength()) * (long)BigInteger.Min(BigInteger.Abs(n), 100_000) > MaxBits)
            return null;
        int e = (int)BigInteger.Abs(n);
        var p = new Rational(BigInteger.Pow(a.Num, e), BigInteger.Pow(a.Den, e));
        return n.Sign > 0 ? p : One / p;
    }

    /// <summary>Exact square root when both numerator and denominator are perfect squares.</summary>
    public static Rational? Sqrt(Rational a)
    {
        if (a.Sign < 0) return null;
        var n = ISqrt(a.Num); var d = ISqrt(a.Den);
        return n * n == a.Num && d * d == a.Den ? new Rational(n, d) : null;
    }

    static BigInteger ISqrt(BigInteger v)
    {
        if (v < 2) return v;
        var x = (BigInteger)System.Math.Sqrt((double)v);
        while (x * x > v) x--;
        while ((x + 1) * (x + 1) <= v) x++;
        return x;
    }

    /// <summary>Rounds to <paramref name="digits"/> decimal places, halves away from zero (as people round).</summary>
    public Rational Round(int digits)
    {
        var scale = BigInteger.Pow(10, System.Math.Clamp(digits, 0, 50));
        var scaled = Num * scale * 2;
        var twice = Den;
        // floor((2*n*scale + den) / (2*den)) for positive, symmetric for negative.
        var abs = BigInteger.Abs(scaled);
        var q = (abs + twice) / (2 * twice);
        return new Rational(Num.Sign < 0 ? -q : q, scale);
    }

    public double ToDouble()
    {
        double r = (double)Num / (double)Den;
        if (double.IsFinite(r) && !(r == 0 && !Num.IsZero)) return r;
        // Scale both sides down to keep precision for huge numerators and denominators.
        int shift = (int)System.Math.Max(Num.GetBitLength(), Den.GetBitLength()) - 1000;
        return shift <= 0 ? r : (double)(Num >> shift) / (double)(Den >> shift);
    }

    public bool Equals(Rational o) => Num == o.Num && Den == o.Den;
    public override bool Equals(object? o) => o is Rational r && Equals(r);
    public override int GetHashCode() => HashCode.Combine(Num, Den);
    public override string ToString() => Den.IsOne ? Num.ToString() : $"{Num}/{Den}";
}
