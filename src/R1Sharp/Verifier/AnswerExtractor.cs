using System.Text.RegularExpressions;

namespace R1Sharp.Verifier;

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
        // The answer sits at the end of a completion; reading only the tail bounds the time spent on
        // pathological 100k-character inputs.
        if (text.Length > Window) text = text[^Window..];
        if (text.Contains("\\\\")) text = DoubleBackslash().Replace(text, "\\");
        int fa = text.LastIndexOf("final answer", StringComparison.OrdinalIgnoreCase);
        var boxed = Boxed(text, out int boxedEnd);
        // A "final answer" sentence after the last box restates the answer and wins over earlier boxes.
        if (fa >= 0 && fa > boxedEnd && FinalAnswer(text[(fa + 12)..]) is { } f) return f;
        if (boxed is not null) return boxed;
        // GSM8K writes its reference as "… #### 18".
        int hashes = text.LastIndexOf("####", StringComparison.Ordinal);
        if (hashes >= 0 && text[(hashes + 4)..].Trim() is { Length: > 0 } afterHashes) return afterHashes.Split('\n')[0].Trim();
        int ans = text.LastIndexOf("<answer>", StringComparison.OrdinalIgnoreCase);
        if (ans >= 0)
        {
            int end = text.IndexOf("</answer>", ans, StringComparison.OrdinalIgnoreCase);
            var inner = end < 0 ? text[(ans + 8)..] : text[(ans + 8)..end];
            return ExtractCore(inner, numbers) ?? inner.Trim();
        }
        if (!numbers) return MathSpans(text, out _);
        if (ScanMath(text).Count == 0 && LooksLikeAnswer(text)) return text.Trim();
        return LatestOf(text);
    }

    /// <summary>In running text: the last math span, unless a bare number comes after it
    /// ("… the volume of $ABCD$ is 120.").</summary>
    static string? LatestOf(string text)
    {
        var math = MathSpans(text, out int mathEnd);
        var number = LastNumber(text, out int numberStart);
        if (number is not null && (math is null || numberStart >= mathEnd)) return number;
        if (math is null && Choice().Matches(text) is { Count: > 0 } choices) return choices[^1].Groups[1].Success ? choices[^1].Groups[1].Value : choices[^1].Groups[2].Value;
        return math;
    }

    /// <summary>How many trailing characters of a completion are searched for the answer.</summary>
    public const int Window = 6000;

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

    /// <summary>"", ",", "and", "\quad \text{and} \quad", "papers and", "for part (a) and": at most four
    /// words, and a joining word or sign among them when there are any.</summary>
    static bool IsConnector(string gap)
    {
        if (gap.Length > 80 || gap.Contains("\n\n")) return false;
        var words = Letters().Matches(LatexBits().Replace(gap, " "));
        if (words.Count == 0) return true;
        return words.Count <= 4 && (gap.Contains(',') || gap.Contains(';') || words.Any(w => w.Value is "and" or "or"));
    }

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

    static string? MathSpans(string text, out int end)
    {
        end = -1;
        if (text.IndexOf('$') < 0 && text.IndexOf("\\[", StringComparison.Ordinal) < 0 && text.IndexOf("\\(", StringComparison.Ordinal) < 0) return null;
        var spans = ScanMath(text);
        if (spans.Count == 0) return null;
        end = spans[^1].End;
        return JoinTrailing(text, spans);
    }

    /// <summary>Finds $$…$$, \[…\], \(…\) and $…$ spans left to right in linear time (a regular
    /// expression with lazy quantifiers is quadratic on adversarial text with many unclosed openers).
    /// \( and inline $ may not span lines; \$ is an escaped dollar, not a delimiter.</summary>
    static List<(int Start, int End, string Content)> ScanMath(string text)
    {
        var spans = new List<(int, int, string)>();
        bool noDouble = false, noBracket = false, noParen = false;
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            int close = -1, open = 0, shut = 0;
            if (c == '$' && i + 1 < text.Length && text[i + 1] == '$' && !noDouble)
            {
                close = text.IndexOf("$$", i + 2, StringComparison.Ordinal);
                if (close < 0) noDouble = true;
                open = 2; shut = 2;
            }
            else if (c == '\\' && i + 1 < text.Length && text[i + 1] == '[' && !noBracket)
            {
                close = text.IndexOf("\\]", i + 2, StringComparison.Ordinal);
                if (close < 0) noBracket = true;
                open = 2; shut = 2;
            }
            else if (c == '\\' && i + 1 < text.Length && text[i + 1] == '(' && !noParen)
            {
                close = text.IndexOf("\\)", i + 2, StringComparison.Ordinal);
                if (close < 0) noParen = true;
                else if (text.IndexOf('\n', i + 2, close - i - 2) >= 0) close = -2;
                open = 2; shut = 2;
            }
            else if (c == '\\') { i += 2; continue; }
            else if (c == '$')
            {
                int j = i + 1;
                while (j < text.Length && text[j] != '$' && text[j] != '\n') j += text[j] == '\\' ? 2 : 1;
                close = j < text.Length && text[j] == '$' ? j : -2;
                open = 1; shut = 1;
                if (close == -2) { i = j; continue; }
            }
            else { i++; continue; }
            if (close < 0) { i += open; continue; }
            var content = text[(i + open)..close];
            if (!string.IsNullOrWhiteSpace(content)) spans.Add((i, close + shut, content));
            i = close + shut;
        }
        return spans;
    }

    [GeneratedRegex(@"\\(?:text|mbox|textbf|mathrm|begin|end)\{[^{}]*\}|\\[a-zA-Z]+")]
    private static partial Regex Commands();

    static readonly HashSet<string> Harmless = ["percent", "percentage", "pct", "and", "or", "cm", "m", "km", "units", "degrees"];

    /// <summary>A text without sentence words is an answer on its own ("7,425,000", "28 percent", "1+1+…+1" of any
    /// length up to what the verifier parses); only prose falls back to its last number.</summary>
    internal static bool LooksLikeAnswer(string text)
    {
        if (text.Length > MaxPlainAnswer) return false;
        var bare = Commands().Replace(text, " ");
        int words = 0;
        foreach (Match w in Word().Matches(bare)) if (w.Length >= 3 && !Harmless.Contains(w.Value.ToLowerInvariant())) words++;
        // A single short token ("Evelyn", "7,425,000") is an answer; more than that with words is a sentence.
        return words == 0 || (text.Length <= 300 && !text.Trim().Any(char.IsWhiteSpace));
    }

    /// <summary>The longest plain text taken whole as an answer (the verifier parses at most this much).</summary>
    internal const int MaxPlainAnswer = 4000;

    [GeneratedRegex(@"(?<![a-zA-Z\d.,/])-?\d+/\d+(?![\d/])|(?<![a-zA-Z\d.,])-?\d+,\d{2}(?![\d,])|(?<![a-zA-Z\d.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![a-zA-Z\d])-?\.\d+")]
    private static partial Regex Number();

    /// <summary>A multiple-choice letter in running text: "(C)" or "answer is C".</summary>
    [GeneratedRegex(@"\(([A-E])\)|answer is:?\s*([A-E])\b")]
    private static partial Regex Choice();

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
