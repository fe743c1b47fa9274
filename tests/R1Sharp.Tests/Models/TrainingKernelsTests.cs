using R1Sharp.Kernels;
using TorchSharp;
using R1Sharp.Models;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>The fused float32 training kernels against the same formulas written as libtorch operators (which
/// autograd differentiates): values and every input's gradient, at sizes above the fused path's threshold.</summary>
public class TrainingKernelsTests
{
    /// <summary>Runs f on fresh leaf copies of the inputs, backpropagates a fixed random upstream gradient, and
    /// returns the output and the inputs' gradients.</summary>
    static (Tensor Output, Tensor[] Grads) Run(Func<Tensor[], Tensor> f, Tensor[] inputs, long seed)
    {
        var leaves = inputs.Select(t => t.detach().clone().requires_grad_(true)).ToArray();
        var y = f(leaves);
        var upstream = randn(y.shape, generator: new Generator((ulong)seed));
        (y * upstream).sum().backward();
        return (y.detach(), leaves.Select(l => l.grad!.clone()).ToArray());
    }

    static void AssertClose(Tensor expected, Tensor actual, double rtol, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>();
        double err = (expected - actual).abs().max().item<float>();
        Assert.True(err <= rtol * Math.Max(scale, 1e-6), $"{what}: max |difference| {err:E3} against max |value| {scale:E3}");
    }

    /// <summary>The in-place inference SwiGLU against silu(g)·u in float64: float32 to float32 precision, bfloat16 as
    /// the float32 result rounded to nearest even (at most half a bfloat16 step, 2⁻⁸ relative), tails included.</summary>
    [Theory]
    [InlineData(ScalarType.Float32, 4099)]
    [InlineData(ScalarType.BFloat16, 4099)]
    [InlineData(ScalarType.BFloat16, 7)]
    public void SwiGluInPlaceIsTheFormula(ScalarType dtype, int n)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(17);
        var g = (randn([n], generator: gen) * 4).to(dtype);
        var u = randn([n], generator: gen).to(dtype);
        var g64 = g.to(ScalarType.Float64);
        var expected = (g64 * g64.sigmoid() * u.to(ScalarType.Float64)).data<double>().ToArray();
        var inPlace = g.clone();
        TrainingKernels.SwiGluInPlace(inPlace, u);
        Assert.Equal(dtype, inPlace.dtype);
        var actual = inPlace.to(ScalarType.Float64).data<double>().ToArray();
        double rel = dtype == ScalarType.Float32 ? 1e-6 : Math.Pow(2, -8) * 1.01; // half a step: 2⁻⁸ of the binade's bottom
        for (int i = 0; i < n; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= rel * Math.Abs(expected[i]) + 1e-30, $"{dtype} [{i}]: {actual[i]} vs {expected[i]}");
        Assert.Throws<ArgumentException>(() => TrainingKernels.SwiGluInPlace(g.narrow(0, 0, n - 1), u.narrow(0, 1, n - 1).view(-1, 1)));
    }

    [Fact]
    public void RmsNormValuesAndGradientsMatchLibtorch()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        var x = randn([8, 100, 96], generator: g) * 2;
        var w = rand([96], generator: g) + 0.5;
        Assert.True(TrainingKernels.Applies(x, w));
        var (y, grads) = Run(t => TrainingKernels.RmsNorm(t[0], t[1], 1e-6), [x, w], 1);
        var (ey, egrads) = Run(t => t[1] * (t[0] * (t[0].pow(2).mean([-1L], keepdim: true) + 1e-6).rsqrt()), [x, w], 1);
        AssertClose(ey, y, 1e-6, "RMSNorm output");
        AssertClose(egrads[0], grads[0], 1e-5, "dx");
        AssertClose(egrads[1], grads[1], 1e-5, "dweight");
    }

    [Fact]
    public void RopeEqualsLibtorchAndReturnsHeadMajorLayout()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(12);
        var x = randn([3, 40, 6, 32], generator: g); // [B, T, H, D]
        var cos = randn([3, 1, 40, 32], generator: g);
        var sin = randn([3, 1, 40, 32], generator: g);
        var (y, grads) = Run(t => TrainingKernels.Rope(t[0], cos, sin), [x], 2);
        var (ey, egrads) = Run(t =>
        {
            var q = t[0].transpose(1, 2);
            return q * cos + cat([q.narrow(-1, 16, 16).neg(), q.narrow(-1, 0, 16)], -1) * sin;
        }, [x], 2);
        Assert.True(y.is_contiguous());
        // Forward: the same products and sum, each rounded as libtorch rounds them.
        Assert.True(ey.eq(y).all().item<bool>(), "RoPE output differs from libtorch's operators");
        AssertClose(egrads[0], grads[0], 1e-6, "dx");
    }

    [Fact]
    public void SwiGluValuesAndGradientsMatchLibtorch()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(13);
        var gate = randn([4, 50, 384], generator: g) * 4; // covers the sigmoid's flat tails
        var up = randn([4, 50, 384], generator: g);
        var (y, grads) = Run(t => TrainingKernels.SwiGlu(t[0], t[1]), [gate, up], 3);
        var (ey, egrads) = Run(t => nn.functional.silu(t[0]) * t[1], [gate, up], 3);
        AssertClose(ey, y, 1e-6, "SwiGLU output");
        AssertClose(egrads[0], grads[0], 1e-6, "dgate");
        AssertClose(egrads[1], grads[1], 1e-6, "dup");
    }

    [Fact]
    public void MaskedSoftmaxMatchesLibtorchAndMaskedKeysGetExactlyZero()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(14);
        int b = 4, k = 2, grp = 2, t = 45; // 45 keys: full vectors and a scalar tail
        var scores = randn([b, k, grp, t, t], generator: g) * 5;
        var pad = new[] { 0, 3, 10, 44 };
        var mask = AttentionMask.Build(pad, 0, t, t, CPU);
        double scale = 1 / Math.Sqrt(32);
        var (y, grads) = Run(s => TrainingKernels.MaskedSoftmax(s[0], mask, scale), [scores], 4);
        var (ey, egrads) = Run(s => (s[0] * scale + mask).softmax(-1), [scores], 4);
        AssertClose(ey, y, 1e-6, "softmax output");
        AssertClose(egrads[0], grads[0], 1e-5, "dscores");
        var masked = mask.expand_as(y).isinf();
        Assert.True(y.masked_select(masked).eq(0).all().item<bool>(), "a masked key got probability above 0");
        Assert.True(y.sum(-1).sub(1).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void MisshapenInputsAreRejectedWithTheirShapes()
    {
        using var scope = NewDisposeScope();
        var x = zeros(2, 10, 4, 16);
        var e = Assert.Throws<ArgumentException>(() => TrainingKernels.Rope(x, zeros(2, 1, 9, 16), zeros(2, 1, 9, 16)));
        Assert.Contains("[2, 1, 9, 16]", e.Message);
        Assert.Throws<ArgumentException>(() => TrainingKernels.MaskedSoftmax(zeros([2, 2, 2, 10, 10]), zeros([1, 1, 1, 10, 10]), 1.0));
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    public void ModelLossAndEveryParameterGradientMatchTheUnfusedPath(string arch)
    {
        var cfg = ModelPresets.Create(arch, "tiny", 300);
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(seed: 5, std: 0.1);
        var rng = new Random(5);
        var prompts = Enumerable.Range(0, 32).Select(i => (IReadOnlyList<int>)Enumerable.Range(0, 5 + i % 8).Select(_ => rng.Next(300)).ToList()).ToList();
        var completions = Enumerable.Range(0, 32).Select(i => (IReadOnlyList<int>)Enumerable.Range(0, 40 - i % 8).Select(_ => rng.Next(300)).ToList()).ToList();
        using var batch = new SequenceBatch(prompts, completions, CPU);
        Assert.True(batch.Rows * batch.Length * cfg.HiddenSize > 65536, "the batch must be large enough for the fused path");

        (double Loss, Dictionary<string, Tensor> Grads) LossAndGrads(bool fused)
        {
            TrainingKernels.Enabled = fused;
            try
            {
                foreach (var p in model.parameters()) p.grad = null;
                using var scope = NewDisposeScope();
                var (logp, _) = batch.TokenLogProbs(model);
                var loss = -(logp * batch.CompletionMask).sum() / batch.CompletionMask.sum();
                loss.backward();
                return (loss.item<float>(), model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope()));
            }
            finally { TrainingKernels.Enabled = true; }
        }

        var (plainLoss, plain) = LossAndGrads(false);
        var (fusedLoss, fused) = LossAndGrads(true);
        Assert.Equal(plainLoss, fusedLoss, 5);
        foreach (var (name, expected) in plain) AssertClose(expected, fused[name], 1e-4, name);
    }
}
