using R1Sharp.Code;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Training;

namespace R1Sharp.Tests.Code;

/// <summary>The code task of `r1 zero --task code`: its corpus answers pass their hidden tests in the sandbox, a wrong
/// value fails, and the reward the GRPO phase uses (code_accuracy on R1-Zero's answer tag) agrees.</summary>
[Collection(SandboxCollection.Name)]
public sealed class CodeTaskTests(SandboxFixture fx) : IClassFixture<SandboxFixture>
{
    [Fact]
    public void CorpusAnswersPassTheirHiddenTestsAndWrongOnesFail()
    {
        var task = new CodeTask(2, fx.Sandbox);
        var problems = task.Sample(3, seed: 5, heldOut: true);
        var rewards = new RewardSet(RewardRegistry.Build(new GrpoConfig { RewardFuncs = ["code_accuracy", "format"] }, code: fx.Sandbox), TimeSpan.FromSeconds(30));
        var completions = problems.SelectMany(p => new[]
        {
            task.Completion(p, showSteps: true),                                      // " <think>python</think> <answer>37+48</answer>"
            task.Completion(p, showSteps: false),                                     // the value
            $" <think></think> <answer>{p.A + p.B + 1}</answer>",                     // a wrong value
            $" <think></think> <answer>__import__('os').system('true')</answer>",    // code that is not the value
        }).ToList();
        var references = problems.SelectMany(p => Enumerable.Repeat(p.Answer, 4)).ToList();
        var scores = rewards.Score(completions.Select(_ => "").ToList(), completions, references);
        Assert.Equal(problems.SelectMany(_ => new double[] { 1, 1, 0, 0 }), scores.PerFunction["code_accuracy"]);
        Assert.All(scores.PerFunction["format"], f => Assert.Equal(1, f));
        Assert.True(task.Equal!(problems[0].Answer, $"{problems[0].A}+{problems[0].B}"));
        Assert.False(task.Equal!(problems[0].Answer, "0"));
        Assert.Contains("x", task.Completion(problems[0], true) + "x"); // the prompt is the addition task's
        Assert.Equal(new AdditionTask(2).Sample(3, 5, true).Select(p => p.Prompt), problems.Select(p => p.Prompt));
    }

    /// <summary>`r1 zero`'s default corpus gives values without the expression as round estimates, as the addition
    /// task does: they pass only when the sum is a multiple of ten, so only the expression is reliably right.</summary>
    [Fact]
    public void EstimatedValuesPassOnlyWhenTheSumIsRound()
    {
        var task = new CodeTask(2, fx.Sandbox);
        var problems = task.Sample(40, seed: 9, heldOut: false);
        var round = problems.First(p => (p.A + p.B) % 10 == 0);
        var other = problems.First(p => (p.A + p.B) % 10 != 0);
        Assert.Equal($" <think></think> <answer>{AdditionTask.Estimate(other)}</answer>", task.Completion(other, showSteps: false, estimate: true));
        Assert.True(task.Equal!(round.Answer, AdditionTask.Estimate(round).ToString()));
        Assert.False(task.Equal!(other.Answer, AdditionTask.Estimate(other).ToString()));
        Assert.Equal(task.Completion(other, showSteps: true), task.Completion(other, showSteps: true, estimate: true));
    }
}
