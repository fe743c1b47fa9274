namespace R1Sharp.Text.Jinja;

/// <summary>jinja2's tests ("x is defined", "x is string", ...). An unknown test is an error naming it.</summary>
internal static class BuiltinTests
{
    public static bool Run(string name, object? v, List<object?> a, int line)
    {
        object? Arg()
        {
            if (a.Count != 1) throw JinjaError.At(line, $"test '{name}' takes one argument ({a.Count} given)");
            return a[0];
        }
        switch (name)
        {
            case "defined": return v is not Undefined;
            case "undefined": return v is Undefined;
            case "none": return v == null;
            case "string": return v is string;
            case "number": return v is long or double or bool;
            case "integer": return v is long;
            case "float": return v is double;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "mapping": return v is Dictionary<object, object?>;
            // Python: anything with __iter__ (Undefined included) is iterable; sequences also have len and indexing.
            case "iterable": return v is string or List<object?> or object?[] or Dictionary<object, object?> or Undefined;
            case "sequence": return v is string or List<object?> or object?[] or Dictionary<object, object?>;
            case "callable": return v is Callable;
            case "lower": return v is string ls && ls == ls.ToLowerInvariant();
            case "upper": return v is string us && us == us.ToUpperInvariant();
            case "odd": return Int(v, name, line) % 2 != 0;
            case "even": return Int(v, name, line) % 2 == 0;
            case "divisibleby": return Int(v, name, line) % Int(Arg(), name, line) == 0;
            case "eq" or "equalto" or "==": return PyOps.Eq(v, Arg());
            case "ne" or "!=": return !PyOps.Eq(v, Arg());
            case "lt" or "lessthan" or "<": return PyOps.Compare(v, Arg(), "<", line) < 0;
            case "le" or "<=": return PyOps.Compare(v, Arg(), "<=", line) <= 0;
            case "gt" or "greaterthan" or ">": return PyOps.Compare(v, Arg(), ">", line) > 0;
            case "ge" or ">=": return PyOps.Compare(v, Arg(), ">=", line) >= 0;
            case "in": return PyOps.Contains(Arg(), v, line);
            case "sameas":
                var other = Arg();
                return v is null or bool || other is null or bool ? Equals(v, other) : ReferenceEquals(v, other);
            case "escaped": return false;
        }
        throw JinjaError.At(line, $"test '{name}' is not supported by R1Sharp's Jinja interpreter");
    }

    static long Int(object? v, string name, int line) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw JinjaError.At(line, $"test '{name}' needs an integer, not {PyOps.TypeName(v)}"),
    };
}
