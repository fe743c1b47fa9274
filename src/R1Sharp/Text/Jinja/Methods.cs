using System.Globalization;
using System.Text;

namespace R1Sharp.Text.Jinja;

/// <summary>
/// Python methods templates call on values: str.startswith/split/strip/..., dict.items/get/..., and so on.
/// Methods that mutate a list or dict are refused, as in the ImmutableSandboxedEnvironment transformers uses.
/// </summary>
internal static class Methods
{
    static readonly HashSet<string> Mutating = ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem"];

    public static Callable? Bind(object? obj, string name, int line) => obj switch
    {
        string s => StringMethod(s, name),
        Dictionary<object, object?> d => DictMethod(d, name, line),
        List<object?> or object?[] => Mutating.Contains(name)
            ? new Callable(name, (_, _, l) => throw JinjaError.At(l, $"access to attribute '{name}' of '{PyOps.TypeName(obj)}' object is unsafe (templates cannot modify lists)"))
            : SeqMethod(PyOps.AsSequence(obj)!, name),
        _ => null,
    };

    static Callable? DictMethod(Dictionary<object, object?> d, string name, int line) => name switch
    {
        "items" => new(name, (_, _, _) => d.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList()),
        "keys" => new(name, (_, _, _) => d.Keys.Cast<object?>().ToList()),
        "values" => new(name, (_, _, _) => d.Values.ToList()),
        "get" => new(name, (a, _, l) =>
        {
            Arity(name, a, 1, 2, l);
            return a[0] is not null and not Undefined && d.TryGetValue(a[0]!, out var v) ? v : a.Count > 1 ? a[1] : null;
        }),
        _ when Mutating.Contains(name) => new(name, (_, _, l) => throw JinjaError.At(l, $"access to attribute '{name}' of 'dict' object is unsafe (templates cannot modify dicts)")),
        _ => null,
    };

    static Callable? SeqMethod(IReadOnlyList<object?> seq, string name) => name switch
    {
        "index" => new(name, (a, _, l) =>
        {
            Arity(name, a, 1, 1, l);
            for (int i = 0; i < seq.Count; i++) if (PyOps.Eq(seq[i], a[0])) return (long)i;
            throw JinjaError.At(l, $"{PyFormat.Repr(a[0])} is not in list");
        }),
        "count" => new(name, (a, _, l) => { Arity(name, a, 1, 1, l); return (long)seq.Count(x => PyOps.Eq(x, a[0])); }),
        _ => null,
    };

