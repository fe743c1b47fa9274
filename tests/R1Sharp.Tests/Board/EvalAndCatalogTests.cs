using System.Text.Json.Nodes;
using R1Sharp.Board;
using R1Sharp.Training;

namespace R1Sharp.Tests.Board;

/// <summary>What the board finds in a folder of runs, and the numbers its eval and comparison views show, checked
/// against values worked out by hand.</summary>
public class EvalAndCatalogTests : IClassFixture<BoardFixtureRuns>
{
    readonly BoardFixtureRuns fx;
    public EvalAndCatalogTests(BoardFixtureRuns fx) => this.fx = fx;

    string Id(string relative) => fx.Label + "/" + relative;

    [Fact]
    public void RunsAreFoundByTheFilesTheyWrite()
    {
        var catalog = new RunCatalog([fx.Root, fx.EmptyRoot]);
        var kinds = catalog.Runs.ToDictionary(r => r.Id, r => { _ = r.Describe(); return r.Kind; });
        Assert.Equal("group", kinds[Id("zero")]); // r1 zero's folder: report.md and the grpo stage
        Assert.Equal("grpo", kinds[Id("zero/grpo")]);
        Assert.Equal("grpo", kinds[Id("second")]);
        Assert.Equal("eval", kinds[Id("evals/a")]);
        Assert.Equal("eval", kinds[Id("bad/eval-torn")]);
        Assert.Equal("train", kinds[Id("bad/empty-metrics")]); // no rows yet: which trainer is not known
        Assert.DoesNotContain(kinds.Keys, k => k.Contains("checkpoint") || k.EndsWith("/tokenizer"));
        Assert.Equal(Id("zero"), catalog.Get(Id("zero/grpo")).ParentId);
        var notes = catalog.Describe()["notes"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Equal([$"{fx.EmptyRoot}: no runs found (a run folder holds metrics.jsonl, rollouts.jsonl, samples.jsonl, or summary.json with problems.jsonl)"], notes);
        Assert.Equal(404, Assert.Throws<BoardRequestException>(() => catalog.Get("nope")).Status);
    }

    [Fact]
    public void EvalScoresMatchTheHandComputedValues()
    {
        var catalog = new RunCatalog([fx.Root]);
        var j = catalog.Get(Id("evals/a")).EvalRun!.ToJson();
        Assert.False((bool)j["live"]!);
        // Correct of 4 per problem: 4, 3, 0, 1, 4, 0 → per-problem pass@1 1, .75, 0, .25, 1, 0.
        Assert.Equal(0.5, (double)j["pass1"]!, 12);
        Assert.Equal(Math.Sqrt(1.125 / 5 / 6), (double)j["pass1_std_err"]!, 12);
        Assert.Equal(4.0 / 6, (double)j["pass_at_k"]!["4"]!, 12);
        Assert.Equal(3.0 / 6, (double)j["cons_at_k"]!, 12); // majority right: p0, p1, p4
        Assert.Equal(6, j["problem_rows"]!.AsArray().Count);
        var p1 = catalog.Get(Id("evals/a")).EvalRun!.Problem("p1");
        Assert.Equal([true, true, true, false], p1["samples"]!.AsArray().Select(s => (bool)s!["correct"]!));
    }

    [Fact]
    public void AnEvalStillRunningIsScoredLiveFromItsSamples()
    {
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "a");
        Directory.CreateDirectory(run);
        File.Copy(Path.Combine(fx.Root, "evals/a/samples.jsonl"), Path.Combine(run, "samples.jsonl"));
        var eval = new EvalRun(run);
        eval.Refresh();
        var j = eval.ToJson();
        Assert.True((bool)j["live"]!);
        Assert.Equal(0.5, (double)j["pass1"]!, 12);
        Assert.Equal(Math.Sqrt(1.125 / 5 / 6), (double)j["pass1_std_err"]!, 12);
        Assert.Equal(4.0 / 6, (double)j["pass_at_k"]!["4"]!, 12);
        Assert.Null(j["cons_at_k"]);
        Assert.Equal(4 / 24.0, (double)j["truncated_fraction"]!, 12); // the 4th sample when it is wrong: p1, p2, p3, p5
    }

