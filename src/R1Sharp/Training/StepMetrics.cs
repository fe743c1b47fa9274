namespace R1Sharp.Training;

/// <summary>What one update measured, summed over micro-batches and iterations.</summary>
public sealed class UpdateStats
{
    double _loss, _clip, _kl, _entropy, _weight;
    public int Skipped { get; set; }
    public double GradNorm { get; set; } = double.NaN;
    public double LearningRate { get; set; }
    public long TrainTokens { get; set; }
    public double Flops { get; set; }
    public double Seconds { get; set; }

    public void Add(double loss, double clip, double kl, double entropy, int rows)
    {
        _loss += loss; _clip += clip * rows; _kl += kl * rows; _entropy += entropy * rows; _weight += rows;
    }

    public double Loss => _loss;
    public double ClipFraction => _weight == 0 ? 0 : _clip / _weight;
    public double Kl => _weight == 0 ? 0 : _kl / _weight;
    public double Entropy => _weight == 0 ? 0 : _entropy / _weight;
}

/// <summary>The row written to metrics.jsonl for one step (names follow TRL's logs where TRL has them).</summary>
public static class StepMetrics
{
    public static Dictionary<string, double> Collect(int step, Rollout r, UpdateStats u, int rounds, double rolloutSeconds, double updateSeconds)
    {
        int g = r.GroupSize, groups = r.Groups;
        var rewards = r.Rewards;
        int zeroVar = Enumerable.Range(0, groups).Count(i => Advantages.ZeroVariance(rewards, i * g, g));
        var lengths = r.Completions.Select(x => (double)x.CompletionIds.Length).ToArray();
        var m = new Dictionary<string, double>
        {
            ["step"] = step,
            ["reward"] = rewards.Average(),
            ["reward_std"] = Advantages.Std(rewards, 0, r.Count),
        };
        foreach (var name in r.RewardNames)
        {
            var scores = r.Completions.Select(x => x.Rewards[name]).ToArray();
            m[$"rewards/{name}/mean"] = scores.Average();
            m[$"rewards/{name}/std"] = Advantages.Std(scores, 0, scores.Length);
            if (name == "accuracy") m["accuracy"] = scores.Average();
        }
        m["frac_reward_zero_std"] = groups == 0 ? 0 : (double)zeroVar / groups;
        m["completions/mean_length"] = lengths.Average();
        m["completions/max_length"] = lengths.Max();
        m["completions/clipped_ratio"] = r.Completions.Count(x => x.Truncated) / (double)r.Count;
        m["clip_ratio"] = u.ClipFraction;
        m["kl"] = u.Kl;
        m["entropy"] = u.Entropy;
        m["loss"] = u.Loss;
        m["grad_norm"] = u.GradNorm;
        m["learning_rate"] = u.LearningRate;
        m["skipped_updates"] = u.Skipped;
        m["sampling_rounds"] = rounds;
        m["rollout_seconds"] = rolloutSeconds;
        m["update_seconds"] = updateSeconds;
        m["rollout_tokens_per_second"] = lengths.Sum() / Math.Max(1e-9, rolloutSeconds);
        m["train_tokens_per_second"] = u.TrainTokens / Math.Max(1e-9, u.Seconds);
        m["update_flops_per_second"] = u.Flops / Math.Max(1e-9, updateSeconds);
        return m;
    }
}
