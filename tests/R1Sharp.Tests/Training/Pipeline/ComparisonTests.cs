using R1Sharp.Training.Pipeline;

namespace R1Sharp.Tests.Training.Pipeline;

/// <summary>The report's ranking of compared stages and what it says against an expected winner (the embedded proof
/// expects R1 §4.1's distilled student): it must state the result whatever it is.</summary>
public class ComparisonTests
{
    static StageRecord Stage(string name, double pass1, double se) =>
        new(name, "sft", "", null, null, 1, 1, 1, new StageEval(pass1, se, pass1, 20, 200, 4, 1), 1);

    static Comparison Of(params StageRecord[] records) => Comparison.Of(records.Select(r => r.Name).ToList(), records)!;

    [Fact]
    public void Winner_Margin_AndClearness_FollowTheStandardErrors()
    {
        var c = Of(Stage("base", 0.60, 0.02), Stage("grpo", 0.70, 0.02), Stage("sft", 0.80, 0.02));
        Assert.Equal(("sft", "grpo"), (c.Winner, c.RunnerUp));
        Assert.Equal(10.0, c.MarginPoints, 9);
        Assert.True(c.Clear);                                             // 10 points > 2 × √(2² + 2²) = 5.66
        Assert.False(Of(Stage("grpo", 0.70, 0.03), Stage("sft", 0.75, 0.03)).Clear); // 5 points < 2 × 4.24
        Assert.Null(Comparison.Of(["grpo", "sft"], [Stage("grpo", 0.7, 0.02)]));     // a stage not run yet: pending
    }

    [Fact]
    public void AgainstAnExpectedWinner_EveryOutcomeIsSaid()
    {
        Assert.StartsWith("This run agrees: sft won",
            Of(Stage("grpo", 0.70, 0.02), Stage("sft", 0.80, 0.02)).Against("sft"));
        Assert.Equal("This run disagrees: grpo won (80.0%), sft scored 70.0%.",
            Of(Stage("grpo", 0.80, 0.02), Stage("sft", 0.70, 0.02)).Against("sft"));
        string lean = Of(Stage("grpo", 0.72, 0.03), Stage("sft", 0.75, 0.03)).Against("sft");
        Assert.StartsWith("This run leans the same way but does not show it: sft is ahead of grpo by 3.0 points", lean);
        Assert.DoesNotContain("ceiling", lean);
        // Both leaders near 100%: the report blames the task's ceiling, not the methods.
        string tie = Of(Stage("base", 0.608, 0.021), Stage("grpo", 0.99375, 0.0035), Stage("sft", 1.0, 0.0)).Against("sft");
        Assert.Contains("by 0.6 points, within twice the standard error", tie);
        Assert.Contains("ceiling", tie);
        string other = Of(Stage("base", 0.60, 0.03), Stage("grpo", 0.66, 0.03), Stage("sft", 0.64, 0.03)).Against("sft");
        Assert.Equal("This run does not confirm it: grpo is ahead (66.0%), sft scored 64.0%, within twice the standard error.", other);
    }

    const string Yaml = "output_dir: run\ncompare: [a, b]\nexpected_winner: {0}\nexpectation: \"the paper\"\nstages:\n  - name: a\n    kind: pretrain\n  - name: b\n    kind: pretrain\n";

    [Fact]
    public void ExpectedWinner_IsParsed_AndMustBeCompared()
    {
        var recipe = PipelineRecipe.Parse(string.Format(Yaml, "b"), "r.yaml", Path.GetTempPath());
        Assert.Equal(("b", "the paper"), (recipe.ExpectedWinner, recipe.Expectation));
        var e = Assert.Throws<R1SharpException>(() => PipelineRecipe.Parse(string.Format(Yaml, "c"), "r.yaml", Path.GetTempPath()));
        Assert.Equal("r.yaml:3: expected_winner \"c\" is not one of compare (a, b)", e.Message);
        Assert.Equal("student_sft", EmbeddedRecipe.Load(Path.Combine(Path.GetTempPath(), "unused")).ExpectedWinner);
    }
}
