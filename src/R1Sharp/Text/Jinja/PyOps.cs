namespace R1Sharp.Text.Jinja;

/// <summary>Python semantics of the operators jinja2 compiles to: truth, equality, ordering, arithmetic, 'in', len, iteration.</summary>
internal static class PyOps
{
    public static bool Truthy(object? v) => v switch
    {
        null => false,
        Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        object?[] t => t.Length > 0,
        Dictionary<object, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        Dictionary<object, object?> => "dict",
        Namespace => "Namespace",
        Callable => "function",
        LoopInfo => "LoopContext",
        _ => v.GetType().Name,
    };

    static bool IsNumber(object? v) => v is long or double or bool;
    static double ToDouble(object v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => 0 };
    static long ToLong(object v) => v switch { long l => l, bool b => b ? 1 : 0, _ => 0 };

    public static bool Eq(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a == null || b == null) return a == null && b == null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        if (a is string sa && b is string sb) return string.Equals(sa, sb, StringComparison.Ordinal);
        if (a is List<object?> la && b is List<object?> lb) return SeqEq(la, lb);
        if (a is object?[] ta && b is object?[] tb) return SeqEq(ta, tb);
        if (a is Dictionary<object, object?> da && b is Dictionary<object, object?> db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var v) && Eq(kv.Value, v));
        return ReferenceEquals(a, b);
    }

    static bool SeqEq(IReadOnlyList<object?> a, IReadOnlyList<object?> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (!Eq(a[i], b[i])) return false;
        return true;
    }

    /// <summary>Python ordering: numbers with numbers, strings by code point, lists element-wise; anything else is a TypeError.</summary>
    public static int Compare(object? a, object? b, string op, int line)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a!).CompareTo(ToDouble(b!)) : ToLong(a!).CompareTo(ToLong(b!));
        if (a is string sa && b is string sb) return CompareCodePoints(sa, sb);
        if (AsSequence(a) is { } xa && AsSequence(b) is { } xb && a!.GetType() == b!.GetType())
        {
            for (int i = 0; i < Math.Min(xa.Count, xb.Count); i++)
                if (!Eq(xa[i], xb[i])) return Compare(xa[i], xb[i], op, line);
            return xa.Count.CompareTo(xb.Count);
        }
        throw JinjaError.At(line, $"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    static int CompareCodePoints(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            int ca = CodeAt(a, i), cb = CodeAt(b, j);
            if (ca != cb) return ca.CompareTo(cb);
            i += ca > 0xFFFF ? 2 : 1;
            j += cb > 0xFFFF ? 2 : 1;
        }
        return (a.Length - i).CompareTo(b.Length - j);
    }

    static int CodeAt(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? char.ConvertToUtf32(s[i], s[i + 1]) : s[i];

    public static IReadOnlyList<object?>? AsSequence(object? v) => v switch
    {
        List<object?> l => l,
        object?[] t => t,
        _ => null,
    };

    public static bool Contains(object? container, object? item, int line) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw JinjaError.At(line, $"'in <string>' requires string as left operand, not {TypeName(item)}"),
        Dictionary<object, object?> d => item != null && item is not Undefined && d.ContainsKey(item),
        Undefined => false,
        _ when AsSequence(container) is { } seq => seq.Any(x => Eq(x, item)),
        _ => throw JinjaError.At(line, $"argument of type '{TypeName(container)}' is not iterable"),
    };

    /// <summary>Python len(); Undefined has length 0 as in jinja2.</summary>
    public static long Len(object? v, int line) => v switch
    {
        string s => CodePoints.Count(s),
        List<object?> l => l.Count,
        object?[] t => t.Length,
        Dictionary<object, object?> d => d.Count,
        Undefined => 0,
        _ => throw JinjaError.At(line, $"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>What a for loop walks over: list/tuple items, dict keys, string characters (code points).</summary>
    public static List<object?> Iterate(object? v, int line) => v switch
    {
        List<object?> l => new List<object?>(l),
        object?[] t => new List<object?>(t),
        Dictionary<object, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => CodePoints.Split(s).Cast<object?>().ToList(),
        Undefined => new List<object?>(),
        _ => throw JinjaError.At(line, $"'{TypeName(v)}' object is not iterable"),
    };

    public static object? Arithmetic(string op, object? a, object? b, int line)
    {
        if (a is Undefined ua) throw JinjaError.At(line, ua.Hint);
        if (b is Undefined ub) throw JinjaError.At(line, ub.Hint);
        switch (op)
        {
            case "+" when a is string sa && b is string sb: return sa + sb;
            case "+" when a is List<object?> la && b is List<object?> lb: return la.Concat(lb).ToList();
            case "+" when a is object?[] ta && b is object?[] tb: return ta.Concat(tb).ToArray();
            case "*" when a is string s && b is long or bool: return Repeat(s, ToLong(b!));
            case "*" when b is string s && a is long or bool: return Repeat(s, ToLong(a!));
            case "*" when a is List<object?> l && b is long n: return Enumerable.Range(0, (int)Math.Max(0, n)).SelectMany(_ => l).ToList();
        }
        if (!IsNumber(a) || !IsNumber(b))
            throw JinjaError.At(line, $"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
        bool floats = a is double || b is double;
        if (op == "/")
        {
            double d = ToDouble(b!);
            if (d == 0) throw JinjaError.At(line, "division by zero");
            return ToDouble(a!) / d;
        }
        if (floats)
        {
            double x = ToDouble(a!), y = ToDouble(b!);
            return op switch
            {
                "+" => x + y, "-" => x - y, "*" => x * y, "**" => Math.Pow(x, y),
                "//" => y == 0 ? throw JinjaError.At(line, "float floor division by zero") : Math.Floor(x / y),
                "%" => y == 0 ? throw JinjaError.At(line, "float modulo") : x - y * Math.Floor(x / y),
                _ => throw JinjaError.At(line, $"unknown operator {op}"),
            };
        }
        long p = ToLong(a!), q = ToLong(b!);
        switch (op)
        {
            case "+": return p + q;
            case "-": return p - q;
            case "*": return p * q;
            case "**": return q >= 0 ? (object)IntPow(p, q, line) : Math.Pow(p, q);
            case "//":
            case "%":
                if (q == 0) throw JinjaError.At(line, "integer division or modulo by zero");
                long div = p / q, rem = p % q;
                if (rem != 0 && (rem < 0) != (q < 0)) { div--; rem += q; } // Python floors toward -infinity
                return op == "//" ? div : rem;
        }
        throw JinjaError.At(line, $"unknown operator {op}");
    }

    static long IntPow(long b, long e, int line)
    {
        long r = 1;
        try { checked { for (long i = 0; i < e; i++) r *= b; } }
        catch (OverflowException) { throw JinjaError.At(line, "integer power too large for 64 bits"); }
        return r;
    }

    static string Repeat(string s, long n) => n <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)n));
}

/// <summary>Python indexes strings by code point; .NET by UTF-16 unit. These helpers keep emoji and other astral characters whole.</summary>
internal static class CodePoints
{
    public static int Count(string s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++) { if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++; n++; }
        return n;
    }

    public static List<string> Split(string s)
    {
        var r = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { r.Add(s.Substring(i, 2)); i++; }
            else r.Add(s[i].ToString());
        }
        return r;
    }
}
