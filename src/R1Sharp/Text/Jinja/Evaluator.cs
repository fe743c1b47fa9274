namespace R1Sharp.Text.Jinja;

/// <summary>Expression evaluation, with jinja2's rules for attribute and item lookup and for Undefined.</summary>
internal sealed partial class Interpreter
{
    object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case Literal l: return l.Value;
            case NameExpr n: return Lookup(n, scope);
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case TupleExpr t: return t.Items.Select(x => Eval(x, scope)).ToArray();
            case DictExpr d:
                var dict = Values.NewDict();
                foreach (var (k, v) in d.Items)
                {
                    var key = Eval(k, scope);
                    if (key is null or Undefined or List<object?> or Dictionary<object, object?>)
                        throw JinjaError.At(d.Line, $"unhashable or missing dict key of type '{PyOps.TypeName(key)}'");
                    dict[key] = Eval(v, scope);
                }
                return dict;
            case GetAttr g: return GetAttribute(Eval(g.Obj, scope), g.Name, g.Line);
            case GetItem gi:
                var obj = Eval(gi.Obj, scope);
                if (gi.Index is SliceExpr sl) return Slice(obj, sl, scope);
                return GetItemValue(obj, Eval(gi.Index, scope), gi.Line);
            case CallExpr c: return Call(c, scope);
            case FilterExpr f: return ApplyFilter(f, Eval(f.Input!, scope), scope);
            case TestExpr t:
                var result = BuiltinTests.Run(t.Name, Eval(t.Input, scope), t.Args.Select(a => Eval(a, scope)).ToList(), t.Line);
                return t.Negated ? !result : result;
            case UnaryExpr u:
                var val = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !PyOps.Truthy(val),
                    "-" => val switch
                    {
                        long x => (object)(-x), // (object): a switch mixing long and double arms would widen to double
                        double x => -x,
                        bool b => b ? -1L : 0L,
                        Undefined ud => throw JinjaError.At(u.Line, ud.Hint),
                        _ => throw JinjaError.At(u.Line, $"bad operand type for unary -: '{PyOps.TypeName(val)}'"),
                    },
                    _ => val is long or double ? val : val is bool b2 ? (b2 ? 1L : 0L) : throw JinjaError.At(u.Line, $"bad operand type for unary +: '{PyOps.TypeName(val)}'"),
                };
            case BinaryExpr b:
                if (b.Op == "and") { var left = Eval(b.Left, scope); return PyOps.Truthy(left) ? Eval(b.Right, scope) : left; }
                if (b.Op == "or") { var left = Eval(b.Left, scope); return PyOps.Truthy(left) ? left : Eval(b.Right, scope); }
                return PyOps.Arithmetic(b.Op, Eval(b.Left, scope), Eval(b.Right, scope), b.Line);
            case CompareExpr c: return Compare(c, scope);
            case ConcatExpr c: return string.Concat(c.Parts.Select(p => PyFormat.Str(Eval(p, scope))));
            case CondExpr c:
                if (PyOps.Truthy(Eval(c.Test, scope))) return Eval(c.Then, scope);
                return c.Else != null ? Eval(c.Else, scope) : new Undefined("the inline if-expression evaluated to false and no else section was defined");
            case SliceExpr s: throw JinjaError.At(s.Line, "a slice is only allowed inside []");
        }
        throw JinjaError.At(e.Line, $"cannot evaluate {e.GetType().Name}");
    }

    bool Compare(CompareExpr c, Scope scope)
    {
        var left = Eval(c.First, scope);
        foreach (var (op, operand) in c.Rest)
        {
            var right = Eval(operand, scope);
            bool ok = op switch
            {
                "==" => PyOps.Eq(left, right),
                "!=" => !PyOps.Eq(left, right),
                "in" => PyOps.Contains(right, left, c.Line),
                "notin" => !PyOps.Contains(right, left, c.Line),
                _ => CompareOrdered(op, left, right, c.Line),
            };
            if (!ok) return false;
            left = right;
        }
        return true;
    }

    static bool CompareOrdered(string op, object? a, object? b, int line)
    {
        if (a is Undefined ua) throw JinjaError.At(line, ua.Hint);
        if (b is Undefined ub) throw JinjaError.At(line, ub.Hint);
        int cmp = PyOps.Compare(a, b, op, line);
        return op switch { "<" => cmp < 0, ">" => cmp > 0, "<=" => cmp <= 0, _ => cmp >= 0 };
    }

    object? Call(CallExpr c, Scope scope)
    {
        var callee = Eval(c.Callee, scope);
        var args = c.Args.Select(a => Eval(a, scope)).ToList();
        var kwargs = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in c.Kwargs) kwargs[k] = Eval(v, scope);
        return callee switch
        {
            Callable f => f.Invoke(args, kwargs, c.Line),
            Undefined u => throw JinjaError.At(c.Line, u.Hint),
            _ => throw JinjaError.At(c.Line, $"'{PyOps.TypeName(callee)}' object is not callable"),
        };
    }

    /// <summary>obj.name: Python attribute first (methods, namespace/loop fields), then obj['name'], else Undefined.</summary>
    internal static object? GetAttribute(object? obj, string name, int line)
    {
        if (obj is Undefined u) throw JinjaError.At(line, u.Hint);
        switch (obj)
        {
            case Namespace ns: return ns.Attrs.TryGetValue(name, out var v) ? v : Missing(obj, name);
            case LoopInfo loop: return loop.Get(name);
        }
        if (Methods.Bind(obj, name, line) is { } method) return method;
        if (obj is Dictionary<object, object?> d && d.TryGetValue(name, out var dv)) return dv;
        return Missing(obj, name);
    }

    /// <summary>obj[key]: item first, then (for string keys) the attribute, else Undefined.</summary>
    internal static object? GetItemValue(object? obj, object? key, int line)
    {
        if (obj is Undefined u) throw JinjaError.At(line, u.Hint);
        switch (obj)
        {
            case Dictionary<object, object?> d when key is not null and not Undefined:
                if (d.TryGetValue(key, out var v)) return v;
                break;
            case string s when key is long or bool:
                var chars = CodePoints.Split(s);
                if (NormalizeIndex(ToIndex(key), chars.Count) is int ci) return chars[ci];
                break;
        }
        if (PyOps.AsSequence(obj) is { } seq && key is long or bool)
        {
            if (NormalizeIndex(ToIndex(key), seq.Count) is int i) return seq[i];
        }
        if (key is string name && obj is not Dictionary<object, object?>) return GetAttribute(obj, name, line);
        if (key is string dname && obj is Dictionary<object, object?> && Methods.Bind(obj, dname, line) is { } m) return m;
        return new Undefined($"'{DescribeType(obj)}' has no attribute '{PyFormat.Str(key)}'");
    }

    static long ToIndex(object? key) => key is bool b ? (b ? 1 : 0) : (long)key!;

    static int? NormalizeIndex(long i, int count)
    {
        if (i < 0) i += count;
        return i >= 0 && i < count ? (int)i : null;
    }

    static Undefined Missing(object? obj, string name) => new($"'{DescribeType(obj)}' has no attribute '{name}'");

    // jinja2's object_type_repr: "None", or "<type> object".
    static string DescribeType(object? obj) => obj == null ? "None" : PyOps.TypeName(obj) + " object";

    object? Slice(object? obj, SliceExpr s, Scope scope)
    {
        long? Bound(Expr? e)
        {
            if (e == null) return null;
            var v = Eval(e, scope);
            return v switch { null => null, long l => l, bool b => b ? 1 : 0, _ => throw JinjaError.At(s.Line, "slice indices must be integers or None") };
        }
        long? start = Bound(s.Start), stop = Bound(s.Stop), step = Bound(s.Step);
        if (obj is Undefined u) throw JinjaError.At(s.Line, u.Hint);
        return obj switch
        {
            string str => string.Concat(SliceList(CodePoints.Split(str), start, stop, step, s.Line)),
            List<object?> l => SliceList(l, start, stop, step, s.Line),
            object?[] t => SliceList(t, start, stop, step, s.Line).ToArray(),
            _ => throw JinjaError.At(s.Line, $"'{PyOps.TypeName(obj)}' object is not subscriptable"),
        };
    }

    // Python's slice.indices() followed by the walk.
    internal static List<T> SliceList<T>(IReadOnlyList<T> seq, long? start, long? stop, long? step, int line)
    {
        long n = seq.Count, st = step ?? 1;
        if (st == 0) throw JinjaError.At(line, "slice step cannot be zero");
        long lo, hi;
        if (st > 0)
        {
            lo = start is long a ? (a < 0 ? Math.Max(0, a + n) : Math.Min(a, n)) : 0;
            hi = stop is long b ? (b < 0 ? Math.Max(0, b + n) : Math.Min(b, n)) : n;
        }
        else
        {
            lo = start is long a ? (a < 0 ? Math.Max(-1, a + n) : Math.Min(a, n - 1)) : n - 1;
            hi = stop is long b ? (b < 0 ? Math.Max(-1, b + n) : Math.Min(b, n - 1)) : -1;
        }
        var r = new List<T>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) r.Add(seq[(int)i]);
        return r;
    }

    object? ApplyFilter(FilterExpr f, object? input, Scope scope)
    {
        var args = f.Args.Select(a => Eval(a, scope)).ToList();
        var kwargs = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in f.Kwargs) kwargs[k] = Eval(v, scope);
        return Filters.Apply(f.Name, input, args, kwargs, f.Line);
    }
}