    [Fact]
    public void ATornEvalShowsWhatItCanAndSaysWhatItSkipped()
    {
        var catalog = new RunCatalog([fx.Root]);
        var j = catalog.Get(Id("bad/eval-torn")).EvalRun!.ToJson();
        Assert.True((bool)j["live"]!); // the summary is garbage: scores come from the samples
        Assert.Equal(24, (int)j["samples"]!);
        Assert.Equal((2 + 1 + 0 + 4 + 3 + 2) / 24.0, (double)j["pass1"]!, 12);
        var notes = j["notes"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Contains(notes, n => n.StartsWith("samples.jsonl: the last line is incomplete"));
        Assert.Contains(notes, n => n.StartsWith("summary.json skipped"));
    }

    [Fact]
    public void TwoEvalsSideBySideListWhatOnlyOneSolves()
    {
        var catalog = new RunCatalog([fx.Root]);
        var c = EvalComparison.Compare(catalog.Get(Id("evals/a")), catalog.Get(Id("evals/b")));
        // A: 4,3,0,1,4,0; B: 4,0,4,1,1,0 of 4. Majority right: A p0 p1 p4, B p0 p2.
        Assert.Equal(["p1", "p4"], c["only_a"]!.AsArray().Select(x => (string)x!["id"]!));
        Assert.Equal(["p2"], c["only_b"]!.AsArray().Select(x => (string)x!["id"]!));
        Assert.Equal(1, (int)c["both_solve"]!);
        Assert.Equal(2, (int)c["neither_solves"]!); // p3, p5
        // Paired differences of pass@1: 0, .75, −1, 0, .75, 0 → mean 0.0833…, SE = sd/√6.
        double[] d = [0, .75, -1, 0, .75, 0];
        double mean = d.Average(), se = Math.Sqrt(d.Sum(x => (x - mean) * (x - mean)) / 5 / 6);
        Assert.Equal(mean, (double)c["pass1_difference"]!, 12);
        Assert.Equal(se, (double)c["pass1_difference_std_err"]!, 12);
        Assert.Throws<BoardRequestException>(() => EvalComparison.Compare(catalog.Get(Id("evals/a")), catalog.Get(Id("second"))));
    }

    [Fact]
    public void PipelineStagesComeInNaturalOrderWithTheEvalAfterEach()
    {
        using var dir = new TempDir();
        string pipe = Path.Combine(dir.Path, "pipe");
        void Metrics(string stage, string key)
        {
            Directory.CreateDirectory(Path.Combine(pipe, stage));
            File.WriteAllText(Path.Combine(pipe, stage, "metrics.jsonl"), MetricsLog.Serialize(new() { ["step"] = 1, [key] = 0.25 }) + "\n");
        }
        Metrics("10-grpo", "reward");
        Metrics("2-sft", "loss");
        Metrics("1-sft", "loss");
        CopyEval("evals/a", Path.Combine(pipe, "1-sft", "eval"));
        CopyEval("evals/b", Path.Combine(pipe, "10-grpo-eval"));
        File.WriteAllText(Path.Combine(pipe, "report.md"), "# pipeline\n");
        var catalog = new RunCatalog([pipe]);
        var group = catalog.Get("pipe");
        Assert.Equal("group", group.Kind);
        var j = catalog.Pipeline(group);
        var stages = j["stages"]!.AsArray();
        Assert.Equal(["1-sft", "2-sft", "10-grpo"], stages.Select(s => (string)s!["name"]!));
        Assert.Equal(["pipe/1-sft/eval", null, "pipe/10-grpo-eval"], stages.Select(s => (string?)s!["eval"]));
        Assert.Equal(0.5, (double)stages[0]!["pass1"]!, 12);
        Assert.Equal(10.0 / 24, (double)stages[2]!["pass1"]!, 12);
        Assert.Equal("# pipeline\n", (string)j["report"]!);

        // pipeline.json says the order when the folders' names do not.
        File.WriteAllText(Path.Combine(pipe, "pipeline.json"), "{\"stages\":[{\"name\":\"first\",\"dir\":\"2-sft\"},{\"name\":\"rl\",\"dir\":\"10-grpo\",\"eval\":\"1-sft/eval\"}]}");
        var ordered = catalog.Pipeline(group)["stages"]!.AsArray();
        Assert.Equal(["first", "rl"], ordered.Select(s => (string)s!["name"]!));
        Assert.Equal("pipe/1-sft/eval", (string?)ordered[1]!["eval"]);
    }

    void CopyEval(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in new[] { "samples.jsonl", "summary.json", "problems.jsonl" }) File.Copy(Path.Combine(fx.Root, from, f), Path.Combine(to, f));
    }
}
