using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>Absorbed MLA decode through the in-place kv_b kernels (<see cref="LatentProducts"/>) against the expanded
/// form written out here from DeepSeek-V2's equations: per-head keys k = [c·W_UKᵀ; k_pe] and values v = c·W_UVᵀ built
/// from every cached latent, then ordinary softmax attention — in float64, so only the kernel's rounding is measured.</summary>
public class LatentProductsTests
{
    [Theory]
    [InlineData("f32", 1, 4, 16, 24, 32, 8, 10)]
    [InlineData("f32", 3, 2, 8, 8, 64, 8, 5)]
    [InlineData("bf16", 1, 4, 128, 128, 128, 64, 40)]
    [InlineData("bf16", 5, 16, 16, 32, 512, 16, 9)]
    public void AbsorbedDecodeEqualsExpandedAttention(string dtypeName, int b, int heads, int nope, int dv, int rank, int rope, int length)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        var qNope = randn([b, heads, 1, nope], generator: g).to(dtype);
        var qPe = randn([b, heads, 1, rope], generator: g).to(dtype);
        var kvB = (randn([heads * (nope + dv), rank], generator: g) * 0.1).to(dtype);
        var latent = randn([b, 1, length, rank + rope], generator: g).to(dtype);
        // Row r does not see its first r positions (left padding), but always its last.
        var maskData = new float[b * length];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < length; j++) maskData[r * length + j] = j < Math.Min(r, length - 1) ? float.NegativeInfinity : 0f;
        var mask = tensor(maskData, [b, 1, 1, 1, length]);
        double scale = 1 / Math.Sqrt(nope + rope);
        Assert.True(LatentProducts.Applies(qNope, kvB, rank) || !System.Runtime.Intrinsics.X86.Avx2.IsSupported);

        var actual = Ops.LatentAttention(qNope, qPe, kvB, latent, mask, scale).to(ScalarType.Float64);

        var w = kvB.to(ScalarType.Float64).view(heads, nope + dv, rank);
        var c = latent.to(ScalarType.Float64).narrow(3, 0, rank);                         // [B, 1, L, rank]
        var kPe = latent.to(ScalarType.Float64).narrow(3, rank, rope);                    // [B, 1, L, rope]
        var keysNope = matmul(c, w.narrow(1, 0, nope).transpose(1, 2).unsqueeze(0));      // [B, H, L, nope]
        var values = matmul(c, w.narrow(1, nope, dv).transpose(1, 2).unsqueeze(0));       // [B, H, L, v]
        var scores = (matmul(qNope.to(ScalarType.Float64), keysNope.transpose(2, 3))
            + matmul(qPe.to(ScalarType.Float64), kPe.transpose(2, 3))) * scale;          // [B, H, 1, L]
        scores = scores + mask.view(b, 1, 1, length).to(ScalarType.Float64);
        var expected = matmul(scores.softmax(-1), values).transpose(1, 2).reshape(b, 1, heads * dv);

        double tolerance = dtype == ScalarType.BFloat16 ? 0.05 : 1e-4; // bfloat16 rounds q·W_UK, the scores and the output
        double err = (actual - expected).abs().max().item<double>(), size = expected.abs().max().item<double>();
        Assert.True(err <= tolerance * Math.Max(1, size), $"max error {err} against max |o| {size}");
    }
}
