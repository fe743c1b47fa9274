using R1Sharp.Eval;

namespace R1Sharp.Tests.Eval;

/// <summary>The pieces around the statistics: benchmark files, the results log, batching, reasoning splits, summary.</summary>
public class EvalPartsTests
{
    [Theory]
    [InlineData("math500", 500, "\\left( 3, \\frac{\\pi}{2} \\right)")]
    [InlineData("aime24", 30, null)]
    [InlineData("aime25", 30, "70")]
    [InlineData("amc23", 40, "27")]
    [InlineData("gsm8k", 1319, "18")]
    public void SharedBenchmarksLoadWithTheirGoldAnswers(string name, int count, string? firstAnswer)
    {
        var (n, problems) = Benchmark.Load(name, SharedData.Path("benchmarks"));
        Assert.Equal(name, n);
        Assert.Equal(count, problems.Count);
        Assert.Equal(count, problems.Select(p => p.Id).Distinct().Count());
        Assert.All(problems, p => Assert.False(string.IsNullOrWhiteSpace(p.Problem) || string.IsNullOrWhiteSpace(p.Answer), p.Id));
        if (firstAnswer != null) Assert.Equal(firstAnswer, problems[0].Answer);
        if (name == "math500")
        {
            Assert.Equal(("Precalculus", 2), (problems[0].Subject, problems[0].Level));
            Assert.Equal("test/precalculus/807.json", problems[0].Id);
        }
        if (name == "gsm8k") Assert.DoesNotContain(problems, p => p.Answer.Contains(',') || p.Answer.Contains("####"));
    }

    [Fact]
    public void ABadBenchmarkLineNamesTheFileAndLine()
    {
        using var dir = new TempDir();
        string path = dir.File("mine.jsonl");
        File.WriteAllText(path, "{\"question\":\"1+1?\",\"answer\":\"2\"}\n{\"question\":\"2+2?\"}\n");
        var e = Assert.Throws<R1SharpException>(() => Benchmark.Load(path));
        Assert.Equal($"{path}:2: no \"answer\" field", e.Message);
    }

    static SampleRecord Rec(string id, int sample, bool correct = false) =>
        new() { Settings = "s", ProblemId = id, Sample = sample, Gold = "1", Correct = correct, Text = "ü \"quoted\"\nline" };

    [Fact]
    public void ResultsLogCutsATornLastLineAndKeepsTheRest()
    {
        using var dir = new TempDir();
        string path = dir.File("samples.jsonl");
        using (var log = new ResultsLog(path)) { log.Append(Rec("a", 0)); log.Append(Rec("a", 1, true)); }
        File.AppendAllText(path, "{\"settings\":\"s\",\"problem_id\":\"b\",\"sam"); // killed mid-write
        using (var log = new ResultsLog(path))
        {
            Assert.Equal([("a", 0), ("a", 1)], log.Records.Select(r => (r.ProblemId, r.Sample)));
            Assert.Equal("ü \"quoted\"\nline", log.Records[0].Text);
            log.Append(Rec("b", 0));
        }
        Assert.Equal(3, File.ReadAllLines(path).Length);
        Assert.Equal(3, new ResultsLog(path).Records.Count);
    }

    [Fact]
    public void ForeignLinesInTheMiddleAreAnErrorNotSilentlyDropped()
    {
        using var dir = new TempDir();
        string path = dir.File("samples.jsonl");
        File.WriteAllText(path, "not json\n");
        var e = Assert.Throws<R1SharpException>(() => new ResultsLog(path));
        Assert.StartsWith($"{path}:1: not a results line", e.Message);
    }

    [Fact]
    public void LocalBatchesAreRunsOfOneProblem_OrAcrossProblemsWhenTheBudgetIsFixed()
    {
        var s = new EvalSettings { Model = "m" };
        var p0 = new BenchProblem("p0", "q", "1");
        var p1 = new BenchProblem("p1", "q", "1");
        SampleJob J(int pi, BenchProblem p, int j) => new(pi, p, j, s.SeedFor(pi, j), "q");
        // Sample 2 of p0 is already done (resume); every row samples with its own seed, so gaps do not matter.
        var jobs = new[] { J(0, p0, 0), J(0, p0, 1), J(0, p0, 3), J(1, p1, 0), J(1, p1, 1), J(1, p1, 2) };
        (string, int)[][] Split(int max, bool across) =>
            R1Sharp.Eval.LocalBackend.Batches(jobs, max, across).Select(b => b.Select(j => (j.Problem.Id, j.Sample)).ToArray()).ToArray();
        Assert.Equal([[("p0", 0), ("p0", 1)], [("p0", 3)], [("p1", 0), ("p1", 1)], [("p1", 2)]], Split(2, across: false));
        Assert.Equal([[("p0", 0), ("p0", 1), ("p0", 3), ("p1", 0)], [("p1", 1), ("p1", 2)]], Split(4, across: true));
    }

