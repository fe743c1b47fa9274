using System.Text.RegularExpressions;

namespace R1Sharp.Math;

/// <summary>Finds the final answer in a completion. In order of preference: the last \boxed{…} or
/// \fbox{…} (with neighbouring boxes joined when only a few words such as "and" separate them:
/// "\boxed{1} and \boxed{2}" answers "1,2"); the text after "final answer"; the last LaTeX math
/// ($…$, $$…$$, \(…\), \[…\]; inline math may not span lines); &lt;answer&gt;…&lt;/answer&gt;; the whole text
/// when it reads like an answer rather than a sentence; else the last number. Reasoning inside
/// &lt;think&gt;…&lt;/think&gt; is ignored.</summary>
public static partial class AnswerExtractor
{
    public static string? Extract(string completion)
    {
        try { return ExtractCore(completion); }
        catch (Exception) { return null; }
    }

    /// <param name="numbers">Whether bare numbers and plain text may be the answer (Math-Verify's
    /// ExprExtractionConfig); without it only boxed, final-answer and LaTeX math count.</param>
    internal static string? ExtractCore(string text, bool numbers = true)
    {
        if (text is null) return null;
        text = StripThink(text);
        if (text.Contains("\\\\")) text = DoubleBackslash().Replace(text, "\\");
        int fa = text.LastIndexOf("final answer", StringComparison.OrdinalIgnoreCase);
        var boxed = Boxed(text, out int boxedEnd);
        // A "final answer" sentence after the last box restates the answer and wins over earlier boxes.
        if (fa >= 0 && fa > boxedEnd && FinalAnswer(text[(fa + 12)..]) is { } f) return f;
        if (boxed is not null) return boxed;
        int ans = text.LastIndexOf("<answer>", StringComparison.OrdinalIgnoreCase);
        if (ans >= 0)
        {
            int end = text.IndexOf("</answer>", ans, StringComparison.OrdinalIgnoreCase);
            var inner = end < 0 ? text[(ans + 8)..] : text[(ans + 8)..end];
            return ExtractCore(inner, numbers) ?? inner.Trim();
        }
        if (!numbers) return MathSpans(text, out _);
        if (LooksLikeAnswer(text)) return text.Trim();
        return LatestOf(text);
    }

    /// <summary>In running text: the last math span, unless a bare number comes after it
    /// ("… the volume of $ABCD$ is 120.").</summary>
    static string? LatestOf(string text)
    {
        var math = MathSpans(text, out int mathEnd);
        var number = LastNumber(text, out int numberStart);
        if (number is not null && (math is null || numberStart >= mathEnd)) return number;
        return math;
    }

    static string StripThink(string text)
    {
        int close = text.LastIndexOf("</think>", StringComparison.Ordinal);
        return close >= 0 ? text[(close + 8)..] : text;
    }

    /// <summary>"\\boxed" written with a doubled backslash (escaped twice) means \boxed.</summary>
    [GeneratedRegex(@"(?<!\\)\\\\(?=[a-zA-Z])")]
    private static partial Regex DoubleBackslash();

    static string? Boxed(string text, out int end)
    {
        end = -1;
        var spans = new List<(int Start, int End, string Content)>();
        int i = 0;
        while (true)
        {
            int b = text.IndexOf("\\boxed", i, StringComparison.Ordinal);
            int f = text.IndexOf("\\fbox", i, StringComparison.Ordinal);
            int at = b < 0 ? f : f < 0 ? b : System.Math.Min(b, f);
            if (at < 0) break;
            int j = at + (at == b ? 6 : 5);
            while (j < text.Length && text[j] == ' ') j++;
            if (j < text.Length && text[j] == '{')
            {
                var content = Lexer.ReadGroup(text, ref j);
                spans.Add((at, j, content));
                i = j;
            }
            else i = j;
        }
        if (spans.Count == 0) return null;
        end = spans[^1].End;
        return JoinTrailing(text, spans);
    }

    /// <summary>Joins the last span with earlier ones separated only by a short connector.</summary>
    static string JoinTrailing(string text, List<(int Start, int End, string Content)> spans)
    {
        int first = spans.Count - 1;
        while (first > 0 && IsConnector(text[spans[first - 1].End..spans[first].Start])) first--;
        return string.Join(",", spans.Skip(first).Select(s => s.Content));
    }

    [GeneratedRegex(@"[a-zA-Z]{2,}")]
    private static partial Regex Word();

    [GeneratedRegex(@"\\[a-zA-Z]+|[$(){}\[\]\\]")]
    private static partial Regex LatexBits();

