using R1Sharp.Training;

namespace R1Sharp.Rewards;

/// <summary>The built-in rewards by the names a recipe's reward_funcs uses, weighted by reward_weights.</summary>
public static class RewardRegistry
{
    public static readonly string[] Names = ["accuracy", "format", "overlong"];

    /// <param name="equal">the accuracy comparison; the math verifier (MathVerifier) when null</param>
    /// <param name="countTokens">completion length in tokens, for the overlong penalty</param>
    public static List<RewardFunction> Build(GrpoConfig c, Func<string, string, bool>? equal = null, Func<string, int>? countTokens = null)
    {
        var list = new List<RewardFunction>();
        for (int i = 0; i < c.RewardFuncs.Count; i++)
        {
            double w = c.RewardWeights?[i] ?? 1.0;
            list.Add(c.RewardFuncs[i] switch
            {
                "accuracy" => AccuracyReward.Create(equal, w),
                "format" => FormatReward.Create(w),
                "overlong" => OverlongReward.Create(countTokens ?? (s => s.Length), c.MaxCompletionLength, c.OverlongBufferLen, w),
                var name => throw new R1SharpException($"reward \"{name}\" is unknown (built in: {string.Join(", ", Names)})"),
            });
        }
        return list;
    }
}
