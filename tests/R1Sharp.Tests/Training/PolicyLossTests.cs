using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training;

public class PolicyLossTests
{
    // Two sequences: 2 and 1 completion tokens (third column is padding), advantages +1 and −0.5.
    static readonly float[,] MaskData = { { 1, 1, 0 }, { 1, 0, 0 } };

    static PolicyLossOutput Run(string lossType, float[,] logRatio, double beta = 0, float[,]? refMinusLogp = null,
        bool sequence = false, double eps = 0.2, double epsHigh = 0.2)
    {
        var logp = tensor(new float[,] { { -1, -2, -3 }, { -0.5f, -1, -1 } });
        var old = logp - tensor(logRatio);
        var refLp = refMinusLogp is null ? null : logp + tensor(refMinusLogp);
        var input = new PolicyLossInput(logp, old, refLp, tensor(new float[] { 1, -0.5f }), tensor(MaskData));
        var options = new LossOptions(LossOptions.ParseLossType(lossType), ScaleRewards.Group, sequence ? ImportanceSamplingLevel.Sequence : ImportanceSamplingLevel.Token,
            eps, epsHigh, beta, MaxCompletionLength: 4, MaskTruncatedCompletions: false);
        return PolicyLoss.Compute(input, options, tokensInBatch: 3, batchRowsInBatch: 2);
    }

    static readonly float[,] Zero = new float[2, 3];

    [Theory]
    // ratio 1: per-token loss −A. grpo: mean of per-sequence means = −(1 − 0.5)/2
    [InlineData("grpo", -0.25)]
    // bnpo and dapo: token mean = (−1·2 + 0.5·1)/3
    [InlineData("bnpo", -0.5)]
    [InlineData("dapo", -0.5)]
    // dr_grpo: token sum / (G·L_max) = −1.5 / (2·4)
    [InlineData("dr_grpo", -0.1875)]
    public void OnPolicy_LossIsMinusTheAdvantage_NormalisedPerVariant(string lossType, double expected)
    {
        var r = Run(lossType, Zero);
        Assert.Equal(expected, r.Loss.item<float>(), 6);
        Assert.Equal(0, r.ClipFraction);
    }

    [Fact]
    public void Clipping_CapsTheRatioOnTheSideTheAdvantagePushes()
    {
        // Sequence 0 (A=+1): ratios 1.5 and 1.1 → min(1.5, 1.2)=1.2 and 1.1. Sequence 1 (A=−0.5): ratio 0.5 → clip 0.8,
        // min(−0.25, −0.4) = −0.4. grpo: (−(1.2+1.1)/2 + 0.4)/2 = −0.375.
        var lr = new float[,] { { MathF.Log(1.5f), MathF.Log(1.1f), 0 }, { MathF.Log(0.5f), 0, 0 } };
        var r = Run("grpo", lr);
        Assert.Equal(-0.375, r.Loss.item<float>(), 5);
        Assert.Equal(2.0 / 3, r.ClipFraction, 5); // 2 of 3 completion tokens were clipped
        // Clip-higher (DAPO): with ε_high 0.6 the 1.5 ratio is no longer clipped: (−(1.5+1.1)/2 + 0.4)/2 = −0.45.
        Assert.Equal(-0.45, Run("grpo", lr, epsHigh: 0.6).Loss.item<float>(), 5);
    }

    [Fact]
    public void Kl_IsTheK3Estimator_WeightedByBeta()
    {
        // ref − logp = d: k3 = e^d − d − 1. d = 0.5 on token (0,0), else 0.
        var d = new float[,] { { 0.5f, 0, 0 }, { 0, 0, 0 } };
        double k3 = Math.Exp(0.5) - 0.5 - 1;
        var r = Run("grpo", Zero, beta: 0.1, refMinusLogp: d);
        // grpo: sequence 0 mean (−1 + 0.1·k3 − 1)/2, sequence 1: 0.5 → mean of both.
        Assert.Equal(((-2 + 0.1 * k3) / 2 + 0.5) / 2, r.Loss.item<float>(), 5);
        Assert.Equal(k3 / 3, r.Kl, 5);
    }

    [Fact]
    public void SequenceLevelRatio_IsTheGeometricMeanOfTokenRatios()
    {
        // GSPO: sequence 0's ratio = exp((log 1.1 + log 1.3)/2) ≈ 1.19583 (inside the clip), sequence 1's = 1.
        var lr = new float[,] { { MathF.Log(1.1f), MathF.Log(1.3f), 5 }, { 0, 7, 7 } }; // padding columns must not count
        var r = Run("grpo", lr, sequence: true);
        double s0 = Math.Sqrt(1.1 * 1.3);
        Assert.Equal((-s0 + 0.5) / 2, r.Loss.item<float>(), 5);
    }

    [Fact]
    public void Gradient_OnPolicy_IsMinusAdvantageOverLength()
    {
        var logp = tensor(new float[,] { { -1, -2, -3 }, { -0.5f, -1, -1 } }).requires_grad_(true);
        var input = new PolicyLossInput(logp, logp.detach(), null, tensor(new float[] { 1, -0.5f }), tensor(MaskData));
        PolicyLoss.Compute(input, new LossOptions(LossType.Grpo, ScaleRewards.Group, ImportanceSamplingLevel.Token, 0.2, 0.2, 0, 4, false), 3, 2).Loss.backward();
        var g = logp.grad!;
        Assert.Equal(-0.25, g[0, 0].item<float>(), 6); // −A/|o|/G = −1/2/2
        Assert.Equal(0.25, g[1, 0].item<float>(), 6);  // 0.5/1/2
        Assert.Equal(0, g[0, 2].item<float>());        // padding
    }
}
