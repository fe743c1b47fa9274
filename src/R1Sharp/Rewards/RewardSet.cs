using System.Diagnostics;

namespace R1Sharp.Rewards;

/// <summary>Scores of one batch: per reward function (unweighted) and the weighted total per completion.</summary>
public sealed record RewardScores(IReadOnlyDictionary<string, double[]> PerFunction, double[] Total, int Failures);

/// <summary>
/// Reward functions composed with weights. A reward that throws, returns NaN/∞ or takes longer than the timeout
/// scores 0 for that completion and is reported through <see cref="OnFailure"/>; it never stops the run.
/// </summary>
public sealed class RewardSet
{
    public IReadOnlyList<RewardFunction> Functions { get; }
    public TimeSpan Timeout { get; }
    public Action<string>? OnFailure { get; set; }

    public RewardSet(IReadOnlyList<RewardFunction> functions, TimeSpan? timeout = null)
    {
        if (functions.Count == 0) throw new R1SharpException("at least one reward function is needed");
        Functions = functions;
        Timeout = timeout ?? TimeSpan.FromSeconds(5);
    }

    public RewardScores Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<string> references)
    {
        int n = completions.Count;
        var per = Functions.ToDictionary(f => f.Name, _ => new double[n]);
        var total = new double[n];
        int failures = 0;
        foreach (var f in Functions)
            for (int i = 0; i < n; i++)
            {
                double s = SafeScore(f, prompts[i], completions[i], references[i], ref failures);
                per[f.Name][i] = s;
                total[i] += f.Weight * s;
            }
        return new RewardScores(per, total, failures);
    }

    double SafeScore(RewardFunction f, string prompt, string completion, string reference, ref int failures)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            // Run inline (fast path); a slow reward is only detected afterwards, then scored 0. A reward that may
            // hang forever should bound itself (the math verifier does); this keeps every reward deterministic.
            double s = f.Score(prompt, completion, reference);
            if (sw.Elapsed > Timeout) { failures++; OnFailure?.Invoke($"reward {f.Name} took {sw.Elapsed.TotalSeconds:F1}s > {Timeout.TotalSeconds}s: scored 0"); return 0; }
            if (!double.IsFinite(s)) { failures++; OnFailure?.Invoke($"reward {f.Name} returned {s}: scored 0"); return 0; }
            return s;
        }
        catch (Exception e)
        {
            failures++;
            OnFailure?.Invoke($"reward {f.Name} threw {e.GetType().Name}: {e.Message}: scored 0");
            return 0;
        }
    }
}
