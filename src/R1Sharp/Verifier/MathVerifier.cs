namespace R1Sharp.Verifier;

/// <summary>The outcome of one comparison, with a short reason a person can read.</summary>
public sealed record Verdict(bool Equal, string Reason);

/// <summary>What may count as an answer in a completion (Math-Verify's extraction configs).</summary>
[Flags]
public enum ExtractionTarget
{
    /// <summary>\boxed{}, "final answer is", and LaTeX math ($…$, \[…\]).</summary>
    Latex = 1,
    /// <summary>Also plain text and the last bare number (GSM8K style).</summary>
    Expr = 2,
}

public sealed record VerifyOptions
{
    public ExtractionTarget Extraction { get; init; } = ExtractionTarget.Latex | ExtractionTarget.Expr;

    /// <summary>Decimal places to which values are rounded when either side is a written decimal.</summary>
    public int FloatRounding { get; init; } = 6;

    /// <summary>Time allowed for one verdict; past it the verdict is false with reason "gave up".</summary>
    public TimeSpan Budget { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>When false, free variables may be renamed (f(x) equals f(y)), as Math-Verify's strict=False.</summary>
    public bool Strict { get; init; } = true;

    /// <summary>Lets a gold interval or set accept an equivalent inequality in the prediction
    /// (gold [-2,7] vs "-2 ≤ x ≤ 7"). A gold inequality always accepts the interval.</summary>
    public bool AllowSetRelationComparison { get; init; }

    public static VerifyOptions Default { get; } = new();
}

/// <summary>Decides whether a prediction equals a gold answer. Both may be bare answers or whole
/// completions (the answer is extracted first). Pure and thread-safe; never throws.</summary>
public static class MathVerifier
{
    /// <summary>Longest extracted answer we parse; longer ones are not answers a grader should read.</summary>
    const int MaxAnswerLength = AnswerExtractor.MaxPlainAnswer;

    public static Verdict Verify(string gold, string prediction, VerifyOptions? options = null)
    {
        options ??= VerifyOptions.Default;
        try
        {
            var budget = new Budget(options.Budget);
            bool numbers = options.Extraction.HasFlag(ExtractionTarget.Expr);
            var g = AnswerExtractor.ExtractCore(gold ?? "", numbers) ?? gold?.Trim() ?? "";
            var p = AnswerExtractor.ExtractCore(prediction ?? "", numbers);
            if (p is null) return new Verdict(false, "no answer found in prediction");
            // U+FFFD is what bytes that were not UTF-8 decode to: two different byte strings read alike, so such an
            // answer says nothing that can be compared.
            if (g.Contains('\uFFFD') || p.Contains('\uFFFD'))
                return new Verdict(false, "not comparable: the answer holds bytes that were not valid UTF-8 text (U+FFFD)");
            // Fast path: the same characters (up to surrounding spaces) need no parsing.
            if (g.AsSpan().Trim().SequenceEqual(p.AsSpan().Trim()) && g.Length <= MaxAnswerLength && !string.IsNullOrWhiteSpace(g))
                return new Verdict(true, "identical");
            if (g.Length > MaxAnswerLength || p.Length > MaxAnswerLength) return new Verdict(false, "gave up: answer too long");
            var gn = Normalizer.Normalize(g, IsPlain(gold));
            var pn = Normalizer.Normalize(p, IsPlain(prediction));
            if (gn == pn && gn.Length > 0) return new Verdict(true, "identical after normalisation");
            var gt = TryParse(gn, g, budget, out var gErr);
            if (gt is null) return new Verdict(false, $"could not parse gold: {gErr}");
            var pt = TryParse(pn, prediction ?? "", budget, out var pErr);
            if (pt is null) return new Verdict(false, $"could not parse prediction: {pErr}");
            var cmp = new Comparer(options, budget);
            if (cmp.Equal(gt, pt)) return new Verdict(true, "equivalent");
            if (!options.Strict)
            {
                var map = new Dictionary<string, string>();
                if (cmp.Equal(Shapes.Rename(gt, map), Shapes.Rename(pt, new Dictionary<string, string>()))) return new Verdict(true, "equivalent up to renaming variables");
            }
            return new Verdict(false, "not equivalent");
        }
        catch (GiveUpException e) { return new Verdict(false, "gave up: " + e.Message); }
        catch (Exception e) { return new Verdict(false, "gave up: internal " + e.GetType().Name); }
    }

    static bool IsPlain(string? s) => s is not null && s.IndexOf('$') < 0 && s.IndexOf('\\') < 0;

    /// <summary>Parses the answer; when that fails on a sentence, falls back to its last number.</summary>
    static Node? TryParse(string normalised, string original, Budget budget, out string error)
    {
        error = "";
        try { return Parser.Parse(normalised, budget); }
        catch (GiveUpException e) when (e.Message != "time budget exceeded")
        {
            error = e.Message;
            if (AnswerExtractor.LastNumber(normalised) is { } n && n != normalised)
            {
                try { return Parser.Parse(Normalizer.Normalize(n), budget); } catch (GiveUpException) { }
            }
            return null;
        }
    }
}
