using R1Sharp.Code;
using R1Sharp.Training;

namespace R1Sharp.Rewards;

/// <summary>The built-in rewards by the names a recipe's reward_funcs uses, weighted by reward_weights.</summary>
/// <remarks>
/// accuracy: 1 when the verifier accepts the answer, else 0. format: 1 for &lt;think&gt;…&lt;/think&gt;&lt;answer&gt;…&lt;/answer&gt;.
/// overlong: DAPO's soft length penalty (max_completion_length, overlong_buffer_len). language_consistency: the share of
/// the chain of thought's words in language_target (DeepSeek-R1 §2.3.2). repetition_penalty: (1 − distinct/total
/// word n-grams) × repetition_max_penalty, n = repetition_n_grams (open-r1). code_accuracy, code_pass_rate, code_format:
/// tests run in a sandbox (<see cref="CodeRewards"/>; code_provider, sandbox_* keys), the reference being the tests as JSON.
/// </remarks>
public static class RewardRegistry
{
    public static readonly string[] Names = ["accuracy", "format", "overlong", "language_consistency", "repetition_penalty", "code_accuracy", "code_pass_rate", "code_format"];

    /// <param name="equal">the accuracy comparison; the math verifier (MathVerifier) when null</param>
    /// <param name="countTokens">completion length in tokens, for the overlong penalty</param>
    /// <param name="code">where code rewards run their programs; built from the recipe's code_provider and sandbox_* keys
    /// when null and a code reward is named</param>
    public static List<RewardFunction> Build(GrpoConfig c, Func<string, string, bool>? equal = null, Func<string, int>? countTokens = null, ICodeExecutor? code = null)
    {
        var list = new List<RewardFunction>();
        ICodeExecutor Code() => code ??= CodeExecutors.Create(CodeExecutors.FromRecipe(c));
        for (int i = 0; i < c.RewardFuncs.Count; i++)
        {
            double w = c.RewardWeights?[i] ?? 1.0;
            list.Add(c.RewardFuncs[i] switch
            {
                "accuracy" => AccuracyReward.Create(equal, w),
                "format" => FormatReward.Create(w),
                "overlong" => OverlongReward.Create(countTokens ?? (s => s.Length), c.MaxCompletionLength, c.OverlongBufferLen, w),
                "language_consistency" => LanguageConsistencyReward.Create(c.LanguageTarget, w),
                "repetition_penalty" => RepetitionPenaltyReward.Create(c.RepetitionNGrams, c.RepetitionMaxPenalty, w),
                "code_accuracy" => CodeRewards.Accuracy(Code(), w),
                "code_pass_rate" => CodeRewards.PassRate(Code(), w),
                "code_format" => CodeRewards.Format(c.CodeLanguage, w),
                var name => throw new R1SharpException($"reward \"{name}\" is unknown (built in: {string.Join(", ", Names)})"),
            });
        }
        return list;
    }
}
