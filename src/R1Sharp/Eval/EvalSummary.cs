using R1Sharp.Verifier;

namespace R1Sharp.Eval;

/// <summary>One problem's outcome over its samples.</summary>
public sealed record ProblemResult(string Id, string? Subject, int? Level, string Gold, int Samples, int Correct, double Pass1,
    string? ConsensusAnswer, int ConsensusVotes, bool ConsensusCorrect, IReadOnlyList<string?> Answers);

/// <summary>Scores of a group of problems (all, or one subject or level).</summary>
public sealed record GroupScore(int Problems, double Pass1, double Pass1StdErr, double ConsAtK);

/// <summary>What an evaluation found: DeepSeek-R1's numbers (pass@1 over k samples, cons@k) and the pass@k curve.</summary>
public sealed record EvalSummary
{
    public required string Bench { get; init; }
    public required EvalSettings Settings { get; init; }
    public required string SettingsKey { get; init; }
    public required int K { get; init; }
    public required int Problems { get; init; }
    public required int Samples { get; init; }
    public required double Pass1 { get; init; }
    public required double Pass1StdErr { get; init; }
    /// <summary>pass@k' for k' = 1..K (key "1", "2", …), by the unbiased estimator.</summary>
    public required IReadOnlyDictionary<string, double> PassAtK { get; init; }
    public required double ConsAtK { get; init; }
    public required double MeanCompletionTokens { get; init; }
    /// <summary>Share of samples cut off by max_tokens (finish_reason "length"): their answers are usually missing.</summary>
    public required double TruncatedFraction { get; init; }
    /// <summary>The problems are code: answers are programs, so there is no majority vote (cons@k is not computed).</summary>
    public bool Code { get; init; }
    /// <summary>Code: how many samples ended with each verdict (passed, failed, compile_error, timeout, …).</summary>
    public IReadOnlyDictionary<string, int>? Verdicts { get; init; }
    public IReadOnlyDictionary<string, GroupScore>? BySubject { get; init; }
    public IReadOnlyDictionary<string, GroupScore>? ByLevel { get; init; }

    /// <summary>Groups the graded samples by problem, votes, and scores. Problems with no samples are left out (an
    /// interrupted run summarised early); K is the fewest samples any scored problem has.</summary>
    public static (EvalSummary Summary, IReadOnlyList<ProblemResult> PerProblem) Compute(string bench, EvalSettings settings,
        IReadOnlyList<BenchProblem> problems, IReadOnlyList<SampleRecord> records)
    {
        var byProblem = records.GroupBy(r => r.ProblemId).ToDictionary(g => g.Key, g => g.OrderBy(r => r.Sample).ToList());
        var results = new List<ProblemResult>();
        foreach (var p in problems)
        {
            if (!byProblem.TryGetValue(p.Id, out var rs) || rs.Count == 0) continue;
            var answers = rs.Select(r => r.Extracted).ToList();
            // Programs are not voted on: cons@k is a math measure.
            var vote = p.Code is null ? Consensus.Majority(answers, (a, b) => MathVerifier.Verify(a, b).Equal) : new Vote(null, 0, []);
            int c = rs.Count(r => r.Correct);
            results.Add(new ProblemResult(p.Id, p.Subject, p.Level, p.Answer, rs.Count, c, (double)c / rs.Count,
                vote.Answer, vote.Votes, vote.Winner >= 0 && rs[vote.Winner].Correct, answers));
        }
        var counts = results.Select(r => (r.Samples, r.Correct)).ToList();
        var (mean, se) = global::R1Sharp.Eval.PassAtK.Pass1(counts);
        var curve = global::R1Sharp.Eval.PassAtK.Curve(counts);
        var summary = new EvalSummary
        {
            Bench = bench, Settings = settings, SettingsKey = settings.Key, K = curve.Length, Problems = results.Count, Samples = records.Count,
            Pass1 = mean, Pass1StdErr = se,
            PassAtK = curve.Select((v, i) => (Key: (i + 1).ToString(), v)).ToDictionary(x => x.Key, x => x.v),
            ConsAtK = results.Count == 0 ? 0 : results.Average(r => r.ConsensusCorrect ? 1.0 : 0.0),
            MeanCompletionTokens = records.Count == 0 ? 0 : records.Average(r => (double)r.CompletionTokens),
            TruncatedFraction = records.Count == 0 ? 0 : records.Count(r => r.FinishReason == "length") / (double)records.Count,
            Code = problems.Any(p => p.Code is not null),
            Verdicts = problems.Any(p => p.Code is not null)
                ? records.GroupBy(r => r.Reason.Split(':')[0]).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count())
                : null,
            BySubject = GroupBy(results, r => r.Subject),
            ByLevel = GroupBy(results, r => r.Level?.ToString()),
        };
        return (summary, results);
    }

    /// <summary>Per-group scores when the benchmark has that field (MATH-500's subject and level), else null.</summary>
    static IReadOnlyDictionary<string, GroupScore>? GroupBy(IReadOnlyList<ProblemResult> results, Func<ProblemResult, string?> field)
    {
        if (results.All(r => field(r) is null)) return null;
        return results.Where(r => field(r) is not null).GroupBy(field).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key!, g =>
        {
            var (m, s) = global::R1Sharp.Eval.PassAtK.Pass1(g.Select(r => (r.Samples, r.Correct)).ToList());
            return new GroupScore(g.Count(), m, s, g.Average(r => r.ConsensusCorrect ? 1.0 : 0.0));
        });
    }
}
