using System.Globalization;
using System.Text;

namespace R1Sharp.Training.Pipeline;

/// <summary>What a comparison of stages found: each stage's held-out pass@1, the winner and its margin over the
/// runner-up in points, and whether the margin exceeds twice the combined standard error.</summary>
public sealed record Comparison(IReadOnlyList<(string Stage, double Pass1, double StdErr)> Entries, string Winner, string RunnerUp,
    double MarginPoints, bool Clear)
{
    public static Comparison? Of(IReadOnlyList<string> names, IReadOnlyList<StageRecord> records)
    {
        var entries = names.Select(n => records.FirstOrDefault(r => r.Name == n)).Where(r => r?.Eval != null)
            .Select(r => (r!.Name, r.Eval!.Pass1, r.Eval.Pass1StdErr)).ToList();
        if (entries.Count < 2 || entries.Count < names.Count) return null;
        var ranked = entries.OrderByDescending(e => e.Pass1).ToList();
        double margin = 100 * (ranked[0].Pass1 - ranked[1].Pass1);
        double se = 100 * Math.Sqrt(ranked[0].Pass1StdErr * ranked[0].Pass1StdErr + ranked[1].Pass1StdErr * ranked[1].Pass1StdErr);
        return new Comparison(entries, ranked[0].Name, ranked[1].Name, margin, margin > 2 * se);
    }

    /// <summary>Whether this comparison agrees with a reference result that <paramref name="expected"/> wins, said
    /// whatever the result: agrees, disagrees, or cannot tell (and, when the two leaders are both within 5 points of
    /// 100%, that the task's ceiling is what keeps them apart by less than the error).</summary>
    public string Against(string expected)
    {
        double Pass(string stage) => 100 * Entries.First(e => e.Stage == stage).Pass1;
        if (Clear)
            return Winner == expected
                ? $"This run agrees: {expected} won by more than twice the standard error."
                : $"This run disagrees: {Winner} won ({Pass(Winner):F1}%), {expected} scored {Pass(expected):F1}%.";
        string ceiling = Pass(Winner) >= 95 && Pass(RunnerUp) >= 95
            ? $" Both are within 5 points of 100%: at this task's ceiling the budget let either method learn the held-out problems, so the comparison cannot separate them."
            : "";
        return Winner == expected
            ? $"This run leans the same way but does not show it: {expected} is ahead of {RunnerUp} by {MarginPoints:F1} points, within twice the standard error.{ceiling}"
            : $"This run does not confirm it: {Winner} is ahead ({Pass(Winner):F1}%), {expected} scored {Pass(expected):F1}%, {(RunnerUp == expected ? "within twice the standard error" : $"and {RunnerUp} {Pass(RunnerUp):F1}%")}.{ceiling}";
    }
}

/// <summary>
/// The pipeline's report in the run folder: report.md (a row per stage: what it is, its held-out pass@1 ± SE, mean
/// response length, steps and seconds; the comparison the recipe asks for) and pass_at_1.png (held-out pass@1 after each
/// stage). Rewritten after every stage, atomically.
/// </summary>
public static class PipelineReport
{
    public const string ReportFile = "report.md", PlotFile = "pass_at_1.png";

