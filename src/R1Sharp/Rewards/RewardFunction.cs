namespace R1Sharp.Rewards;

/// <summary>A verifiable reward: a plain function of the prompt, the completion and the reference answer.</summary>
public delegate double RewardFunc(string prompt, string completion, string reference);

/// <summary>A named reward with its weight in the total (TRL's reward_funcs / reward_weights).</summary>
public sealed record RewardFunction(string Name, RewardFunc Score, double Weight = 1.0);
