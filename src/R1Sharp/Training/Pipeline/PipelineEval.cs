using R1Sharp.Eval;
using R1Sharp.Generation;

namespace R1Sharp.Training.Pipeline;

/// <summary>
/// The held-out evaluation after a stage: `r1 eval` on the stage's model with the recipe's settings (the same problems,
/// k and seed for every stage, so stages compare), its samples appended to the stage's eval/samples.jsonl as they
/// arrive (a resumed pipeline pays only for the missing ones) and its report beside them.
/// </summary>
public static class PipelineEval
{
    public static StageEval Run(string modelDir, string outDir, PipelineEvalOptions o, string problemsPath, Action<EvalProgress>? progress = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var all = Benchmark.Parse(problemsPath);
        var problems = o.Limit is { } n ? all.Take(n).ToList() : all;
        var settings = new EvalSettings
        {
            // One name for every stage: a stage's settings key then differs from another's only by what differs.
            Model = "stage", Temperature = (float)o.Temperature, TopP = (float)o.TopP, MaxTokens = o.MaxTokens, Seed = o.Seed,
            Instruction = o.Instruction, ForceThink = o.ForceThink,
        };
        settings.Sampling().Validate();
        Directory.CreateDirectory(outDir);
        using var backend = new LocalBackend(LocalModel.Load(modelDir), o.MaxBatch);
        IReadOnlyList<SampleRecord> records;
        using (var log = new ResultsLog(Path.Combine(outDir, EvalReport.ResultsFile)))
            records = EvalRunner.RunAsync(problems, o.K, settings, backend, log, progress).GetAwaiter().GetResult();
        var (summary, perProblem) = EvalSummary.Compute(Path.GetFileNameWithoutExtension(problemsPath), settings, problems, records);
        EvalReport.Write(outDir, summary, perProblem);
        return new StageEval(summary.Pass1, summary.Pass1StdErr, summary.ConsAtK, summary.MeanCompletionTokens, summary.Problems, summary.K,
            clock.Elapsed.TotalSeconds);
    }
}