    public static void Write(string dir, PipelineRecipe recipe, IReadOnlyList<StageRecord> records, Action<string>? onError = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Pipeline report").AppendLine();
        sb.AppendLine($"Recipe: `{recipe.Source}` ({recipe.Stages.Count} stages: {string.Join(" → ", recipe.Stages.Select(s => $"{s.Name} ({s.Kind})"))}).");
        if (recipe.Eval is { } e)
            sb.AppendLine($"Held-out evaluation after each stage: `{recipe.EvalInput!.Values[0]}`{(e.Limit is { } l ? $" (first {l})" : "")}, k = {e.K} samples per problem, " +
                          $"temperature {e.Temperature.ToString(CultureInfo.InvariantCulture)}, top-p {e.TopP.ToString(CultureInfo.InvariantCulture)}, seed {e.Seed}: the same problems, k and seeds for every stage.");
        sb.AppendLine();
        sb.AppendLine("| stage | kind | inputs | held-out pass@1 | mean length (tokens) | steps | training s | stage s | load |").AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in records)
        {
            var stage = recipe.Stages.FirstOrDefault(s => s.Name == r.Name);
            string inputs = stage is null ? recipe.BaseModel ?? "" : string.Join("; ", stage.Inputs.Values.Select(i => $"{i.Key}: {string.Join(", ", i.Values)}"));
            string pass = r.Eval is { } ev ? $"{100 * ev.Pass1:F1} ± {100 * ev.Pass1StdErr:F1}" : "–";
            sb.AppendLine($"| {r.Name} | {r.Kind} | {inputs} | {pass} | {(r.Eval is { } m ? m.MeanTokens.ToString("F1", CultureInfo.InvariantCulture) : "–")} | {r.Steps} | {r.TrainSeconds:F0} | {r.WallSeconds:F0} | {r.LoadAverage:F1} |");
        }
        sb.AppendLine();
        if (Comparison.Of(recipe.Compare, records) is { } c)
        {
            sb.AppendLine("## Comparison").AppendLine();
            sb.AppendLine(string.Join(", ", c.Entries.Select(x => $"{x.Stage} {100 * x.Pass1:F1}%")) + ".");
            sb.AppendLine($"**{c.Winner}** won, {c.MarginPoints:F1} points ahead of {c.RunnerUp} " +
                          (c.Clear ? "(more than twice the standard error of the difference)." : "(within twice the standard error of the difference: not a clear win)."));
            if (recipe.ExpectedWinner is { } expected)
            {
                sb.AppendLine();
                sb.AppendLine($"Expected: **{expected}**{(recipe.Expectation is { } why ? $" ({why})" : "")}. {c.Against(expected)}");
            }
            sb.AppendLine();
        }
        else if (recipe.Compare.Count > 0) sb.AppendLine($"Comparison of {string.Join(", ", recipe.Compare)}: pending (not every stage has run).").AppendLine();
        var plotted = TryPlot(dir, records, onError);
        if (plotted) sb.AppendLine($"![held-out pass@1 after each stage]({PlotFile})").AppendLine();
        sb.AppendLine("Each stage's folder holds its own curves (metrics.jsonl, PNGs) and its evaluation (eval/report.md, eval/samples.jsonl).");
        string path = Path.Combine(dir, ReportFile);
        File.WriteAllText(path + ".tmp", sb.ToString());
        File.Move(path + ".tmp", path, overwrite: true);
    }

    static bool TryPlot(string dir, IReadOnlyList<StageRecord> records, Action<string>? onError)
    {
        var evaluated = records.Where(r => r.Eval != null).ToList();
        if (evaluated.Count == 0) return false;
        try
        {
            var plot = new ScottPlot.Plot();
            var bars = evaluated.Select((r, i) => new ScottPlot.Bar
            {
                Position = i, Value = 100 * r.Eval!.Pass1, Error = 100 * r.Eval.Pass1StdErr, Label = $"{100 * r.Eval.Pass1:F1}",
            }).ToList();
            plot.Add.Bars(bars);
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, evaluated.Count).Select(i => (double)i).ToArray(), evaluated.Select(r => r.Name).ToArray());
            plot.Axes.SetLimitsY(0, 105);
            plot.Title("Held-out pass@1 after each stage (± SE)");
            plot.YLabel("pass@1 (%)");
            string path = Path.Combine(dir, PlotFile);
            plot.SavePng(path + ".tmp.png", 720, 420);
            File.Move(path + ".tmp.png", path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            onError?.Invoke($"plot not written: {e.Message}");
            return false;
        }
    }
}