    [GeneratedRegex(@"[a-zA-Z]+")]
    private static partial Regex Letters();

    /// <summary>"and", ",", "\quad \text{and} \quad", "for part (a) and": at most four words.</summary>
    static bool IsConnector(string gap) =>
        gap.Length <= 80 && !gap.Contains("\n\n") && Letters().Matches(LatexBits().Replace(gap, " ")).Count <= 4;

    static string? FinalAnswer(string tail)
    {
        foreach (var stop in new[] { "I hope", "<|im_start|>", "<|im_end|>", "\n\n" })
        {
            int s = tail.IndexOf(stop, StringComparison.Ordinal);
            if (s > 0) tail = tail[..s];
        }
        var math = MathSpans(tail, out int mathEnd);
        int isAt = tail.LastIndexOf(" is ", StringComparison.Ordinal);
        if (math is not null && isAt < mathEnd) return math;
        var rest = (isAt >= 0 ? tail[(isAt + 4)..] : tail.TrimStart(':', ' ')).Trim().TrimEnd('.', ' ');
        if (rest.Length > 0 && LooksLikeAnswer(rest)) return rest;
        return LastNumber(tail, out _) ?? math;
    }

    [GeneratedRegex(@"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$((?:\\\$|[^$\n])+?)(?<!\\)\$", RegexOptions.Singleline)]
    private static partial Regex MathSpan();

    static string? MathSpans(string text, out int end)
    {
        end = -1;
        if (text.IndexOf('$') < 0 && text.IndexOf("\\[", StringComparison.Ordinal) < 0 && text.IndexOf("\\(", StringComparison.Ordinal) < 0) return null;
        var spans = new List<(int Start, int End, string Content)>();
        foreach (Match m in MathSpan().Matches(text))
        {
            var g = m.Groups[1].Success ? m.Groups[1] : m.Groups[2].Success ? m.Groups[2] : m.Groups[3].Success ? m.Groups[3] : m.Groups[4];
            // \( and inline $ do not span lines; display math may.
            if ((m.Groups[3].Success || m.Groups[4].Success) && g.Value.Contains('\n')) continue;
            if (string.IsNullOrWhiteSpace(g.Value)) continue;
            spans.Add((m.Index, m.Index + m.Length, g.Value));
        }
        if (spans.Count == 0) return null;
        end = spans[^1].End;
        return JoinTrailing(text, spans);
    }

    [GeneratedRegex(@"\\(?:text|mbox|textbf|mathrm|begin|end)\{[^{}]*\}|\\[a-zA-Z]+")]
    private static partial Regex Commands();

    static readonly HashSet<string> Harmless = ["percent", "percentage", "pct", "and", "or", "cm", "m", "km", "units", "degrees"];

    /// <summary>A short text without sentence words is an answer on its own ("7,425,000", "28 percent").</summary>
    internal static bool LooksLikeAnswer(string text)
    {
        if (text.Length > 300) return false;
        var bare = Commands().Replace(text, " ");
        int words = 0;
        foreach (Match w in Word().Matches(bare)) if (w.Length >= 3 && !Harmless.Contains(w.Value.ToLowerInvariant())) words++;
        return words == 0;
    }

    [GeneratedRegex(@"(?<![a-zA-Z\d.,/])-?\d+/\d+(?![\d/])|(?<![a-zA-Z\d.,])-?\d+,\d{2}(?![\d,])|(?<![a-zA-Z\d.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![a-zA-Z\d])-?\.\d+")]
    private static partial Regex Number();

    [GeneratedRegex(@"^-?\d+,\d{2}$")]
    private static partial Regex DecimalCommaNumber();

    /// <summary>The last number not glued to a word ("AZYUK2A" has none), for GSM8K-style answers.</summary>
    internal static string? LastNumber(string text) => LastNumber(text, out _);

    internal static string? LastNumber(string text, out int start)
    {
        start = -1;
        Match? last = null;
        foreach (Match m in Number().Matches(text))
        {
            int end = m.Index + m.Length;
            if (end < text.Length && char.IsAsciiLetter(text[end]) && !(end + 1 < text.Length && !char.IsAsciiLetter(text[end + 1]))) continue;
            last = m;
        }
        if (last is null) return null;
        start = last.Index;
        // "2,74": a comma followed by exactly two digits in running text is a decimal comma.
        return DecimalCommaNumber().IsMatch(last.Value) ? last.Value.Replace(',', '.') : last.Value;
    }
}
