using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Kernels;

/// <summary>The residual add fused into the following RMSNorm (<see cref="Ops.AddRmsNorm"/>) against the two libtorch
/// operations it replaces: the sum bit for bit, the norm as Ops.RmsNorm of that sum (itself checked against the
/// formula elsewhere) and as the formula in float64.</summary>
public class AddRmsNormTests
{
    [Theory]
    [InlineData("f32", 1, 512)]
    [InlineData("bf16", 1, 512)]
    [InlineData("bf16", 3, 100)]
    [InlineData("f32", 16, 64)]
    public void EqualsTheAddThenTheNorm(string dtypeName, int rows, int d)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new Generator(9);
        var x = randn([rows, 1, d], generator: g).to(dtype);
        var y = randn([rows, 1, d], generator: g).to(dtype);
        var w = (rand([d], generator: g) + 0.5).to(dtype);
        var (sum, normed) = Ops.AddRmsNorm(x, y, w, 1e-6);
        var h = x + y;
        Assert.True(sum.equal(h).all().item<bool>(), "the sum is libtorch's add");
        var want = Ops.RmsNorm(h, w, 1e-6);
        Assert.True(normed.equal(want).all().item<bool>(), $"max difference {(normed - want).abs().max().to(ScalarType.Float32).item<float>()}");
        var h64 = h.to(ScalarType.Float64);
        var formula = h64 * (h64.pow(2).mean([-1L], keepdim: true) + 1e-6).rsqrt() * w.to(ScalarType.Float64);
        double tolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
        Assert.True((normed.to(ScalarType.Float64) - formula).abs().max().item<double>() <= tolerance * formula.abs().max().item<double>());
    }

    [Fact]
    public void TrainingKeepsTheAutogradGraph()
    {
        using var scope = NewDisposeScope();
        var x = randn([2, 3, 8]).requires_grad_(true);
        var y = randn([2, 3, 8]);
        var w = ones([8]).requires_grad_(true);
        var (_, normed) = Ops.AddRmsNorm(x, y, w, 1e-6);
        normed.sum().backward();
        Assert.NotNull(x.grad);
        Assert.NotNull(w.grad);
    }
}
