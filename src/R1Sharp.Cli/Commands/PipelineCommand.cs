using System.CommandLine;
using System.Diagnostics;
using R1Sharp.Training;
using R1Sharp.Training.Pipeline;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 pipeline [--config recipe.yaml] [--resume] [--json]`: a multi-stage recipe (sft, grpo, sample, distill, …)
/// into one run folder, the held-out evaluation after each stage, report.md and pass_at_1.png. Without --config, the
/// built-in recipes/zero-distill.yaml (the embedded proof of `r1 distill`).</summary>
public static class PipelineCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "pipeline recipe YAML (default: the built-in recipes/zero-distill.yaml)" };
        var resume = new Option<bool>("--resume") { Description = "continue the run in output_dir: finished stages are kept, an interrupted one continues" };
        var output = new Option<string?>("--out") { Description = "run folder instead of the recipe's output_dir" };
        var json = new Option<bool>("--json") { Description = "print the stages' records as JSON" };
        var cmd = new Command("pipeline", "Run a multi-stage recipe (DeepSeek-R1's cold start → RL → rejection sampling → SFT → RL, distillation) with a held-out eval after each stage")
            { config, resume, output, json };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            var recipe = p.GetValue(config) is { } path ? PipelineRecipe.Load(path) : EmbeddedRecipe.Load();
            if (p.GetValue(output) is { } o) recipe = recipe with { OutputDir = Path.GetFullPath(o) };
            var records = PipelineProgress.Run(recipe, p.GetValue(resume));
            if (p.GetValue(json)) CliCommon.PrintJson(new { output_dir = recipe.OutputDir, report = Path.Combine(recipe.OutputDir, PipelineReport.ReportFile), stages = records });
            else PipelineProgress.PrintTable(recipe, records);
            return 0;
        }));
        return cmd;
    }
}

/// <summary>A pipeline run with its progress as lines on stderr (a stage's steps, sampling and evaluation every few
/// seconds, with the ETA): stages nest trainers, samplers and evaluators, which one live bar cannot show.</summary>
public static class PipelineProgress
{
    public static IReadOnlyList<StageRecord> Run(PipelineRecipe recipe, bool resume)
    {
        var lastLine = Stopwatch.StartNew();
        var stageClock = new Stopwatch();
        int firstStep = 0;
        var lastSamples = new Dictionary<string, Stopwatch>();
        var runner = new PipelineRunner(recipe)
        {
            OnLog = m => Console.Error.WriteLine(m),
            OnTrainStart = (s, t) => { stageClock.Restart(); firstStep = t.State.Step; lastLine.Restart(); },
            OnStep = (s, t, row) =>
            {
                if (lastLine.Elapsed.TotalSeconds < 5 && !t.Done) return;
                lastLine.Restart();
                int done = t.State.Step - firstStep;
                string eta = done > 0 && t.MaxSteps < 100_000 ? $", ETA {TimeSpan.FromSeconds(stageClock.Elapsed.TotalSeconds / done * (t.MaxSteps - t.State.Step)):mm\\:ss}" : "";
                string metric = row.TryGetValue("reward", out var r) ? $"reward {r:F3}" : row.TryGetValue("loss", out var l) ? $"loss {l:F4}" : "";
                Console.Error.WriteLine($"{s.Name}: step {t.State.Step}{(t.MaxSteps < 100_000 ? $"/{t.MaxSteps}" : "")}, {metric}, {TrainingResult.StepSeconds(t.Metrics.Rows):F0} s of steps{eta}");
            },
            OnSamples = (what, e) =>
            {
                // The first and the last report, and one every 5 s between.
                bool first = !lastSamples.TryGetValue(what, out var since);
                if (!first && e.Done < e.Total && since!.Elapsed.TotalSeconds < 5) return;
                lastSamples[what] = Stopwatch.StartNew();
                Console.Error.WriteLine($"{what}: {e.Done}/{e.Total} samples ({e.Resumed} resumed), {e.Correct} correct");
            },
        };
        return runner.Run(resume);
    }

    public static void PrintTable(PipelineRecipe recipe, IReadOnlyList<StageRecord> records)
    {
        foreach (var r in records)
            Console.WriteLine($"{r.Name,-16} {r.Kind,-9} " + (r.Eval is { } e ? $"held-out pass@1 {100 * e.Pass1,5:F1} ± {100 * e.Pass1StdErr:F1}, mean {e.MeanTokens,5:F1} tokens" : new string(' ', 47))
                + $"  {r.Steps,5} steps, {r.TrainSeconds,5:F0} s training, {r.WallSeconds,5:F0} s stage");
        if (Comparison.Of(recipe.Compare, records) is { } c)
        {
            Console.WriteLine($"{c.Winner} won by {c.MarginPoints:F1} points over {c.RunnerUp}{(c.Clear ? "" : " (within 2 SE: not a clear win)")}");
            if (recipe.ExpectedWinner is { } expected)
                Console.WriteLine($"expected: {expected}{(recipe.Expectation is { } why ? $" ({why})" : "")}. {c.Against(expected)}");
        }
        Console.WriteLine($"report: {Path.Combine(recipe.OutputDir, PipelineReport.ReportFile)}");
    }
}
