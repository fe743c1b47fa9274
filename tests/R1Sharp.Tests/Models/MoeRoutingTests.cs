using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>DeepSeekMoE's routing on hand-made scores: which experts each topk_method chooses, that
/// e_score_correction_bias only selects, and how weights are normalised and scaled (V3 always scales, V2 only when it
/// does not normalise). Scores are given through their logits (sigmoid's inverse), so each case reads as scores.</summary>
public class MoeRoutingTests
{
    /// <summary>8 experts in 4 groups of two: group 0 has the single best expert, group 1 the best pair.</summary>
    static readonly float[] Scores = [0.95f, 0.05f, 0.60f, 0.61f, 0.50f, 0.10f, 0.20f, 0.30f];

    static Tensor Logits(params float[][] rows) =>
        tensor(rows.SelectMany(r => r.Select(s => MathF.Log(s / (1 - s)))).ToArray(), [rows.Length, rows[0].Length]);

    static DeepseekV3Config Config(string method, int k = 2, int groups = 4, int keep = 1, bool norm = true, double factor = 1.0, string scoring = "sigmoid") =>
        new() { NRoutedExperts = 8, NumExpertsPerTok = k, NGroup = groups, TopkGroup = keep, TopkMethod = method, NormTopkProb = norm, RoutedScalingFactor = factor, ScoringFunc = scoring };

    static (long[] Experts, float[] Weights) Route(DeepseekV3Config c, Tensor logits, Tensor? bias = null)
    {
        var (idx, w, _) = MoeRouting.Route(logits, c, bias);
        // Sorted by expert, so a case reads as a set.
        var pairs = idx[0].data<long>().ToArray().Zip(w[0].data<float>().ToArray()).OrderBy(p => p.First).ToArray();
        return (pairs.Select(p => p.First).ToArray(), pairs.Select(p => p.Second).ToArray());
    }

    [Fact]
    public void GreedyTakesTheTopKOverAllExperts()
    {
        var (experts, weights) = Route(Config("greedy", norm: false), Logits(Scores));
        Assert.Equal([0L, 3L], experts);
        Assert.Equal(0.95f, weights[0], 5);
        Assert.Equal(0.61f, weights[1], 5);
    }

    [Fact]
    public void GroupLimitedGreedyRanksGroupsByTheirBestExpert()
    {
        // Group 0's best (0.95) beats group 1's (0.61): with one group allowed, both experts come from group 0.
        var (experts, weights) = Route(Config("group_limited_greedy", norm: false), Logits(Scores));
        Assert.Equal([0L, 1L], experts);
        Assert.Equal(0.05f, weights[1], 5);
        // Two groups allowed: 0 and 1 (best 0.95, 0.61); the top two of their experts are 0 and 3.
        Assert.Equal([0L, 3L], Route(Config("group_limited_greedy", keep: 2, norm: false), Logits(Scores)).Experts);
    }

    [Fact]
    public void NoauxTcRanksGroupsByTheSumOfTheirTwoBestAndUsesTheBiasOnlyToSelect()
    {
        // Group 1's pair sums to 1.21, group 0's to 1.00: noaux_tc picks group 1 where group_limited_greedy picked 0.
        var (experts, weights) = Route(Config("noaux_tc"), Logits(Scores));
        Assert.Equal([2L, 3L], experts);
        Assert.Equal(0.60f / 1.21f, weights[0], 5);
        Assert.Equal(0.61f / 1.21f, weights[1], 5);

        // A bias of +1 on experts 6 and 7 lifts group 3 (0.2 + 0.3 + 2) above the rest: they are chosen, but weighted by
        // their unbiased scores, normalised (0.2 / 0.5 and 0.3 / 0.5), then scaled.
        var bias = tensor(new float[] { 0, 0, 0, 0, 0, 0, 1, 1 });
        var biased = Route(Config("noaux_tc", factor: 2.5), Logits(Scores), bias);
        Assert.Equal([6L, 7L], biased.Experts);
        Assert.Equal(0.4f * 2.5f, biased.Weights[0], 5);
        Assert.Equal(0.6f * 2.5f, biased.Weights[1], 5);
        // Other methods ignore the bias.
        Assert.Equal([0L, 3L], Route(Config("greedy"), Logits(Scores), bias).Experts);
    }

    [Fact]
    public void ExpertsOfUnchosenGroupsNeverWinEvenWhenTheAllowedBiasedScoresAreNegative()
    {
        // Every biased score of groups 0 and 1 is negative and group 1 (experts 2, 3) scores best. transformers fills
        // the other groups with 0.0, which would beat -0.4 and pick a masked expert; DeepSeek's model.py fills -inf.
        var bias = tensor(new float[] { -5, -5, -1, -1, -5, -5, -5, -5 });
        var (experts, _) = Route(Config("noaux_tc", keep: 1), Logits(Scores), bias);
        Assert.Equal([2L, 3L], experts);
    }

    [Fact]
    public void NormalisationAndScalingFollowEachRelease()
    {
        var logits = Logits(Scores);
        // V3: normalised to sum 1, then times routed_scaling_factor.
        var v3 = Route(Config("greedy", norm: true, factor: 2.5), logits);
        Assert.Equal(2.5f, v3.Weights.Sum(), 5);
        // V2 (modeling_deepseek.py of DeepSeek-V2): normalised weights are not scaled, unnormalised ones are.
        var v2 = new DeepseekV2Config { NRoutedExperts = 8, NumExpertsPerTok = 2, NGroup = 1, TopkGroup = 1, TopkMethod = "greedy", NormTopkProb = true, RoutedScalingFactor = 16, ScoringFunc = "sigmoid" };
        Assert.Equal(1f, Route(v2, logits).Weights.Sum(), 5);
        var v2Unnormalised = Route(v2 with { NormTopkProb = false }, logits);
        Assert.Equal(16 * 0.95f, v2Unnormalised.Weights[0], 4);
        // One expert per token: never normalised (k > 1 only).
        Assert.Equal(0.95f * 2.5f, Route(Config("greedy", k: 1, norm: true, factor: 2.5), logits).Weights[0], 5);
    }

    [Fact]
    public void SoftmaxScoresAreTheProbabilitiesOfTheLogits()
    {
        float[] raw = [1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 0.25f, 1.5f];
        double sum = raw.Sum(v => Math.Exp(v));
        var (experts, weights) = Route(Config("greedy", norm: false, scoring: "softmax", factor: 1), tensor(raw, [1, 8]));
        Assert.Equal([1L, 4L], experts);
        Assert.Equal((float)(Math.Exp(2.0) / sum), weights[0], 5);
        Assert.Equal((float)(Math.Exp(3.0) / sum), weights[1], 5);
    }
}
