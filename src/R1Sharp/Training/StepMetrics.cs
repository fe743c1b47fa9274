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
    public static Dictionary<string, double> Collect(int step, Rollout r, GrpoConfig c, UpdateStats u, int rounds, double rolloutSeconds, double updateSeconds)
    {
        int g = c.NumGenerations, groups = r.Count / g;
        int zeroVar = Enumerable.Range(0, groups).Count(i => Advantages.ZeroVariance(r.Rewards, i * g, g));
        var lengths = r.CompletionIds.Select(x => (double)x.Length).ToArray();
        var m = new Dictionary<string, double>
        {
            ["step"] = step,
            ["reward"] = r.Rewards.Average(),
            ["reward_std"] = Advantages.Std(r.Rewards, 0, r.Count),
        };
        foreach (var (name, scores) in r.PerFunction)
        {
            m[$"rewards/{name}/mean"] = scores.Average();
            m[$"rewards/{name}/std"] = Advantages.Std(scores, 0, scores.Count);
        }
        if (r.PerFunction.TryGetValue("accuracy", out var acc)) m["accuracy"] = acc.Average();
        m["frac_reward_zero_std"] = groups == 0 ? 0 : (double)zeroVar / groups;
        m["completions/mean_length"] = lengths.Average();
        m["completions/max_length"] = lengths.Max();
        m["completions/clipped_ratio"] = r.Truncated.Count(t => t) / (double)r.Count;
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
