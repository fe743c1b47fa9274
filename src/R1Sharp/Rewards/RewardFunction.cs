namespace R1Sharp.Rewards;

/// <summary>A verifiable reward: a plain function of the prompt, the completion and the reference answer.</summary>
public delegate double RewardFunc(string prompt, string completion, string reference);

/// <summary>A reward over a whole batch at once (prompts, completions, references → one score each): for rewards that
/// gain from running their completions together, such as code run in a sandbox with several slots.</summary>
public delegate double[] BatchRewardFunc(IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<string> references);

/// <summary>A named reward with its weight in the total (TRL's reward_funcs / reward_weights). When <see cref="Batch"/>
/// is set, <see cref="RewardSet"/> scores a batch through it (same scores as <see cref="Score"/> one by one).</summary>
public sealed record RewardFunction(string Name, RewardFunc Score, double Weight = 1.0)
{
    public BatchRewardFunc? Batch { get; init; }
}
