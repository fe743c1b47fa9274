using System.Globalization;

namespace R1Sharp.Text.Jinja;

/// <summary>
/// jinja2's built-in filters that chat templates use, plus transformers' tojson (json.dumps with ensure_ascii=False).
/// An unknown filter is an error naming it, never a silent pass-through.
/// </summary>
internal static class Filters
{
    public static object? Apply(string name, object? v, List<object?> a, Dictionary<string, object?> kw, int line)
    {
        // jinja2 lets most filters treat Undefined as empty, but these do arithmetic on it, which raises.
        if (v is Undefined u && name is "int" or "float" or "indent" or "abs" or "round" or "dictsort")
            throw JinjaError.At(line, $"filter '{name}': {u.Hint}");
        switch (name)
        {
            case "tojson": return ToJson(v, a, kw, line);
            case "trim": return Methods.Strip(Text(v), a.Count > 0 ? [a[0]] : [], line, "trim", true, true);
            case "length" or "count": return PyOps.Len(v, line);
            case "string": return PyFormat.Str(v);
            case "lower": return Text(v).ToLowerInvariant();
            case "upper": return Text(v).ToUpperInvariant();
            case "title": return Methods.Title(Text(v));
            case "capitalize": var s = Text(v); return s.Length == 0 ? s : s[..1].ToUpperInvariant() + s[1..].ToLowerInvariant();
            case "safe": return v; // autoescape is off in transformers, so safe changes nothing
            case "replace":
                Methods.Arity(name, a, 2, 3, line);
                return Methods.Bind(Text(v), "replace", line)!.Invoke(a, kw, line);
            case "default" or "d":
                var fallback = a.Count > 0 ? a[0] : kw.GetValueOrDefault("default_value", "");
                bool boolean = (a.Count > 1 && PyOps.Truthy(a[1])) || (kw.TryGetValue("boolean", out var bv) && PyOps.Truthy(bv));
                return v is Undefined || (boolean && !PyOps.Truthy(v)) ? fallback : v;
            case "join":
                var sep = a.Count > 0 ? Text(a[0]) : kw.TryGetValue("d", out var dv) ? Text(dv) : "";
                var attr = kw.GetValueOrDefault("attribute") as string;
                return string.Join(sep, PyOps.Iterate(v, line).Select(x => PyFormat.Str(attr != null ? Interpreter.GetAttribute(x, attr, line) : x)));
            case "first": var f = PyOps.Iterate(v, line); return f.Count > 0 ? f[0] : new Undefined("No first item, sequence was empty.");
            case "last": var l = PyOps.Iterate(v, line); return l.Count > 0 ? l[^1] : new Undefined("No last item, sequence was empty.");
            case "list": return PyOps.Iterate(v, line);
            case "reverse": return v is string rs ? string.Concat(CodePoints.Split(rs).AsEnumerable().Reverse()) : PyOps.Iterate(v, line).AsEnumerable().Reverse().ToList();
            case "items":
                if (v is Undefined) return new List<object?>();
                if (v is not Dictionary<object, object?> d) throw JinjaError.At(line, $"items filter: can only get item pairs from a mapping, not {PyOps.TypeName(v)}");
                return d.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList();
            case "dictsort":
                if (v is not Dictionary<object, object?> ds) throw JinjaError.At(line, "dictsort filter expects a mapping");
                return ds.OrderBy(kv => kv.Key is string k ? k.ToLowerInvariant() : PyFormat.Str(kv.Key), StringComparer.Ordinal)
                         .Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList();
            case "select" or "reject": return SelectReject(name == "select", v, a, line);
            case "selectattr" or "rejectattr": return SelectAttr(name == "selectattr", v, a, line);
            case "map": return Map(v, a, kw, line);
            case "unique":
                var seen = new List<object?>();
                foreach (var x in PyOps.Iterate(v, line)) if (!seen.Any(y => PyOps.Eq(x, y))) seen.Add(x);
                return seen;
            case "sum": return PyOps.Iterate(v, line).Aggregate((object?)0L, (acc, x) => PyOps.Arithmetic("+", acc, x, line));
            case "min" or "max":
                var mm = PyOps.Iterate(v, line);
                if (mm.Count == 0) return new Undefined($"No {name} item, sequence was empty.");
                return mm.Aggregate((x, y) => (PyOps.Compare(y, x, "<", line) < 0) == (name == "min") ? y : x);
            case "int": return ToInt(v, a);
            case "float": return ToFloat(v, a);
            case "abs": return v switch { long i => (object)Math.Abs(i), double dd => Math.Abs(dd), _ => throw JinjaError.At(line, $"bad operand type for abs(): '{PyOps.TypeName(v)}'") };
            case "round": return Round(v, a, kw, line);
            case "indent": return Indent(Text(v), a, kw);
            case "wordcount": return (long)Text(v).Split(Lexer.PyWhitespace, StringSplitOptions.RemoveEmptyEntries).Length;
            case "batch" or "slice" or "groupby" or "format" or "truncate" or "wordwrap" or "urlize" or "xmlattr" or "filesizeformat" or "pprint" or "striptags" or "center" or "urlencode" or "forceescape" or "random" or "attr" or "sort" or "e" or "escape":
                break;
        }
        throw JinjaError.At(line, $"filter '{name}' is not supported by R1Sharp's Jinja interpreter");
    }

