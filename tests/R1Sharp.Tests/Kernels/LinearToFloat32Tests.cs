using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Kernels;

/// <summary>The output head's float32 logits written by the decode kernel (<see cref="Ops.LinearToFloat32"/>) are the
/// usual product cast to float32, bit for bit: each value rounded to the weight's type first.</summary>
public class LinearToFloat32Tests
{
    [Theory]
    [InlineData("bf16", 1)]
    [InlineData("bf16", 3)]
    [InlineData("f32", 1)]
    [InlineData("f32", 2)]
    [InlineData("bf16", 40)] // past the kernel's rows: the libtorch product, cast
    public void EqualsTheProductCastToFloat32(string dtypeName, int rows)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var g = new Generator(6);
        var w = randn([1000, 96], generator: g).to(dtype);
        var x = randn([rows, 1, 96], generator: g).to(dtype);
        var logits = Ops.LinearToFloat32(x, w);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        Assert.Equal(new long[] { rows, 1, 1000 }, logits.shape);
        var want = Ops.Linear(x, w).to(ScalarType.Float32);
        Assert.True(logits.equal(want).all().item<bool>(), $"max difference {(logits - want).abs().max().item<float>()}");
    }
}
