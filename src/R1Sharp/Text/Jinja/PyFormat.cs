using System.Globalization;
using System.Text;

namespace R1Sharp.Text.Jinja;

/// <summary>Python's str(), repr() and json.dumps() text for template values, so output matches jinja2 byte for byte.</summary>
internal static class PyFormat
{
    /// <summary>str(v): what {{ v }} prints.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StringRepr(s),
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        object?[] t => t.Length == 1 ? "(" + Repr(t[0]) + ",)" : "(" + string.Join(", ", t.Select(Repr)) + ")",
        Dictionary<object, object?> d => "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}",
        Namespace => "<Namespace>",
        Callable c => $"<function {c.Name}>",
        _ => v.ToString() ?? "",
    };

    // Python picks single quotes unless the text has a ' and no ".
    static string StringRepr(string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(q);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == q) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2"));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(q).ToString();
    }

    /// <summary>float.__repr__: shortest round-trip digits, exponent form below 1e-4 or from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // .NET's "R" gives the shortest round-trip digits, as Python does; only the layout differs.
        string shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var (digits, exp) = Decompose(shortest);
        string sign = d < 0 ? "-" : "";
        if (exp < -4 || exp >= 16)
        {
            string mant = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            return sign + mant + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }
        if (exp < 0) return sign + "0." + new string('0', -exp - 1) + digits;
        if (digits.Length <= exp + 1) return sign + digits + new string('0', exp + 1 - digits.Length) + ".0";
        return sign + digits[..(exp + 1)] + "." + digits[(exp + 1)..];
    }

    // "1.5E-05" or "123.45" -> significant digits "15" / "12345" and the decimal exponent of the first digit.
    static (string Digits, int Exp) Decompose(string s)
    {
        int exp = 0;
        int e = s.IndexOfAny(['E', 'e']);
        if (e >= 0) { exp = int.Parse(s[(e + 1)..], CultureInfo.InvariantCulture); s = s[..e]; }
        int dot = s.IndexOf('.');
        string intPart = dot < 0 ? s : s[..dot], frac = dot < 0 ? "" : s[(dot + 1)..];
        string all = intPart + frac;
        int lead = 0;
        while (lead < all.Length - 1 && all[lead] == '0') lead++;
        string digits = all[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        return (digits, exp + intPart.Length - 1 - lead);
    }

    /// <summary>json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson filter calls it.</summary>
    public static string ToJson(object? v, int? indent, bool ensureAscii, bool sortKeys, (string Item, string Key)? separators, int line)
    {
        var seps = separators ?? (indent == null ? (", ", ": ") : (",", ": "));
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0, ensureAscii, sortKeys, seps, line);
        return sb.ToString();
    }

    static void WriteJson(StringBuilder sb, object? v, int? indent, int depth, bool ascii, bool sortKeys, (string Item, string Key) seps, int line)
    {
        switch (v)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : FloatRepr(d));
                return;
            case string s: JsonString(sb, s, ascii); return;
            case Dictionary<object, object?> dict:
                var pairs = dict.Select(kv => (Key: JsonKey(kv.Key, line), kv.Value)).ToList();
                if (sortKeys) pairs = pairs.OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
                WriteContainer(sb, '{', '}', pairs.Count, indent, depth, seps, i =>
                {
                    JsonString(sb, pairs[i].Key, ascii);
                    sb.Append(seps.Key);
                    WriteJson(sb, pairs[i].Value, indent, depth + 1, ascii, sortKeys, seps, line);
                });
                return;
        }
        if (PyOps.AsSequence(v) is { } seq)
        {
            WriteContainer(sb, '[', ']', seq.Count, indent, depth, seps, i => WriteJson(sb, seq[i], indent, depth + 1, ascii, sortKeys, seps, line));
            return;
        }
        throw JinjaError.At(line, $"tojson: Object of type {PyOps.TypeName(v)} is not JSON serializable");
    }

    static void WriteContainer(StringBuilder sb, char open, char close, int count, int? indent, int depth, (string Item, string Key) seps, Action<int> item)
    {
        sb.Append(open);
        if (count == 0) { sb.Append(close); return; }
        for (int i = 0; i < count; i++)
        {
            if (i > 0) sb.Append(seps.Item);
            if (indent != null) sb.Append('\n').Append(' ', indent.Value * (depth + 1));
            item(i);
        }
        if (indent != null) sb.Append('\n').Append(' ', indent.Value * depth);
        sb.Append(close);
    }

    // json.dumps turns int/float/bool/None keys into strings.
    static string JsonKey(object key, int line) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long or double => Str(key),
        _ => throw JinjaError.At(line, $"tojson: keys must be str, int, float, bool or None, not {PyOps.TypeName(key)}"),
    };

    static void JsonString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7f)) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
