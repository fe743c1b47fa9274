using System.Globalization;
using System.Text;
using System.Text.Json;

namespace R1Sharp.Eval;

/// <summary>
/// Writes an evaluation's outputs beside its results log: summary.json, problems.jsonl (one line per problem),
/// report.md and pass_at_k.png. Each file is written under a temporary name and renamed, so a reader never sees half
/// a report; rerunning the eval rewrites them from the whole log.
/// </summary>
public static class EvalReport
{
    public const string ResultsFile = "samples.jsonl", SummaryFile = "summary.json", ProblemsFile = "problems.jsonl",
        ReportFile = "report.md", PlotFile = "pass_at_k.png";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void Write(string outDir, EvalSummary summary, IReadOnlyList<ProblemResult> perProblem)
    {
        Directory.CreateDirectory(outDir);
        WriteAtomic(Path.Combine(outDir, SummaryFile), Encoding.UTF8.GetBytes(JsonSerializer.Serialize(summary, Json) + "\n"));
        var lines = new StringBuilder();
        var compact = new JsonSerializerOptions(Json) { WriteIndented = false };
        foreach (var p in perProblem) lines.Append(JsonSerializer.Serialize(p, compact)).Append('\n');
        WriteAtomic(Path.Combine(outDir, ProblemsFile), Encoding.UTF8.GetBytes(lines.ToString()));
        WriteAtomic(Path.Combine(outDir, ReportFile), Encoding.UTF8.GetBytes(Markdown(summary, perProblem)));
        WriteAtomic(Path.Combine(outDir, PlotFile), Plot(summary));
    }

    static string Pct(double x) => (100 * x).ToString("F1", CultureInfo.InvariantCulture);

    public static string Markdown(EvalSummary s, IReadOnlyList<ProblemResult> perProblem)
    {
        var md = new StringBuilder();
        var st = s.Settings;
        md.AppendLine($"# {s.Bench}: {st.Model}").AppendLine();
        md.AppendLine($"{s.Problems} problems × {s.K} samples (settings {s.SettingsKey}: temperature {st.Temperature.ToString(CultureInfo.InvariantCulture)}, top-p {st.TopP.ToString(CultureInfo.InvariantCulture)}, max tokens {st.MaxTokens?.ToString() ?? "up to the context"}, seed {st.Seed}).").AppendLine();
        md.AppendLine("| metric | value |").AppendLine("|---|---|");
        md.AppendLine($"| pass@1 (mean of {s.K} samples) | {Pct(s.Pass1)} ± {Pct(s.Pass1StdErr)} |");
        foreach (var (k, v) in s.PassAtK.Skip(1)) md.AppendLine($"| pass@{k} | {Pct(v)} |"); // pass@1 by the estimator is the row above
        if (!s.Code) md.AppendLine($"| cons@{s.K} | {Pct(s.ConsAtK)} |");
        md.AppendLine($"| mean completion tokens | {s.MeanCompletionTokens.ToString("F0", CultureInfo.InvariantCulture)} |");
        md.AppendLine($"| truncated (hit max tokens) | {Pct(s.TruncatedFraction)}% |").AppendLine();
        if (s.Verdicts is { } verdicts)
        {
            md.AppendLine("## Verdicts").AppendLine().AppendLine("| verdict | samples |").AppendLine("|---|---|");
            foreach (var (v, n) in verdicts) md.AppendLine($"| {Cell(v)} | {n} |");
            md.AppendLine();
        }
        Groups(md, "subject", s.BySubject);
        Groups(md, "level", s.ByLevel);
        md.AppendLine($"![pass@k]({PlotFile})").AppendLine();
        if (s.Code)
        {
            md.AppendLine("## Problems").AppendLine().AppendLine("| id | checks | passed |").AppendLine("|---|---|---|");
            foreach (var p in perProblem) md.AppendLine($"| {Cell(p.Id)} | {Cell(p.Gold)} | {p.Correct}/{p.Samples} |");
            return md.ToString();
        }
        md.AppendLine("## Problems").AppendLine().AppendLine("| id | gold | correct | majority answer (votes) |").AppendLine("|---|---|---|---|");
        foreach (var p in perProblem)
            md.AppendLine($"| {Cell(p.Id)} | {Cell(p.Gold)} | {p.Correct}/{p.Samples} | {Cell(p.ConsensusAnswer ?? "—")} ({p.ConsensusVotes}){(p.ConsensusCorrect ? " ✓" : "")} |");
        return md.ToString();
    }

    static void Groups(StringBuilder md, string name, IReadOnlyDictionary<string, GroupScore>? groups)
    {
        if (groups is null) return;
        md.AppendLine($"## By {name}").AppendLine().AppendLine($"| {name} | problems | pass@1 | cons@k |").AppendLine("|---|---|---|---|");
        foreach (var (key, g) in groups) md.AppendLine($"| {Cell(key)} | {g.Problems} | {Pct(g.Pass1)} ± {Pct(g.Pass1StdErr)} | {Pct(g.ConsAtK)} |");
        md.AppendLine();
    }

    /// <summary>Table cells hold LaTeX answers: pipes and newlines would break the row.</summary>
    static string Cell(string s) => s.Replace("|", "\\|").Replace("\r", " ").Replace("\n", " ");

    static byte[] Plot(EvalSummary s)
    {
        var plot = new ScottPlot.Plot();
        double[] xs = Enumerable.Range(1, s.PassAtK.Count).Select(k => (double)k).ToArray();
        double[] ys = Enumerable.Range(1, s.PassAtK.Count).Select(k => 100 * s.PassAtK[k.ToString()]).ToArray();
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = "pass@k (unbiased estimator)";
        if (s.K > 0 && !s.Code)
        {
            var cons = plot.Add.Scatter(new[] { (double)s.K }, new[] { 100 * s.ConsAtK });
            cons.LegendText = $"cons@{s.K}";
            cons.LineWidth = 0;
            cons.MarkerSize = 10;
        }
        plot.ShowLegend();
        plot.Title($"{s.Bench}: {s.Settings.Model}");
        plot.XLabel("k (samples per problem)");
        plot.YLabel("% solved");
        plot.Axes.SetLimitsY(-2, 102); // a margin keeps 0% and 100% points off the frame
        if (s.K <= 16) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1); // k is whole
        plot.Axes.SetLimitsX(0.5, Math.Max(1, s.K) + 0.5);
        return plot.GetImageBytes(720, 450, ScottPlot.ImageFormat.Png);
    }

    public static void WriteAtomic(string path, byte[] bytes)
    {
        string tmp = path + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }
}
