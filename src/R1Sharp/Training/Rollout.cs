using R1Sharp.Rewards;

namespace R1Sharp.Training;

/// <summary>One sampled completion of a GRPO step and everything known about it: its prompt (text and ids) and
/// reference answer, the completion (ids, end token included when it stopped on one; text without it), whether it
/// hit the length budget, the weight version that produced it and where it was generated, and its rewards.</summary>
public sealed record RolloutCompletion(
    string Prompt,
    int[] PromptIds,
    string Reference,
    int[] CompletionIds,
    string Text,
    bool Truncated,
    string WeightVersion,
    string Source)
{
    /// <summary>The weighted sum of the reward functions.</summary>
    public double Reward { get; init; }
    /// <summary>Each reward function's (unweighted) score, by name.</summary>
    public IReadOnlyDictionary<string, double> Rewards { get; init; } = new Dictionary<string, double>();
}

/// <summary>A generation batch: groups of G completions of one prompt each (group g is completions g·G … g·G+G−1).</summary>
public sealed class Rollout(IReadOnlyList<RolloutCompletion> completions, int groupSize)
{
    public IReadOnlyList<RolloutCompletion> Completions { get; } = completions;
    public int GroupSize { get; } = groupSize;
    public int Count => Completions.Count;
    public int Groups => Count / GroupSize;
    public RolloutCompletion this[int i] => Completions[i];

    public IReadOnlyList<double> Rewards => Completions.Select(c => c.Reward).ToArray();

    /// <summary>The reward functions' names, in the order the first completion lists them.</summary>
    public IEnumerable<string> RewardNames => Count == 0 ? [] : Completions[0].Rewards.Keys;

    public IReadOnlyList<RolloutCompletion> Group(int g) => Completions.Skip(g * GroupSize).Take(GroupSize).ToArray();

    /// <summary>The completions with their rewards set from a reward set's scores (row i gets row i's scores).</summary>
    public static IReadOnlyList<RolloutCompletion> Scored(IReadOnlyList<RolloutCompletion> completions, RewardScores scores) =>
        completions.Select((c, i) => c with
        {
            Reward = scores.Total[i],
            Rewards = scores.PerFunction.ToDictionary(kv => kv.Key, kv => kv.Value[i]),
        }).ToArray();
}
