namespace R1Sharp.Text.Jinja;

// Template values are plain .NET objects with Python meanings:
//   null = None, bool, long = int, double = float, string = str, List<object?> = list, object?[] = tuple,
//   Dictionary<object, object?> = dict (insertion-ordered, keys compared the Python way), plus the classes below.

/// <summary>jinja2's default Undefined: falsy, renders as "", iterates as empty; using it in arithmetic or
/// reading an attribute of it is an error that names what was missing.</summary>
internal sealed class Undefined
{
    public string Hint { get; }
    public Undefined(string hint) => Hint = hint;
    public override string ToString() => "";
}

/// <summary>The object namespace(...) returns: the one mutable thing templates may assign attributes on.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Attrs { get; } = new();
}

/// <summary>A callable value: globals such as range, raise_exception, bound string methods, macros.</summary>
internal sealed class Callable
{
    public string Name { get; }
    /// <summary>(positional args, keyword args, template line of the call) -> result.</summary>
    public Func<List<object?>, Dictionary<string, object?>, int, object?> Invoke { get; }
    public Callable(string name, Func<List<object?>, Dictionary<string, object?>, int, object?> invoke) { Name = name; Invoke = invoke; }
}

/// <summary>The 'loop' variable inside {% for %}.</summary>
internal sealed class LoopInfo
{
    readonly List<object?> _items;
    public int Index0 { get; set; }
    public LoopInfo(List<object?> items) => _items = items;

    public object? Get(string name) => name switch
    {
        "index0" => (long)Index0,
        "index" => (long)Index0 + 1,
        "revindex0" => (long)(_items.Count - Index0 - 1),
        "revindex" => (long)(_items.Count - Index0),
        "first" => Index0 == 0,
        "last" => Index0 == _items.Count - 1,
        "length" => (long)_items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? _items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 < _items.Count - 1 ? _items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new Callable("loop.cycle", (args, _, line) =>
            args.Count == 0 ? throw JinjaError.At(line, "loop.cycle() needs at least one argument") : args[Index0 % args.Count]),
        _ => new Undefined($"'LoopContext' object has no attribute '{name}'"),
    };
}

/// <summary>Dictionary key comparison with Python semantics (1 == 1.0 == True, strings ordinal).</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();
    public new bool Equals(object? a, object? b) => PyOps.Eq(a, b);
    public int GetHashCode(object o) => o switch
    {
        bool b => b ? 1 : 0,
        long l => l.GetHashCode(),
        double d => d == Math.Floor(d) && Math.Abs(d) < 9e18 ? ((long)d).GetHashCode() : d.GetHashCode(),
        string s => StringComparer.Ordinal.GetHashCode(s),
        _ => 0,
    };
}

/// <summary>Conversions from the .NET values callers pass in to template values.</summary>
internal static class Values
{
    public static Dictionary<object, object?> NewDict() => new(PyKeyComparer.Instance);

    public static object? FromClr(object? v) => v switch
    {
        null or bool or long or double or string or Undefined or Namespace or Callable => v,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        ulong ul => (long)ul,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        System.Text.Json.JsonElement je => FromJson(je),
        System.Collections.IDictionary d => FromDictionary(d),
        System.Collections.IEnumerable e => e.Cast<object?>().Select(FromClr).ToList(),
        _ => throw new R1SharpException($"chat template: cannot pass a value of type {v.GetType().Name} to a template"),
    };

    static Dictionary<object, object?> FromDictionary(System.Collections.IDictionary d)
    {
        var r = NewDict();
        foreach (System.Collections.DictionaryEntry kv in d) r[FromClr(kv.Key)!] = FromClr(kv.Value);
        return r;
    }

    public static object? FromJson(System.Text.Json.JsonElement e)
    {
        switch (e.ValueKind)
        {
            case System.Text.Json.JsonValueKind.Object:
                var d = NewDict();
                foreach (var p in e.EnumerateObject()) d[p.Name] = FromJson(p.Value);
                return d;
            case System.Text.Json.JsonValueKind.Array: return e.EnumerateArray().Select(FromJson).ToList();
            case System.Text.Json.JsonValueKind.String: return e.GetString();
            case System.Text.Json.JsonValueKind.Number: return e.TryGetInt64(out var l) ? (object)l : e.GetDouble(); // (object): keep int vs float apart
            case System.Text.Json.JsonValueKind.True: return true;
            case System.Text.Json.JsonValueKind.False: return false;
            default: return null;
        }
    }
}