    static Callable? StringMethod(string s, string name) => name switch
    {
        "startswith" => new(name, (a, _, l) => Affix(s, a, l, name, (x, p) => x.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => new(name, (a, _, l) => Affix(s, a, l, name, (x, p) => x.EndsWith(p, StringComparison.Ordinal))),
        "strip" => new(name, (a, _, l) => Strip(s, a, l, name, true, true)),
        "lstrip" => new(name, (a, _, l) => Strip(s, a, l, name, true, false)),
        "rstrip" => new(name, (a, _, l) => Strip(s, a, l, name, false, true)),
        "split" => new(name, (a, kw, l) => Split(s, a, kw, l, fromRight: false)),
        "rsplit" => new(name, (a, kw, l) => Split(s, a, kw, l, fromRight: true)),
        "splitlines" => new(name, (_, _, _) => SplitLines(s)),
        "lower" => new(name, (_, _, _) => s.ToLowerInvariant()),
        "upper" => new(name, (_, _, _) => s.ToUpperInvariant()),
        "title" => new(name, (_, _, _) => Title(s)),
        "capitalize" => new(name, (_, _, _) => s.Length == 0 ? s : s[..1].ToUpperInvariant() + s[1..].ToLowerInvariant()),
        "replace" => new(name, (a, _, l) =>
        {
            Arity(name, a, 2, 3, l);
            string old = Str(a[0], name, l), neu = Str(a[1], name, l);
            long count = a.Count > 2 && a[2] is long c ? c : -1;
            return Replace(s, old, neu, count);
        }),
        "find" => new(name, (a, _, l) => { Arity(name, a, 1, 1, l); return (long)CodeIndex(s, s.IndexOf(Str(a[0], name, l), StringComparison.Ordinal)); }),
        "rfind" => new(name, (a, _, l) => { Arity(name, a, 1, 1, l); return (long)CodeIndex(s, s.LastIndexOf(Str(a[0], name, l), StringComparison.Ordinal)); }),
        "count" => new(name, (a, _, l) => { Arity(name, a, 1, 1, l); var sub = Str(a[0], name, l); return sub.Length == 0 ? CodePoints.Count(s) + 1L : (long)((s.Length - s.Replace(sub, "").Length) / sub.Length); }),
        "join" => new(name, (a, _, l) => { Arity(name, a, 1, 1, l); return string.Join(s, PyOps.Iterate(a[0], l).Select(x => x is string xs ? xs : throw JinjaError.At(l, $"sequence item: expected str instance, {PyOps.TypeName(x)} found"))); }),
        "removeprefix" => new(name, (a, _, l) => { var p = Str(a[0], name, l); return s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s; }),
        "removesuffix" => new(name, (a, _, l) => { var p = Str(a[0], name, l); return p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s; }),
        "zfill" => new(name, (a, _, l) =>
        {
            Arity(name, a, 1, 1, l);
            int width = (int)(a[0] as long? ?? 0), pad = width - CodePoints.Count(s);
            if (pad <= 0) return s;
            int sign = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
            return s[..sign] + new string('0', pad) + s[sign..];
        }),
        "ljust" or "rjust" or "center" => new(name, (a, _, l) =>
        {
            Arity(name, a, 1, 2, l);
            int width = (int)(a[0] as long? ?? 0), pad = width - CodePoints.Count(s);
            string fill = a.Count > 1 ? Str(a[1], name, l) : " ";
            if (pad <= 0) return s;
            // CPython's center puts the odd extra space on the left when the width is odd.
            int left = name == "rjust" ? pad : name == "ljust" ? 0 : pad / 2 + (pad & width & 1);
            return string.Concat(Enumerable.Repeat(fill, left)) + s + string.Concat(Enumerable.Repeat(fill, pad - left));
        }),
        "isdigit" => new(name, (_, _, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => new(name, (_, _, _) => s.Length > 0 && s.All(char.IsLetter)),
        "isalnum" => new(name, (_, _, _) => s.Length > 0 && s.All(char.IsLetterOrDigit)),
        "isspace" => new(name, (_, _, _) => s.Length > 0 && s.All(Lexer.IsPySpace)),
        "islower" => new(name, (_, _, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper)),
        "isupper" => new(name, (_, _, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower)),
        _ => null,
    };

    internal static void Arity(string name, List<object?> a, int min, int max, int line)
    {
        if (a.Count < min || a.Count > max)
            throw JinjaError.At(line, $"{name}() takes {(min == max ? $"{min}" : $"{min} to {max}")} argument(s) ({a.Count} given)");
    }

    static string Str(object? v, string name, int line) =>
        v as string ?? throw JinjaError.At(line, $"{name}() argument must be str, not {PyOps.TypeName(v)}");

    static int CodeIndex(string s, int utf16) => utf16 < 0 ? -1 : CodePoints.Count(s[..utf16]);

    static object? Affix(string s, List<object?> a, int line, string name, Func<string, string, bool> test)
    {
        Arity(name, a, 1, 1, line);
        if (a[0] is string p) return test(s, p);
        if (PyOps.AsSequence(a[0]) is { } options) return options.Any(o => test(s, Str(o, name, line)));
        throw JinjaError.At(line, $"{name} first arg must be str or a tuple of str, not {PyOps.TypeName(a[0])}");
    }

    internal static string Strip(string s, List<object?> a, int line, string name, bool left, bool right)
    {
        Arity(name, a, 0, 1, line);
        char[] chars = a.Count == 0 || a[0] == null ? Lexer.PyWhitespace : Str(a[0], name, line).ToCharArray();
        if (left && right) return s.Trim(chars);
        return left ? s.TrimStart(chars) : s.TrimEnd(chars);
    }

    static List<object?> Split(string s, List<object?> a, Dictionary<string, object?> kw, int line, bool fromRight)
    {
        object? sepArg = a.Count > 0 ? a[0] : kw.GetValueOrDefault("sep");
        object? maxArg = a.Count > 1 ? a[1] : kw.GetValueOrDefault("maxsplit");
        long max = maxArg is long m ? m : -1;
        if (sepArg == null)
        {
            // No separator: split on runs of whitespace, dropping empty pieces.
            var words = s.Split(Lexer.PyWhitespace, StringSplitOptions.RemoveEmptyEntries).ToList();
            if (max >= 0 && words.Count > max)
            {
                // Python keeps the remainder after maxsplit as is, minus the whitespace next to the last split.
                var trimmed = fromRight ? s.TrimEnd(Lexer.PyWhitespace) : s.TrimStart(Lexer.PyWhitespace);
                var parts = new List<object?>();
                string rest = trimmed;
                for (int i = 0; i < max; i++)
                {
                    if (fromRight) { int k = rest.LastIndexOfAny(Lexer.PyWhitespace); parts.Insert(0, rest[(k + 1)..]); rest = rest[..k].TrimEnd(Lexer.PyWhitespace); }
                    else { int k = rest.IndexOfAny(Lexer.PyWhitespace); parts.Add(rest[..k]); rest = rest[k..].TrimStart(Lexer.PyWhitespace); }
                }
                if (fromRight) parts.Insert(0, rest); else parts.Add(rest);
                return parts;
            }
            return words.Cast<object?>().ToList();
        }
        string sep = Str(sepArg, "split", line);
        if (sep.Length == 0) throw JinjaError.At(line, "empty separator");
        var all = s.Split(sep).ToList();
        if (max < 0 || all.Count <= max + 1) return all.Cast<object?>().ToList();
        if (fromRight)
        {
            int keep = all.Count - (int)max;
            return new List<object?> { string.Join(sep, all.Take(keep)) }.Concat(all.Skip(keep).Cast<object?>()).ToList();
        }
        return all.Take((int)max).Cast<object?>().Append(string.Join(sep, all.Skip((int)max))).ToList();
    }

    static string Replace(string s, string old, string neu, long count)
    {
        if (count < 0) return old.Length == 0 ? Interleave(s, neu) : s.Replace(old, neu, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int k = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (k < 0 || old.Length == 0) break;
            sb.Append(s, pos, k - pos).Append(neu);
            pos = k + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    static List<object?> SplitLines(string s)
    {
        var r = new List<object?>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\n' && s[i] != '\r') continue;
            r.Add(s[start..i]);
            if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < s.Length) r.Add(s[start..]);
        return r;
    }

    static string Interleave(string s, string neu) => neu + string.Concat(CodePoints.Split(s).Select(c => c + neu));

    internal static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (var c in s)
        {
            sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevCased = char.IsLetter(c);
        }
        return sb.ToString();
    }
}
