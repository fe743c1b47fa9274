namespace R1Sharp.Training;

/// <summary>
/// Group-relative advantages: each completion's reward against the other completions of its own prompt, so no value
/// model (critic) is needed. GRPO (Shao et al. 2024, DeepSeekMath, eq. 3 / §4.1.2 outcome supervision):
/// Â_i = (r_i − mean(r)) / std(r) over the G completions of one prompt. As TRL computes it: std is the unbiased
/// sample std (torch.std), and 1e-4 is added to the denominator so a zero-variance group gives 0, not NaN.
/// scale_rewards: "group" divides by the group's std, "batch" by the std of the whole batch (Liu et al. 2025,
/// Dr. GRPO, and TRL: group std biases towards too-easy and too-hard prompts), "none" does not divide (Dr. GRPO §3.1).
/// </summary>
public static class Advantages
{
    public const double Epsilon = 1e-4;

    public static double[] Compute(IReadOnlyList<double> rewards, int groupSize, ScaleRewards scaleRewards)
    {
        if (groupSize < 1 || rewards.Count % groupSize != 0)
            throw new R1SharpException($"{rewards.Count} rewards do not form groups of num_generations={groupSize}");
        int groups = rewards.Count / groupSize;
        var adv = new double[rewards.Count];
        double batchStd = Std(rewards, 0, rewards.Count);
        for (int g = 0; g < groups; g++)
        {
            int o = g * groupSize;
            double mean = 0;
            for (int i = 0; i < groupSize; i++) mean += rewards[o + i];
            mean /= groupSize;
            double scale = scaleRewards switch
            {
                ScaleRewards.Group => Std(rewards, o, groupSize) + Epsilon,
                ScaleRewards.Batch => batchStd + Epsilon,
                _ => 1,
            };
            for (int i = 0; i < groupSize; i++) adv[o + i] = (rewards[o + i] - mean) / scale;
        }
        return adv;
    }

    /// <summary>Unbiased sample standard deviation (n − 1), 0 for a single value.</summary>
    public static double Std(IReadOnlyList<double> x, int offset, int count)
    {
        if (count < 2) return 0;
        double mean = 0;
        for (int i = 0; i < count; i++) mean += x[offset + i];
        mean /= count;
        double ss = 0;
        for (int i = 0; i < count; i++) ss += (x[offset + i] - mean) * (x[offset + i] - mean);
        return Math.Sqrt(ss / (count - 1));
    }

    /// <summary>True when every completion of the group got the same reward: its advantages are all zero and it
    /// teaches nothing (DAPO's dynamic sampling drops such groups).</summary>
    public static bool ZeroVariance(IReadOnlyList<double> rewards, int offset, int count)
    {
        for (int i = 1; i < count; i++)
            if (rewards[offset + i] != rewards[offset]) return false;
        return true;
    }
}
