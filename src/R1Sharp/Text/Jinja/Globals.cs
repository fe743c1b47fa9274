using System.Globalization;
using System.Text;

namespace R1Sharp.Text.Jinja;

/// <summary>Global functions: jinja2's range/dict/namespace and the two transformers adds, raise_exception and strftime_now.</summary>
internal static class Globals
{
    public static void Install(Scope scope)
    {
        scope.Set("range", new Callable("range", Range));
        scope.Set("dict", new Callable("dict", (a, kw, line) =>
        {
            var d = Values.NewDict();
            if (a.Count > 0)
            {
                if (a[0] is Dictionary<object, object?> src) foreach (var kv in src) d[kv.Key] = kv.Value;
                else throw JinjaError.At(line, "dict() with positional arguments other than a dict is not supported");
            }
            foreach (var (k, v) in kw) d[k] = v;
            return d;
        }));
        scope.Set("namespace", new Callable("namespace", (a, kw, line) =>
        {
            var ns = new Namespace();
            foreach (var x in a)
            {
                if (x is not Dictionary<object, object?> d) throw JinjaError.At(line, "namespace() takes only a mapping as positional argument");
                foreach (var kv in d) ns.Attrs[PyFormat.Str(kv.Key)] = kv.Value;
            }
            foreach (var (k, v) in kw) ns.Attrs[k] = v;
            return ns;
        }));
        scope.Set("raise_exception", new Callable("raise_exception", (a, _, line) =>
            throw JinjaError.At(line, "raise_exception: " + (a.Count > 0 ? PyFormat.Str(a[0]) : ""))));
        scope.Set("strftime_now", new Callable("strftime_now", (a, _, line) =>
        {
            if (a.Count != 1 || a[0] is not string fmt) throw JinjaError.At(line, "strftime_now(format) takes one string");
            return Strftime(DateTime.Now, fmt, line);
        }));
    }

    static object? Range(List<object?> a, Dictionary<string, object?> kw, int line)
    {
        if (a.Count is < 1 or > 3 || a.Any(x => x is not long)) throw JinjaError.At(line, "range() takes 1 to 3 integer arguments");
        long start = a.Count > 1 ? (long)a[0]! : 0, stop = a.Count > 1 ? (long)a[1]! : (long)a[0]!, step = a.Count > 2 ? (long)a[2]! : 1;
        if (step == 0) throw JinjaError.At(line, "range() arg 3 must not be zero");
        if (Math.Abs((stop - start) / step) > 100_000) throw JinjaError.At(line, "range too big (the sandbox limit is 100000 items)");
        var r = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) r.Add(i);
        return r;
    }

    /// <summary>The C-library strftime directives templates use (%d %b %Y ...), English names as in the C locale.</summary>
    internal static string Strftime(DateTime t, string fmt, int line)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 == fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            sb.Append(c switch
            {
                'd' => t.ToString("dd", ci), 'm' => t.ToString("MM", ci), 'Y' => t.ToString("yyyy", ci), 'y' => t.ToString("yy", ci),
                'H' => t.ToString("HH", ci), 'I' => t.ToString("hh", ci), 'M' => t.ToString("mm", ci), 'S' => t.ToString("ss", ci),
                'b' => t.ToString("MMM", ci), 'B' => t.ToString("MMMM", ci), 'a' => t.ToString("ddd", ci), 'A' => t.ToString("dddd", ci),
                'p' => t.Hour < 12 ? "AM" : "PM", 'j' => t.DayOfYear.ToString("000", ci), 'e' => t.Day.ToString(ci).PadLeft(2),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", ci), '%' => "%",
                _ => throw JinjaError.At(line, $"strftime_now: directive '%{c}' is not supported"),
            });
        }
        return sb.ToString();
    }
}
