using R1Sharp.Rewards;

namespace R1Sharp.Tests.Rewards;

public class RewardTests
{
    [Theory]
    [InlineData("<think>1+2</think> <answer>3</answer>", "3")]
    [InlineData("<answer>1</answer> then <answer> 42 </answer>", "42")]      // the last answer block counts
    [InlineData("so \\boxed{\\frac{1}{2}} is it", "\\frac{1}{2}")]            // balanced braces
    [InlineData("no answer here", null)]
    public void ExtractAnswer(string completion, string? expected) => Assert.Equal(expected, AccuracyReward.ExtractAnswer(completion));

    [Theory]
    [InlineData("1000", "1,000", true)]
    [InlineData("3", "3.0", true)]
    [InlineData("-7", "-7", true)]
    [InlineData("3", "4", false)]
    [InlineData("x+1", "x+1", true)]
    [InlineData("x+1", "1+x", false)]
    public void ExactNumeric(string gold, string pred, bool equal) => Assert.Equal(equal, AccuracyReward.ExactNumeric(gold, pred));

    [Fact]
    public void Accuracy_UsesTheComparisonItIsGiven()
    {
        var plain = AccuracyReward.Create();
        Assert.Equal(1, plain.Score("q", "<think></think><answer>12</answer>", "12"));
        Assert.Equal(0, plain.Score("q", "<think></think><answer>13</answer>", "12"));
        Assert.Equal(0, plain.Score("q", "12", "12")); // no answer block: nothing to compare
        var lenient = AccuracyReward.Create((gold, pred) => pred.StartsWith(gold));
        Assert.Equal(1, lenient.Score("q", "<answer>12 apples</answer>", "12"));
    }

    [Theory]
    [InlineData(" <think>a</think> <answer>b</answer>", true)]
    [InlineData("<think>\nmulti\nline\n</think>\n<answer>5</answer>\n", true)]
    [InlineData("<think></think><answer>5</answer>", true)]
    [InlineData("<answer>5</answer>", false)]
    [InlineData("<think>a</think> <answer>5</answer> trailing", false)]
    [InlineData("<think>a<answer>x</answer></think><answer>5</answer>", false)]
    [InlineData("<think>a</think>", false)]
    public void Format(string completion, bool ok) => Assert.Equal(ok, FormatReward.IsWellFormed(completion));

    [Theory]
    // DAPO eq. 13 with L_max 100, L_cache 20: free up to 80, then linear to −1 at 100, −1 beyond.
    [InlineData(50, 0)]
    [InlineData(80, 0)]
    [InlineData(90, -0.5)]
    [InlineData(100, -1)]
    [InlineData(120, -1)]
    public void Overlong(int length, double expected) => Assert.Equal(expected, OverlongReward.Penalty(length, 100, 20), 12);

    [Fact]
    public void RewardSet_WeighsAndSurvivesFailingRewards()
    {
        var log = new List<string>();
        var set = new RewardSet([
            AccuracyReward.Create(weight: 2),
            new RewardFunction("throws", (_, c, _) => c == "boom" ? throw new InvalidOperationException("bad") : 1),
            new RewardFunction("nan", (_, _, _) => double.NaN),
        ]) { OnFailure = log.Add };
        var s = set.Score(["q", "q"], ["<answer>4</answer>", "boom"], ["4", "4"]);
        Assert.Equal([2 + 1, 0 + 0], s.Total);
        Assert.Equal([1.0, 0.0], s.PerFunction["throws"]);
        Assert.Equal(3, s.Failures); // one throw, two NaNs
        Assert.Contains(log, m => m.Contains("throws") && m.Contains("InvalidOperationException"));
    }

    [Fact]
    public void RewardSet_ScoresASlowRewardZero()
    {
        var set = new RewardSet([new RewardFunction("slow", (_, _, _) => { Thread.Sleep(30); return 1; })], TimeSpan.FromMilliseconds(1));
        var s = set.Score(["q"], ["c"], ["r"]);
        Assert.Equal(0, s.Total[0]);
        Assert.Equal(1, s.Failures);
    }

    [Fact]
    public void RewardSet_AHangingCall_IsAbandonedAfterTheTimeout_AndTheBatchGoesOn()
    {
        using var release = new ManualResetEventSlim();
        var log = new List<string>();
        var set = new RewardSet([
            new RewardFunction("hangs", (_, c, _) => { if (c == "hang") release.Wait(); return 1; }),
            new RewardFunction("fast", (_, _, _) => 0.5),
        ], TimeSpan.FromMilliseconds(200)) { OnFailure = log.Add };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var s = set.Score(["q", "q", "q"], ["a", "hang", "b"], ["r", "r", "r"]);
        clock.Stop();
        release.Set();
        Assert.Equal([1.0, 0.0, 1.0], s.PerFunction["hangs"]);
        Assert.Equal([1.5, 0.5, 1.5], s.Total);
        Assert.Equal(1, s.Failures);
        Assert.Equal(1, set.AbandonedCalls("hangs"));
        Assert.Contains(log, m => m.StartsWith("reward hangs did not return within 0.2s: scored 0") && m.Contains("abandoned"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"scoring took {clock.Elapsed}"); // bounded, not a speed test
    }

    [Fact]
    public void RewardSet_AFunctionThatKeepsHanging_IsDisabledAfterTheCap()
    {
        using var release = new ManualResetEventSlim();
        var log = new List<string>();
        var set = new RewardSet([new RewardFunction("stuck", (_, _, _) => { release.Wait(); return 1; })],
            TimeSpan.FromMilliseconds(50), maxAbandonedCalls: 2) { OnFailure = log.Add };
        var s = set.Score(["q", "q", "q", "q"], ["a", "b", "c", "d"], ["r", "r", "r", "r"]);
        Assert.Equal(new double[4], s.Total);
        Assert.Equal(4, s.Failures);
        Assert.Equal(2, set.AbandonedCalls("stuck"));
        Assert.True(set.IsDisabled("stuck"));
        Assert.Single(log, m => m == "reward stuck disabled for the rest of the run: 2 calls timed out; it scores 0 from now on");
        // Later batches score 0 without calling it (no new thread is left hanging).
        var again = set.Score(["q"], ["e"], ["r"]);
        Assert.Equal([0.0], again.Total);
        Assert.Equal(2, set.AbandonedCalls("stuck"));
        release.Set();
    }
}
