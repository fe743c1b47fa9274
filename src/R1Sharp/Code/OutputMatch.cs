using System.Globalization;

namespace R1Sharp.Code;

/// <summary>
/// Whether a program's stdout answers a stdin/stdout test, by LiveCodeBench's rule: both texts trimmed and split into
/// lines, the same number of lines, each pair equal after trimming, or else equal token by token as decimal numbers
/// ("1.50" = "1.5"); anything else is a wrong answer.
/// </summary>
public static class OutputMatch
{
    public static bool Matches(string actual, string expected)
    {
        var a = Lines(actual);
        var e = Lines(expected);
        if (a.Length != e.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] == e[i]) continue;
            var ta = a[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var te = e[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (ta.Length != te.Length) return false;
            for (int j = 0; j < ta.Length; j++)
            {
                if (ta[j] == te[j]) continue;
                if (!decimal.TryParse(ta[j], NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
                    || !decimal.TryParse(te[j], NumberStyles.Float, CultureInfo.InvariantCulture, out var y) || x != y) return false;
            }
        }
        return true;
    }

    static string[] Lines(string s) => s.Replace("\r\n", "\n").Trim().Split('\n').Select(l => l.Trim()).ToArray();
}
