using R1Sharp.Kernels;
using TorchSharp;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>The decode step's direct RMSNorm and RoPE (a few rows, no autograd) against the same formulas written as
/// libtorch operators, in float32 and bfloat16.</summary>
public class SmallInferenceTests
{
    static ScalarType Parse(string name) => name == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;

    [Theory]
    [InlineData("f32")]
    [InlineData("bf16")]
    public void RopeOnAFewRowsEqualsLibtorchsOperators(string dtypeName)
    {
        var dtype = Parse(dtypeName);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var x = randn([3, 4, 1, 16], generator: g).to(dtype);
        var cos = randn([3, 1, 1, 16], generator: g).to(dtype);
        var sin = randn([3, 1, 1, 16], generator: g).to(dtype);
        var expected = x * cos + cat([x.narrow(-1, 8, 8).neg(), x.narrow(-1, 0, 8)], -1) * sin;
        var actual = Ops.Rope(x.transpose(1, 2), cos, sin); // x is [B, H, T, D]; Ops.Rope takes the projection's [B, T, H, D]
        Assert.Equal(dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(expected.eq(actual).all().item<bool>(), "RoPE differs from libtorch's operators");
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("bf16")]
    public void RmsNormOnAFewRowsMatchesLibtorchsOperators(string dtypeName)
    {
        var dtype = Parse(dtypeName);
        using var norm = new RmsNorm(96, 1e-6);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var g = new Generator(4);
        norm.weight.copy_(rand([96], generator: g) + 0.5);
        norm.to(dtype);
        var x = (randn([5, 1, 96], generator: g) * 3).to(dtype);
        var h = x.to(ScalarType.Float32);
        h = h * (h.pow(2).mean([-1L], keepdim: true) + 1e-6).rsqrt();
        var expected = (norm.weight * h.to(dtype)).to(ScalarType.Float32).data<float>().ToArray();
        var actualTensor = norm.forward(x);
        Assert.Equal(dtype, actualTensor.dtype);
        var actual = actualTensor.to(ScalarType.Float32).data<float>().ToArray();
        // Only the variance's summation order differs: float32 values agree to a few ulps (a row's rescale differs in
        // its last bit or not at all), bfloat16 values are equal or one bfloat16 step apart, and nearly all equal.
        int equal = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = dtype == ScalarType.BFloat16 ? Math.Abs(expected[i]) * Math.Pow(2, -7) * 1.01 : Math.Abs(expected[i]) * 1e-6;
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tol, $"element {i}: {actual[i]} vs {expected[i]}");
            if (actual[i] == expected[i]) equal++;
        }
        if (dtype == ScalarType.BFloat16) Assert.True(equal >= expected.Length * 0.95, $"only {equal} of {expected.Length} equal");
    }
}
