namespace R1Sharp.Eval;

/// <summary>Pure statistics over graded samples: pass@k, pass@1 with its standard error. No I/O, no verifier.</summary>
public static class PassAtK
{
    /// <summary>The unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on Code", eq. 1):
    /// 1 − C(n−c, k) / C(n, k), the chance that k samples drawn without replacement from n (c of them correct) hold at
    /// least one correct one. Computed as the product Π_{i=n−c+1..n} (1 − k/i), the paper's numerically stable form.</summary>
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1 || k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"need 1 ≤ k ≤ n, got n={n}, k={k}");
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), $"need 0 ≤ c ≤ n, got n={n}, c={c}");
        if (n - c < k) return 1.0;
        double miss = 1.0;
        for (int i = n - c + 1; i <= n; i++) miss *= 1.0 - (double)k / i;
        return 1.0 - miss;
    }

    /// <summary>pass@k' averaged over problems for every k' = 1..k, where k is the fewest samples any problem has
    /// (a problem with fewer samples cannot say anything about a larger k'). Index 0 holds pass@1.</summary>
    public static double[] Curve(IReadOnlyList<(int N, int Correct)> problems)
    {
        if (problems.Count == 0) return [];
        int k = problems.Min(p => p.N);
        var curve = new double[k];
        for (int kk = 1; kk <= k; kk++) curve[kk - 1] = problems.Average(p => Estimate(p.N, p.Correct, kk));
        return curve;
    }

    /// <summary>pass@1 as DeepSeek reports it (mean correctness of the k samples of each problem, averaged over
    /// problems) and its standard error across problems: the sample standard deviation of the per-problem means
    /// (n−1 in the denominator) over √(problems). Sampling noise within a problem is folded into its mean.</summary>
    public static (double Mean, double StdErr) Pass1(IReadOnlyList<(int N, int Correct)> problems)
    {
        if (problems.Count == 0) return (0, 0);
        var means = problems.Select(p => p.N == 0 ? 0.0 : (double)p.Correct / p.N).ToArray();
        double mean = means.Average();
        if (means.Length < 2) return (mean, 0);
        double variance = means.Sum(m => (m - mean) * (m - mean)) / (means.Length - 1);
        return (mean, Math.Sqrt(variance / means.Length));
    }
}
