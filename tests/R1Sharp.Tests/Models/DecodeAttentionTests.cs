using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>The decode attention kernel against the libtorch formulation it replaces (Attention.Forward's batched
/// matmuls, mask and softmax), with grouped heads, masked (left-padded) keys and odd lengths.</summary>
public class DecodeAttentionTests
{
    [Theory]
    [InlineData("f32", 1, 14, 2, 33)]
    [InlineData("f32", 3, 4, 4, 7)]
    [InlineData("f32", 2, 6, 2, 1)]
    [InlineData("f32", 16, 14, 2, 700)]
    [InlineData("bf16", 1, 14, 2, 33)]
    [InlineData("bf16", 3, 8, 1, 129)]
    [InlineData("bf16", 16, 14, 2, 700)]
    public void MatchesTheLibtorchFormulation(string dtypeName, int b, int heads, int kvHeads, int length)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        const int hd = 64, capacity = 800;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var g = new Generator(11);
        var q = randn([b, heads, 1, hd], dtype: ScalarType.Float32, generator: g).to(dtype);
        var keys = randn([b, kvHeads, capacity, hd], dtype: ScalarType.Float32, generator: g).to(dtype);
        var values = randn([b, kvHeads, capacity, hd], dtype: ScalarType.Float32, generator: g).to(dtype);
        // Row r is left-padded by r keys (masked), except that a row always sees its last key.
        var maskData = new float[b * length];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < length; j++) maskData[r * length + j] = j < Math.Min(r, length - 1) ? float.NegativeInfinity : 0f;
        var mask = tensor(maskData, [b, 1, 1, 1, length]);

        var actual = DecodeAttention.Run(q, keys.narrow(2, 0, length), values.narrow(2, 0, length), mask, 1.0 / Math.Sqrt(hd));

        int groups = heads / kvHeads;
        var k = keys.narrow(2, 0, length); var v = values.narrow(2, 0, length);
        var scores = matmul(q.reshape(b, kvHeads, groups, hd), k.transpose(2, 3)).view(b, kvHeads, groups, 1, length).to(ScalarType.Float32);
        scores = scores.mul_(1.0 / Math.Sqrt(hd)).add_(mask);
        var probs = scores.softmax(-1).to(dtype).view(b, kvHeads, groups, length);
        var expected = matmul(probs, v).view(b, heads, 1, hd).transpose(1, 2).reshape(b, 1, heads * hd);

        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(dtype, actual.dtype);
        var e = expected.to(ScalarType.Float32).data<float>().ToArray();
        var a = actual.to(ScalarType.Float32).data<float>().ToArray();
        // bfloat16: a rounding boundary may fall differently for a score or probability (summation order).
        double rtol = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5, atol = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= atol + rtol * Math.Abs(e[i]), $"element {i}: expected {e[i]}, got {a[i]}");
    }

    /// <summary>MLA's absorbed decode: one shared key "head" per row whose entries are [latent; k_pe] (192 values) and
    /// whose values are the latent alone, the first 128 of each entry (a value dimension unlike the key's, read at the
    /// entries' stride), against the same libtorch formulation.</summary>
    [Theory]
    [InlineData("f32", 1, 4, 513)]
    [InlineData("bf16", 1, 16, 300)]
    [InlineData("bf16", 5, 4, 77)]
    public void ReadsMlaLatentsAsKeysAndValues(string dtypeName, int b, int heads, int length)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        const int rank = 128, rope = 64, capacity = 600;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var g = new Generator(12);
        var q = randn([b, heads, 1, rank + rope], dtype: ScalarType.Float32, generator: g).to(dtype);
        var entries = randn([b, 1, capacity, rank + rope], dtype: ScalarType.Float32, generator: g).to(dtype).narrow(2, 0, length);
        var latent = entries.narrow(3, 0, rank);
        var maskData = new float[b * length];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < length; j++) maskData[r * length + j] = j < Math.Min(2 * r, length - 1) ? float.NegativeInfinity : 0f;
        var mask = tensor(maskData, [b, 1, 1, 1, length]);
        double scale = 1.0 / Math.Sqrt(192);

        Assert.True(DecodeAttention.Applies(q, entries, latent));
        var actual = DecodeAttention.Run(q, entries, latent, mask, scale);

        var scores = matmul(q.reshape(b, 1, heads, rank + rope), entries.transpose(2, 3)).view(b, 1, heads, 1, length).to(ScalarType.Float32);
        var probs = scores.mul_(scale).add_(mask).softmax(-1).to(dtype).view(b, 1, heads, length);
        var expected = matmul(probs, latent).view(b, heads, 1, rank).transpose(1, 2).reshape(b, 1, heads * rank);

        Assert.Equal(expected.shape, actual.shape);
        var e = expected.to(ScalarType.Float32).data<float>().ToArray();
        var a = actual.to(ScalarType.Float32).data<float>().ToArray();
        double rtol = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5, atol = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= atol + rtol * Math.Abs(e[i]), $"element {i}: expected {e[i]}, got {a[i]}");
    }
}
