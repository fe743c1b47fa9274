namespace R1Sharp.Rewards;

/// <summary>
/// open-r1's n-gram repetition penalty (rewards.py, get_repetition_penalty_reward; after Yeo et al. 2025, "Demystifying
/// Long Chain-of-Thought Reasoning in LLMs", §4): the completion is lower-cased and split on whitespace; with
/// the n-grams of those words, rate = 1 − distinct / total, and the reward is rate × max_penalty (max_penalty ≤ 0).
/// An empty completion or one of fewer than n words scores 0.
/// </summary>
public static class RepetitionPenaltyReward
{
    public static RewardFunction Create(int ngramSize, double maxPenalty, double weight = 1.0)
    {
        if (ngramSize < 1) throw new R1SharpException($"repetition_n_grams must be ≥ 1, got {ngramSize}");
        if (maxPenalty > 0) throw new R1SharpException($"repetition_max_penalty must be ≤ 0 (a penalty), got {maxPenalty}");
        return new RewardFunction("repetition_penalty", (_, completion, _) => Penalty(completion, ngramSize, maxPenalty), weight);
    }

    public static double Penalty(string completion, int ngramSize, double maxPenalty) => RepetitionRate(completion, ngramSize) * maxPenalty;

    /// <summary>1 − distinct n-grams / all n-grams of the lower-cased whitespace-split words (0 with fewer than n words).</summary>
    public static double RepetitionRate(string text, int ngramSize)
    {
        var words = text.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (words.Length < ngramSize) return 0;
        int total = words.Length - ngramSize + 1;
        var distinct = new HashSet<string>();
        for (int i = 0; i < total; i++) distinct.Add(string.Join('\u0001', words, i, ngramSize));
        return 1 - (double)distinct.Count / total;
    }
}
