using R1Sharp.Eval;
using R1Sharp.Rewards;
using R1Sharp.Text;

namespace R1Sharp.Training.Sampling;

/// <summary>
/// DeepSeek-R1's rejection-sampling filters (§2.3.3): keep a sample only when it is correct and readable — "we have
/// filtered out chain-of-thought with mixed languages, long paragraphs, and code blocks" — here: the verifier's
/// verdict, a finished completion (not cut at the token limit), a well-formed think block, one language in the chain
/// of thought, no degenerate repetition, and length limits. A plain function of the graded sample.
/// </summary>
public sealed record ReadabilityFilter
{
    /// <summary>Language of the chain of thought (LanguageConsistencyReward's codes).</summary>
    public string Language { get; init; } = "en";
    /// <summary>Least share of the CoT's words in <see cref="Language"/>.</summary>
    public double MinLanguageConsistency { get; init; } = 0.95;
    /// <summary>n of the word n-grams of the repetition rate.</summary>
    public int RepetitionNGrams { get; init; } = 3;
    /// <summary>Highest repetition rate (1 − distinct/total n-grams) of the whole completion.</summary>
    public double MaxRepetitionRate { get; init; } = 0.2;
    /// <summary>Completion tokens at most (0: no limit beyond the generation limit).</summary>
    public int MaxCompletionTokens { get; init; }
    /// <summary>Completion tokens at least.</summary>
    public int MinCompletionTokens { get; init; } = 1;

    /// <summary>Refuses thresholds no sample can be judged by (a NaN share rejects everything, 2 accepts nothing),
    /// naming the option that set each (r1 sample's --min-language-consistency, …).</summary>
    public void Validate()
    {
        if (!(MinLanguageConsistency >= 0 && MinLanguageConsistency <= 1))
            throw new R1SharpException($"--min-language-consistency must be a share in [0, 1], got {MinLanguageConsistency}");
        if (!(MaxRepetitionRate >= 0 && MaxRepetitionRate <= 1))
            throw new R1SharpException($"--max-repetition must be a rate in [0, 1], got {MaxRepetitionRate}");
        if (RepetitionNGrams < 1) throw new R1SharpException($"--repetition-n-grams must be ≥ 1, got {RepetitionNGrams}");
        if (MaxCompletionTokens < 0) throw new R1SharpException($"--max-completion-tokens must be ≥ 0 (0: no limit), got {MaxCompletionTokens}");
        if (MinCompletionTokens < 0) throw new R1SharpException($"the least completion length must be ≥ 0, got {MinCompletionTokens}");
    }

    /// <summary>"accepted", or the first reason to reject, in the order listed in the class summary.</summary>
    public string Judge(SampleRecord s)
    {
        if (!s.Correct) return "incorrect";
        if (s.FinishReason == "length") return "truncated";
        if (!WellFormedThink(s.Reasoning, s.Answer)) return "malformed_think";
        if (LanguageScore(s) < MinLanguageConsistency) return "mixed_language";
        if (RepetitionPenaltyReward.RepetitionRate(Completion(s), RepetitionNGrams) > MaxRepetitionRate) return "repetitive";
        if (MaxCompletionTokens > 0 && s.CompletionTokens > MaxCompletionTokens) return "too_long";
        if (s.CompletionTokens < MinCompletionTokens) return "too_short";
        return "accepted";
    }

    public double LanguageScore(SampleRecord s) => LanguageConsistencyReward.Score(
        s.Reasoning is null ? "" : ReasoningSplit.Open + s.Reasoning + ReasoningSplit.Close, Language);

    /// <summary>One reasoning part and one answer part, both non-empty, neither holding a think tag of its own.</summary>
    public static bool WellFormedThink(string? reasoning, string answer) =>
        !string.IsNullOrWhiteSpace(reasoning) && !string.IsNullOrWhiteSpace(answer)
        && !HasTag(reasoning) && !HasTag(answer);

    static bool HasTag(string s) => s.Contains(ReasoningSplit.Open, StringComparison.Ordinal) || s.Contains(ReasoningSplit.Close, StringComparison.Ordinal);

    /// <summary>The reply as a reasoning model writes it: "&lt;think&gt;\nreasoning\n&lt;/think&gt;\n\nanswer".</summary>
    public static string Completion(SampleRecord s) =>
        s.Reasoning is null ? s.Answer : $"{ReasoningSplit.Open}\n{s.Reasoning.Trim('\n')}\n{ReasoningSplit.Close}\n\n{s.Answer.TrimStart('\n')}";
}
