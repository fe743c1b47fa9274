using System.Globalization;
using System.Text.RegularExpressions;

namespace R1Sharp.Rewards;

/// <summary>
/// R1's accuracy reward (DeepSeek-R1 §2.2.2): 1 when the final answer — inside &lt;answer&gt;…&lt;/answer&gt;, or the
/// last \boxed{…} — equals the reference, else 0. The comparison is a parameter; by default it is the project's math
/// verifier (<see cref="R1Sharp.Verifier.MathVerifier"/>), with <see cref="ExactNumeric"/> available for plain numbers.
/// </summary>
public static partial class AccuracyReward
{
    public static RewardFunction Create(Func<string, string, bool>? equal = null, double weight = 1.0)
    {
        var eq = equal ?? ((gold, pred) => R1Sharp.Verifier.MathVerifier.Verify(gold, pred).Equal);
        return new RewardFunction("accuracy", (_, completion, reference) =>
            ExtractAnswer(completion) is { } answer && eq(reference, answer) ? 1.0 : 0.0, weight);
    }

    /// <summary>The last &lt;answer&gt; block's content, else the last \boxed{…} (braces balanced), else null.</summary>
    public static string? ExtractAnswer(string completion)
    {
        var tags = AnswerTag().Matches(completion);
        if (tags.Count > 0) return tags[^1].Groups[1].Value.Trim();
        int at = completion.LastIndexOf("\\boxed{", StringComparison.Ordinal);
        if (at < 0) return null;
        int start = at + "\\boxed{".Length, depth = 1;
        for (int i = start; i < completion.Length; i++)
        {
            if (completion[i] == '{') depth++;
            else if (completion[i] == '}' && --depth == 0) return completion[start..i].Trim();
        }
        return null;
    }

    /// <summary>Numbers compare by value ("1,000" = "1000.0"); anything else must match exactly after trimming.</summary>
    public static bool ExactNumeric(string gold, string predicted)
    {
        static string Clean(string s) => s.Trim().Replace(",", "").TrimStart('$').TrimEnd('.');
        string g = Clean(gold), p = Clean(predicted);
        const NumberStyles style = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint;
        if (decimal.TryParse(g, style, CultureInfo.InvariantCulture, out var gv) &&
            decimal.TryParse(p, style, CultureInfo.InvariantCulture, out var pv))
            return gv == pv;
        return g == p;
    }

    [GeneratedRegex(@"<answer>(.*?)</answer>", RegexOptions.Singleline)]
    private static partial Regex AnswerTag();
}