    [Fact]
    public void EndpointAnswersAreSplitFromReasoningTheWayAServerWould()
    {
        var split = EndpointBackend.Split("let me see\n</think>\n\nSo \\boxed{4}.", null, "stop", 9);
        Assert.Equal(("let me see", "So \\boxed{4}."), (split.Reasoning, split.Answer));
        var tagged = EndpointBackend.Split("<think>\nhmm\n</think>\nIt is 4.", null, "stop", 9);
        Assert.Equal(("hmm", "It is 4."), (tagged.Reasoning, tagged.Answer));
        var served = EndpointBackend.Split("It is 4.", "hmm", "stop", 9); // server filled reasoning_content
        Assert.Equal(("hmm", "It is 4."), (served.Reasoning, served.Answer));
        var plain = EndpointBackend.Split("It is 4.", null, "stop", 9);
        Assert.Equal((null, "It is 4."), (plain.Reasoning, plain.Answer));
    }

    [Fact]
    public void SettingsKeyChangesWithSamplingButNotWithK()
    {
        var a = new EvalSettings { Model = "m" };
        Assert.Equal(a.Key, (a with { }).Key);
        Assert.NotEqual(a.Key, (a with { Temperature = 0.7f }).Key);
        Assert.NotEqual(a.Key, (a with { MaxTokens = 100 }).Key);
        Assert.NotEqual(a.Key, (a with { Model = "n" }).Key);
        Assert.Equal("Find x.\nPlease reason step by step, and put your final answer within \\boxed{}.", a.UserTurn("Find x."));
    }

    [Fact]
    public void SummaryVotesGradesAndGroupsBySubjectAndLevel()
    {
        var problems = new[] { new BenchProblem("p", "q", "1/2", "Algebra", 1), new BenchProblem("r", "q", "3", "Geometry", 5) };
        SampleRecord R(string id, int j, string? extracted, bool ok, int tokens) =>
            new() { Settings = "k", ProblemId = id, Sample = j, Gold = "", Extracted = extracted, Correct = ok, CompletionTokens = tokens, FinishReason = j == 0 ? "length" : "stop" };
        var records = new[]
        {
            R("p", 0, "0.5", true, 10), R("p", 1, "2", false, 20), R("p", 2, "\\frac12", true, 30),
            R("r", 0, "4", false, 40), R("r", 1, "4", false, 50), R("r", 2, "3", true, 60),
        };
        var (s, per) = EvalSummary.Compute("b", new EvalSettings { Model = "m" }, problems, records);
        Assert.Equal((3, 2, 6), (s.K, s.Problems, s.Samples));
        Assert.Equal(0.5, s.Pass1, 12);                                  // (2/3 + 1/3) / 2
        Assert.Equal(Math.Sqrt((2 * Math.Pow(1.0 / 6, 2)) / 1 / 2), s.Pass1StdErr, 12);
        Assert.Equal((1 + 2.0 / 3) / 2, s.PassAtK["2"], 12);            // p: 2 of 3 right → 1; r: 1 − C(2,2)/C(3,2) = 2/3
        Assert.Equal(0.5, s.ConsAtK, 12);                                 // p: 0.5 ≡ \frac12 wins; r: "4" wins, wrong
        Assert.Equal(35, s.MeanCompletionTokens, 12);
        Assert.Equal(2.0 / 6, s.TruncatedFraction, 12);
        Assert.Equal(["Algebra", "Geometry"], s.BySubject!.Keys);
        Assert.Equal(1.0, s.ByLevel!["1"].ConsAtK);
        Assert.Equal(("0.5", 2, true), (per[0].ConsensusAnswer, per[0].ConsensusVotes, per[0].ConsensusCorrect));
        Assert.Equal(("4", 2, false), (per[1].ConsensusAnswer, per[1].ConsensusVotes, per[1].ConsensusCorrect));
    }
}
