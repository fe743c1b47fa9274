using System.Text.Json.Nodes;
using R1Sharp.Eval;
using R1Sharp.Training;

namespace R1Sharp.Tests.Board;

/// <summary>
/// The run folders the board tests look at, written by the project's own writers where they are stable
/// (MetricsLog.Serialize, ResultsLog, EvalSummary, EvalReport) and taken from a real `r1 zero` run for GRPO (the
/// committed Fixtures/board/zero: its report, 40 metric rows, and the 320 rollouts of its first 5 steps), plus the bad
/// inputs the board must survive. Layout below <see cref="Root"/>:
/// zero/ (report.md, grpo/), second/ (25 rows), live/ and events/ (appended to by one test each), evals/a and evals/b (two evaluations
/// of the same six problems), bad/… (a line still being written, a malformed middle line, an unknown metric, an empty
/// metrics file, broken rollouts and eval files); <see cref="EmptyRoot"/> holds nothing.
/// </summary>
public sealed class BoardFixtureRuns : IDisposable
{
    readonly TempDir dir = new();
    public string Root { get; }
    public string EmptyRoot { get; }
    public string Label => Path.GetFileName(Root);

    public BoardFixtureRuns()
    {
        Root = Path.Combine(dir.Path, "runs");
        EmptyRoot = Path.Combine(dir.Path, "empty");
        Directory.CreateDirectory(EmptyRoot);
        CopyDir(Path.Combine(AppContext.BaseDirectory, "Fixtures", "board", "zero"), Path.Combine(Root, "zero"));
        WriteMetrics("second", Enumerable.Range(1, 25).Select(i => Row(i, reward: 0.4 + 0.03 * i)));
        WriteMetrics("live", Enumerable.Range(1, 3).Select(i => Row(i, reward: 0.5 + 0.1 * i)));
        WriteMetrics("events", Enumerable.Range(1, 2).Select(i => Row(i, reward: 0.5)));
        WriteEval("evals/a", [4, 3, 0, 1, 4, 0]);
        WriteEval("evals/b", [4, 0, 4, 1, 1, 0]);

        // A run still writing: five rows, and the sixth cut off without its newline.
        WriteMetrics("bad/still-writing", Enumerable.Range(1, 5).Select(i => Row(i, reward: 0.1 * i)));
        File.AppendAllText(Path.Combine(Root, "bad/still-writing/metrics.jsonl"), "{\"step\":6,\"reward\":0.");
        // A malformed line in the middle (line 3) between good ones.
        var lines = Enumerable.Range(1, 5).Select(i => MetricsLog.Serialize(Row(i, reward: 0.2 * i))).ToList();
        lines[2] = "{\"step\":3,\"reward\": oops";
        Write("bad/malformed/metrics.jsonl", string.Join("\n", lines) + "\n");
        // A metric nobody told the board about, and a value that is text.
        Write("bad/unknown/metrics.jsonl", string.Concat(Enumerable.Range(1, 4).Select(i =>
            $"{{\"step\":{i},\"reward\":{0.1 * i},\"mystery/quality\":{i * i},\"comment\":\"step {i} was fine\"}}\n")));
        Write("bad/empty-metrics/metrics.jsonl", "");
        // Rollouts: a malformed middle line and a torn last one.
        var zeroRollouts = File.ReadLines(Path.Combine(Root, "zero/grpo/rollouts.jsonl")).Take(8).ToList();
        Write("bad/rollouts/rollouts.jsonl", string.Join("\n", zeroRollouts.Take(4)) + "\n[1,2,3]\nnot json at all\n" +
            string.Join("\n", zeroRollouts.Skip(4)) + "\n{\"step\":1,\"group\":0,\"prompt\":\"66+");
        // An eval whose summary is garbage and whose samples end in a torn line.
        WriteEval("bad/eval-torn", [2, 1, 0, 4, 3, 2]);
        Write("bad/eval-torn/summary.json", "{ \"bench\": ");
        File.AppendAllText(Path.Combine(Root, "bad/eval-torn/samples.jsonl"), "{\"settings\":\"x\",\"problem_id\":\"p");
    }

    public static Dictionary<string, double> Row(int step, double reward) => new()
    {
        ["step"] = step, ["reward"] = reward, ["accuracy"] = Math.Min(1, reward / 1.5), ["completions/mean_length"] = 10 + step,
        ["kl"] = 0.001 * (step - 1), ["learning_rate"] = 1e-4, ["rollout_seconds"] = 0.5, ["update_seconds"] = 0.25,
    };

    void WriteMetrics(string run, IEnumerable<Dictionary<string, double>> rows) =>
        Write(Path.Combine(run, "metrics.jsonl"), string.Concat(rows.Select(r => MetricsLog.Serialize(r) + "\n")));

    void Write(string relative, string text)
    {
        string path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    public static readonly string[] Subjects = ["algebra", "geometry"];

    /// <summary>Six problems × 4 samples, problem i with correct[i] correct samples (the wrong ones all answer "0", so the
    /// majority vote is right exactly when more than half are correct), through the eval's own writers.</summary>
    void WriteEval(string relative, int[] correct)
    {
        string outDir = Path.Combine(Root, relative);
        Directory.CreateDirectory(outDir);
        var problems = correct.Select((_, i) => new BenchProblem($"p{i}", $"What is {i} + {i}?", (2 * i + 10).ToString(), Subjects[i % 2], 1 + i % 3)).ToList();
        var settings = new EvalSettings { Model = Path.GetFileName(relative), Temperature = 0.6f, TopP = 0.95f, MaxTokens = 64, Seed = 1 };
        using (var log = new ResultsLog(Path.Combine(outDir, EvalReport.ResultsFile)))
            for (int p = 0; p < problems.Count; p++)
                for (int s = 0; s < 4; s++)
                {
                    bool ok = s < correct[p];
                    string answer = ok ? problems[p].Answer : "0";
                    log.Append(new SampleRecord
                    {
                        Settings = settings.Key, ProblemId = problems[p].Id, Sample = s, Seed = settings.SeedFor(p, s), Gold = problems[p].Answer,
                        Extracted = answer, Correct = ok, Reason = ok ? "equal" : "not equal", FinishReason = s == 3 && !ok ? "length" : "stop",
                        CompletionTokens = 20 + s, Reasoning = $"Adding {p} and {p} step by step (sample {s}).", Answer = $"\\boxed{{{answer}}}",
                        Text = $"<think>Adding {p} and {p} step by step (sample {s}).</think>\\boxed{{{answer}}}",
                    });
                }
        List<SampleRecord> records;
        using (var reread = new ResultsLog(Path.Combine(outDir, EvalReport.ResultsFile))) records = reread.Records;
        var (summary, perProblem) = EvalSummary.Compute("toy", settings, problems, records);
        EvalReport.Write(outDir, summary, perProblem);
    }

    static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.EnumerateDirectories(from)) CopyDir(d, Path.Combine(to, Path.GetFileName(d)));
    }

    /// <summary>The rollouts of the real fixture as the test reads them, independently of the board.</summary>
    public IEnumerable<JsonObject> ZeroRollouts() =>
        File.ReadLines(Path.Combine(Root, "zero/grpo/rollouts.jsonl")).Select(l => (JsonObject)JsonNode.Parse(l)!);

    public void Dispose() => dir.Dispose();
}
