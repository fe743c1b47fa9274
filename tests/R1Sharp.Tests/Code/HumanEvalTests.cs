using System.Text.Json.Nodes;
using R1Sharp.Code;

namespace R1Sharp.Tests.Code;

/// <summary>
/// HumanEval in the local sandbox against the benchmark's own reference: every one of the 164 canonical solutions
/// passes its tests, and a wrong body (returning None) fails every one. MultiPL-E's C# translation has no canonical
/// solutions, so a dozen correct and wrong C# bodies are written here. All runs go concurrently through the sandbox,
/// which bounds them by its slots.
/// </summary>
[Collection(SandboxCollection.Name)]
public sealed class HumanEvalTests(SandboxFixture fx, PerRunSandboxFixture perRun) : IClassFixture<SandboxFixture>, IClassFixture<PerRunSandboxFixture>
{
    static List<(CodeRow Row, JsonObject Json)> Load(string file) =>
        File.ReadLines(SharedData.Path("benchmarks", file)).Select((l, i) => (JsonNode.Parse(l)!.AsObject(), i))
            .Select(x => (CodeRows.Parse(x.Item1, $"{file}:{x.i + 1}")!, x.Item1)).ToList();

    /// <summary>On the default sandbox (Python through the fork server where it is used) and on the per-run path.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task All164CanonicalSolutionsPassAndAWrongBodyFailsEach(bool forkServer)
    {
        var sandbox = (forkServer ? fx : perRun).Sandbox;
        Assert.False(!forkServer && sandbox.UsesPythonForkServer);
        var problems = Load("humaneval.jsonl");
        Assert.Equal(164, problems.Count);
        var canonical = problems.Select(p => CodeJudge.JudgeAsync(sandbox, p.Row.Spec, p.Json["canonical_solution"]!.GetValue<string>(), chat: false)).ToArray();
        var wrong = problems.Select(p => CodeJudge.JudgeAsync(sandbox, p.Row.Spec, "    return None\n", chat: false)).ToArray();
        var good = await Task.WhenAll(canonical);
        var bad = await Task.WhenAll(wrong);
        var notPassed = good.Select((j, i) => (j, id: problems[i].Row.Id)).Where(x => !x.j.AllPassed).Select(x => $"{x.id}: {x.j.Reason}").ToList();
        Assert.True(notPassed.Count == 0, string.Join("\n", notPassed));
        var notFailed = bad.Select((j, i) => (j, id: problems[i].Row.Id)).Where(x => x.j.AllPassed).Select(x => x.id).ToList();
        Assert.True(notFailed.Count == 0, "a body returning None passed: " + string.Join(", ", notFailed));
        Assert.Contains(bad, j => j.Verdict == CodeVerdict.Failed);         // assertion failures
        Assert.Contains(bad, j => j.Verdict == CodeVerdict.RuntimeError);   // e.g. None + 1
    }

    /// <summary>(problem number, correct body, wrong body) in MultiPL-E's completion style: the method's body, without
    /// its closing brace (the tests' first line closes it).</summary>
    static readonly (int N, string Right, string Wrong)[] CSharp =
    [
        (0, "for (int i = 0; i < numbers.Count; i++) for (int j = 0; j < numbers.Count; j++) if (i != j && Math.Abs(numbers[i] - numbers[j]) < threshold) return true; return false;",
            "for (int i = 0; i + 1 < numbers.Count; i++) if (Math.Abs(numbers[i] - numbers[i + 1]) < threshold) return true; return false;"),
        (2, "return number - (float)Math.Floor(number);", "return (float)Math.Floor(number);"),
        (7, "return strings.Where(s => s.Contains(substring)).ToList();", "return strings.Where(s => s.StartsWith(substring)).ToList();"),
        (13, "while (b != 0) { long t = a % b; a = b; b = t; } return a;", "return Math.Min(a, b);"),
        (15, "return string.Join(\" \", Enumerable.Range(0, (int)n + 1));", "return string.Join(\" \", Enumerable.Range(0, (int)n));"),
        (23, "return str.Length;", "return str.Trim().Length + 1;"),
        (30, "return l.Where(x => x > 0).ToList();", "return l.Where(x => x >= 0).ToList();"),
        (34, "return l.Distinct().OrderBy(x => x).ToList();", "return l.OrderBy(x => x).ToList();"),
        (35, "return l.Max();", "return l.Min();"),
        (42, "return l.Select(x => x + 1).ToList();", "return l;"),
        (48, "return text.SequenceEqual(text.Reverse());", "return text.Length % 2 == 1;"),
        (53, "return x + y;", "return x - y;"),
        (55, "long a = 0, b = 1; for (long i = 0; i < n; i++) { long t = a + b; a = b; b = t; } return a;", "return n;"),
        (60, "return n * (n + 1) / 2;", "return n * n;"),
    ];

    [Fact]
    public async Task CSharpCorrectSolutionsPassAndWrongOnesFail()
    {
        var problems = Load("humaneval_cs.jsonl").ToDictionary(p => int.Parse(p.Row.Id!.Split('_')[1]));
        var right = CSharp.Select(c => CodeJudge.JudgeAsync(fx.Sandbox, problems[c.N].Row.Spec, "        " + c.Right, chat: false)).ToArray();
        var wrong = CSharp.Select(c => CodeJudge.JudgeAsync(fx.Sandbox, problems[c.N].Row.Spec, "        " + c.Wrong, chat: false)).ToArray();
        var good = await Task.WhenAll(right);
        var bad = await Task.WhenAll(wrong);
        for (int i = 0; i < CSharp.Length; i++)
        {
            Assert.True(good[i].AllPassed, $"HumanEval_{CSharp[i].N}: {good[i].Reason}");
            Assert.True(bad[i].Verdict == CodeVerdict.Failed, $"HumanEval_{CSharp[i].N} wrong body: {bad[i].Reason}");
        }
        // The same solution as a chat answer: the whole method in a fenced block, or a whole class.
        var p53 = problems[53].Row.Spec;
        Assert.True((await CodeJudge.JudgeAsync(fx.Sandbox, p53, "<think>easy</think>\n```csharp\npublic static long Add(long x, long y) { return x + y; }\n```", chat: true)).AllPassed);
        Assert.True((await CodeJudge.JudgeAsync(fx.Sandbox, p53, "```cs\nusing System;\nclass Problem { public static long Add(long x, long y) => x + y; }\n```", chat: true)).AllPassed);
        Assert.Equal(CodeVerdict.Failed, (await CodeJudge.JudgeAsync(fx.Sandbox, p53, "no code here", chat: true)).Verdict);
    }

    [Fact]
    public void MultiplEListComparisonsAreStructural()
    {
        // MultiPL-E compares lists with .Equals, reference equality in .NET; the harness makes it structural.
        var spec = Load("humaneval_cs.jsonl").Single(p => p.Row.Id == "HumanEval_42_incr_list").Row.Spec;
        Assert.Contains("R1SharpStructural.Equal(", spec.Harness);
        Assert.DoesNotContain(").Equals(", spec.Harness);
    }
}
