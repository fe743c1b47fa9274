using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>DeepSeekMoE's batch-1 decode path (routing in C#, every chosen expert and the shared experts in two
/// dispatches of the decode kernel) against the tensor path: <see cref="MoeRouting.RouteOne"/> against
/// <see cref="MoeRouting.Route"/> (which MoeRoutingTests checks on hand-made scores), and the layer's output against
/// the token-by-token loop over its experts, in float32 and bfloat16.</summary>
public class MoeDecodeTests
{
    public static TheoryData<string, int, int, int, bool, double, string> Routings => new()
    {
        { "noaux_tc", 8, 8, 4, true, 2.5, "sigmoid" },              // DeepSeek-V3 / R1
        { "noaux_tc", 2, 4, 1, true, 1.0, "sigmoid" },
        { "group_limited_greedy", 6, 8, 3, false, 16.0, "softmax" }, // DeepSeek-V2
        { "greedy", 6, 1, 1, false, 1.0, "softmax" },               // V2-Lite
        { "greedy", 1, 1, 1, true, 1.0, "softmax" },
        { "greedy", 4, 1, 1, true, 2.0, "sigmoid" },
    };

    [Theory]
    [MemberData(nameof(Routings))]
    public void RouteOneChoosesAndWeighsAsRoute(string method, int k, int groups, int keep, bool norm, double factor, string scoring)
    {
        var c = new DeepseekV3Config { NRoutedExperts = 64, NumExpertsPerTok = k, NGroup = groups, TopkGroup = keep, TopkMethod = method,
            NormTopkProb = norm, RoutedScalingFactor = factor, ScoringFunc = scoring };
        var g = new Generator(21);
        var logits = randn([300, 64], generator: g) * 2;
        var bias = randn([64], generator: g) * 0.3;
        var (indices, weights, _) = MoeRouting.Route(logits, c, bias);
        var allLogits = logits.data<float>().ToArray();
        var b = bias.data<float>().ToArray();
        for (int row = 0; row < 300; row++)
        {
            var (experts, w) = MoeRouting.RouteOne(allLogits.AsSpan(row * 64, 64), c, b);
            var want = indices[row].data<long>().ToArray().Zip(weights[row].data<float>().ToArray()).OrderBy(p => p.First).ToArray();
            var got = experts.Zip(w).OrderBy(p => p.First).ToArray();
            Assert.Equal(want.Select(p => (int)p.First), got.Select(p => p.First));
            for (int j = 0; j < k; j++) Assert.True(Math.Abs(want[j].Second - got[j].Second) <= 1e-6 * Math.Max(1, Math.Abs(want[j].Second)),
                $"row {row}, expert {got[j].First}: weight {got[j].Second} against {want[j].Second}");
        }
    }

    [Theory]
    [InlineData("deepseek_v3", "f32")]
    [InlineData("deepseek_v3", "bf16")]
    [InlineData("deepseek_v2", "f32")]
    [InlineData("deepseek_v2", "bf16")]
    public void OneTokenEqualsTheExpertByExpertSum(string arch, string dtypeName)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var c = arch == "deepseek_v3" ? DeepseekV3Config.Preset("small", 300) : DeepseekV2Config.Preset("small", 300);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var moe = new DeepseekV3MoE(c, 1, dtype);
        var g = new Generator(5);
        foreach (var (name, p) in moe.named_parameters())
            p.copy_(name.EndsWith("e_score_correction_bias") ? randn(p.shape, generator: g) * 0.1 : randn(p.shape, generator: g) * 0.1);
        var used = new HashSet<int>();
        for (int token = 0; token < 12; token++)
        {
            var x = randn([1, 1, c.HiddenSize], generator: g).to(dtype);
            var fused = moe.forward(x).to(ScalarType.Float64);
            MoeDecode.Enabled = false;
            Tensor tensorPath, perToken;
            try
            {
                tensorPath = moe.forward(x).to(ScalarType.Float64);
                moe.PerToken = true;
                perToken = moe.forward(x).to(ScalarType.Float64);
            }
            finally { MoeDecode.Enabled = true; moe.PerToken = false; }
            // float32: the order of sums only; bfloat16: a rounding step of the intermediate values here and there.
            double tolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
            double size = perToken.abs().max().item<double>();
            foreach (var (name, want) in new[] { ("tensor path", tensorPath), ("expert by expert", perToken) })
            {
                double err = (fused - want).abs().max().item<double>();
                Assert.True(err <= tolerance * Math.Max(1, size), $"token {token}, {name}: max error {err} against max |y| {size}");
            }
            // The decoder layer's residual folded into the last pass: the same values as adding it afterwards.
            var residual = randn([1, 1, c.HiddenSize], generator: g).to(dtype);
            var plus = moe.ForwardPlus(x, residual);
            Assert.True((residual + moe.forward(x)).equal(plus).all().item<bool>(), $"token {token}: ForwardPlus differs from residual + forward");
            var flat = x.reshape(1, -1).to(ScalarType.Float32);
            var (idx, _, _) = MoeRouting.Route(flat.matmul(moe.gate.weight.to(ScalarType.Float32).t()), c, moe.gate.e_score_correction_bias);
            foreach (var e in idx.data<long>().ToArray()) used.Add((int)e);
        }
        Assert.True(used.Count > c.NumExpertsPerTok, "the tokens went to different experts");
    }

    /// <summary>The dense first layers on the same kernel (no routed experts): residual + MLP(x) as the tensor path
    /// computes it.</summary>
    [Theory]
    [InlineData("f32")]
    [InlineData("bf16")]
    public void DenseLayerPlusResidualEqualsTheTensorPath(string dtypeName)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var mlp = new DeepseekV3Mlp(64, 176, dtype);
        var g = new Generator(9);
        foreach (var (_, p) in mlp.named_parameters()) p.copy_(randn(p.shape, generator: g) * 0.1);
        for (int token = 0; token < 6; token++)
        {
            var x = randn([1, 1, 64], generator: g).to(dtype);
            var residual = randn([1, 1, 64], generator: g).to(dtype);
            var fused = mlp.ForwardPlus(x, residual).to(ScalarType.Float64);
            MoeDecode.Enabled = false;
            Tensor want;
            try { want = mlp.ForwardPlus(x, residual).to(ScalarType.Float64); }
            finally { MoeDecode.Enabled = true; }
            Assert.True((residual + mlp.forward(x)).to(ScalarType.Float64).equal(want).all().item<bool>(), "the kernel off is residual + forward");
            double tolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
            double err = (fused - want).abs().max().item<double>(), size = want.abs().max().item<double>();
            Assert.True(err <= tolerance * Math.Max(1, size), $"token {token}: max error {err} against max |y| {size}");
            Assert.Equal(new long[] { 1, 1, 64 }, fused.shape);
        }
    }
}