    // Filters that work on text call str() on their input, so Undefined becomes "" (jinja2's soft_str).
    static string Text(object? v) => PyFormat.Str(v);

    static object? ToJson(object? v, List<object?> a, Dictionary<string, object?> kw, int line)
    {
        object? Arg(int pos, string key) => pos < a.Count ? a[pos] : kw.GetValueOrDefault(key);
        var ensureAscii = Arg(0, "ensure_ascii");
        var indent = Arg(1, "indent");
        var separators = Arg(2, "separators");
        var sortKeys = Arg(3, "sort_keys");
        if (v is Undefined u) throw JinjaError.At(line, $"tojson: {u.Hint}");
        (string, string)? seps = null;
        if (separators != null)
        {
            var s = PyOps.AsSequence(separators);
            if (s is not { Count: 2 } || s[0] is not string s0 || s[1] is not string s1) throw JinjaError.At(line, "tojson: separators must be a pair of strings");
            seps = (s0, s1);
        }
        int? ind = indent switch
        {
            null => null,
            long n => (int)n,
            _ => throw JinjaError.At(line, "tojson: indent must be an integer"),
        };
        return PyFormat.ToJson(v, ind, ensureAscii != null && PyOps.Truthy(ensureAscii), sortKeys != null && PyOps.Truthy(sortKeys), seps, line);
    }

    static List<object?> SelectReject(bool select, object? v, List<object?> a, int line)
    {
        var items = PyOps.Iterate(v, line);
        if (a.Count == 0) return items.Where(x => PyOps.Truthy(x) == select).ToList();
        var test = PyFormat.Str(a[0]);
        var targs = a.Skip(1).ToList();
        return items.Where(x => BuiltinTests.Run(test, x, targs, line) == select).ToList();
    }

    static List<object?> SelectAttr(bool select, object? v, List<object?> a, int line)
    {
        if (a.Count == 0 || a[0] is not string attr) throw JinjaError.At(line, "selectattr/rejectattr need an attribute name");
        var items = PyOps.Iterate(v, line);
        bool Keep(object? x)
        {
            var val = Interpreter.GetAttribute(x, attr, line);
            return a.Count == 1 ? PyOps.Truthy(val) : BuiltinTests.Run(PyFormat.Str(a[1]), val, a.Skip(2).ToList(), line);
        }
        return items.Where(x => Keep(x) == select).ToList();
    }

    static List<object?> Map(object? v, List<object?> a, Dictionary<string, object?> kw, int line)
    {
        var items = PyOps.Iterate(v, line);
        if (kw.TryGetValue("attribute", out var attrObj) && attrObj is string attr)
        {
            var def = kw.GetValueOrDefault("default");
            return items.Select(x =>
            {
                var r = Interpreter.GetAttribute(x, attr, line);
                return r is Undefined && kw.ContainsKey("default") ? def : r;
            }).ToList();
        }
        if (a.Count == 0 || a[0] is not string filter) throw JinjaError.At(line, "map needs a filter name or attribute=");
        var fargs = a.Skip(1).ToList();
        return items.Select(x => Apply(filter, x, fargs, new Dictionary<string, object?>(kw), line)).ToList();
    }

    static object? ToInt(object? v, List<object?> a)
    {
        object? def = a.Count > 0 ? a[0] : 0L;
        return v switch
        {
            long or bool => v is bool b ? (b ? 1L : 0L) : v,
            double d => (long)Math.Truncate(d),
            string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
            string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d2) => (long)Math.Truncate(d2),
            _ => def,
        };
    }

    static object? ToFloat(object? v, List<object?> a)
    {
        object? def = a.Count > 0 ? a[0] : 0.0;
        return v switch
        {
            long l => (double)l,
            double => v,
            bool b => b ? 1.0 : 0.0,
            string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            _ => def,
        };
    }

    static object? Round(object? v, List<object?> a, Dictionary<string, object?> kw, int line)
    {
        long precision = (a.Count > 0 ? a[0] : kw.GetValueOrDefault("precision")) is long p ? p : 0;
        string method = (a.Count > 1 ? a[1] : kw.GetValueOrDefault("method")) as string ?? "common";
        double x = v switch { long l => l, double d => d, _ => throw JinjaError.At(line, "round filter expects a number") };
        double scale = Math.Pow(10, precision);
        double r = method switch
        {
            "common" => Math.Round(x * scale, MidpointRounding.AwayFromZero) / scale,
            "ceil" => Math.Ceiling(x * scale) / scale,
            "floor" => Math.Floor(x * scale) / scale,
            _ => throw JinjaError.At(line, "round method must be 'common', 'ceil' or 'floor'"),
        };
        return r;
    }

    static string Indent(string s, List<object?> a, Dictionary<string, object?> kw)
    {
        object? width = a.Count > 0 ? a[0] : kw.GetValueOrDefault("width", 4L);
        bool first = PyOps.Truthy(a.Count > 1 ? a[1] : kw.GetValueOrDefault("first", false));
        bool blank = PyOps.Truthy(a.Count > 2 ? a[2] : kw.GetValueOrDefault("blank", false));
        string pad = width is string ws ? ws : new string(' ', (int)(width is long w ? w : 4));
        var lines = s.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (i == 0 && !first) continue;
            if (!blank && lines[i].Trim(Lexer.PyWhitespace).Length == 0) continue;
            lines[i] = pad + lines[i];
        }
        return string.Join("\n", lines);
    }
}
