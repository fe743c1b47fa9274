using R1Sharp.Code;
using R1Sharp.Rewards;
using R1Sharp.Training;

namespace R1Sharp.Tests.Code;

/// <summary>The code rewards through the reward registry and RewardSet, on the local sandbox: accuracy, pass rate,
/// format, references in open-r1's verification_info and human-eval's shapes.</summary>
[Collection(SandboxCollection.Name)]
public sealed class CodeRewardTests(SandboxFixture fx) : IClassFixture<SandboxFixture>
{
    // open-r1's verification_info: the language and stdin/stdout test cases.
    const string Doubling = """{"language": "python", "test_cases": [{"input": "2\n", "output": "4\n", "type": "stdin_stdout"}, {"input": "5\n", "output": "10\n", "type": "stdin_stdout"}, {"input": "0\n", "output": "0\n", "type": "stdin_stdout"}]}""";
    const string HumanEvalStyle = """{"prompt": "def add(x, y):\n", "test": "def check(f):\n    assert f(1, 2) == 3\n    assert f(-1, 1) == 0\n", "entry_point": "add"}""";

    static string Answer(string code, string lang = "python") => $"<think>\nlet me see\n</think>\nHere it is:\n```{lang}\n{code}\n```\n";

    [Fact]
    public void AccuracyPassRateAndFormatThroughTheRegistry()
    {
        var config = new GrpoConfig { RewardFuncs = ["code_accuracy", "code_pass_rate", "code_format"] };
        var set = new RewardSet(RewardRegistry.Build(config, code: fx.Sandbox), TimeSpan.FromSeconds(30));
        string[] completions =
        [
            Answer("print(2 * int(input()))"),                          // all pass
            Answer("n = int(input())\nprint(4 if n == 2 else n + n + 1)"), // 1 of 3
            Answer("print(int(input()) ** 2)"),                         // 2 and 0 right, 5 wrong: 2 of 3
            "no code at all",
            Answer("while True: pass"),                                 // timeout
            Answer("def add(x, y):\n    return x + y"),
            Answer("def add(x, y):\n    return x * y") + "\n```python\nprint(1)\n```",   // two blocks: the last is taken, format fails
        ];
        string[] references = [Doubling, Doubling, Doubling, Doubling, Doubling, HumanEvalStyle, HumanEvalStyle];
        var scores = set.Score(completions.Select(_ => "p").ToList(), completions, references);
        Assert.Equal(0, scores.Failures);
        Assert.Equal([1, 0, 0, 0, 0, 1, 0], scores.PerFunction["code_accuracy"]);
        Assert.Equal(new[] { 1, 1 / 3.0, 2 / 3.0, 0, 0, 1, 0 }, scores.PerFunction["code_pass_rate"], new Tolerance(1e-12));
        Assert.Equal([1, 1, 1, 0, 1, 1, 0], scores.PerFunction["code_format"]);
    }

    [Fact]
    public void FormatWantsOneBlockOfTheLanguageAfterTheReasoning()
    {
        var py = CodeRewards.Format("python");
        Assert.Equal(1, py.Score("", Answer("print(1)"), ""));
        Assert.Equal(1, py.Score("", Answer("print(1)", "py"), ""));
        Assert.Equal(0, py.Score("", Answer("print(1)", "csharp"), ""));
        Assert.Equal(0, py.Score("", "```python\nprint(1)\n```", ""));                       // reasoning never closed
        Assert.Equal(0, py.Score("", "<think>```python\nprint(1)\n```</think>\nno code", "")); // the block is in the reasoning
        Assert.Equal(1, CodeRewards.Format("csharp").Score("", Answer("class P {}", "cs"), ""));
    }

    [Fact]
    public void ABadReferenceIsAFailureNamedNotACrash()
    {
        var config = new GrpoConfig { RewardFuncs = ["code_accuracy"] };
        var failures = new List<string>();
        var set = new RewardSet(RewardRegistry.Build(config, code: fx.Sandbox)) { OnFailure = failures.Add };
        var scores = set.Score(["p"], [Answer("print(1)")], ["42"]);
        Assert.Equal(0, scores.Total[0]);
        Assert.Equal(1, scores.Failures);
        Assert.Contains(failures, f => f.Contains("not a code problem's tests"));
    }

    [Fact]
    public void RecipeKeysConfigureTheSandbox()
    {
        var c = RecipeLoader.Parse("reward_funcs: [code_accuracy, code_format]\ncode_language: csharp\nsandbox_isolation: rlimits\nsandbox_timeout: 3\ncode_languages:\n  ruby: ruby {file}\n", "recipe.yaml");
        var s = CodeExecutors.FromRecipe(c);
        Assert.Equal(SandboxIsolation.Rlimits, s.Isolation);
        Assert.Equal(3, s.Limits.WallSeconds);
        Assert.Equal("ruby {file}", s.Languages!["ruby"]);
        var e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse("code_provider: piston\n", "recipe.yaml"));
        Assert.Contains("sandbox_endpoint", e.Message);
        Assert.Throws<R1SharpException>(() => RecipeLoader.Parse("sandbox_isolation: none\n", "recipe.yaml"));
    }
}

/// <summary>Compares doubles within a tolerance (xunit's Equal over sequences).</summary>
sealed class Tolerance(double eps) : IEqualityComparer<double>
{
    public bool Equals(double a, double b) => Math.Abs(a - b) <= eps;
    public int GetHashCode(double d) => 0;
}
