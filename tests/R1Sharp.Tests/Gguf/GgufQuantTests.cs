using R1Sharp.IO;

namespace R1Sharp.Tests.Gguf;

/// <summary>Our block decoders against ggml's, on blocks ggml itself produced from random rows.</summary>
public sealed class GgufQuantTests
{
    static float[] RandomRows(int count, int seed)
    {
        var rng = new Random(seed);
        // Mixed scales per 32 values, so sub-block scales and mins take many values.
        return Enumerable.Range(0, count).Select(i => (float)((rng.NextDouble() * 2 - 1) * (1 + (i / 32) % 7) + (i / 64 % 3 == 0 ? 0.5 : 0))).ToArray();
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, "q8_0", 0.01)]
    [InlineData(GgmlType.Q4_0, "q4_0", 0.2)]
    [InlineData(GgmlType.Q5_0, "q5_0", 0.1)]
    [InlineData(GgmlType.Q4_K, "q4_K", 0.2)]
    [InlineData(GgmlType.Q5_K, "q5_K", 0.1)]
    [InlineData(GgmlType.Q6_K, "q6_K", 0.05)]
    public void DequantizationEqualsGgml(GgmlType type, string ggmlName, double roughError)
    {
        Assert.Equal(ggmlName, GgmlReference.TypeName((int)type));
        const int rows = 4, perRow = 1024;
        var x = RandomRows(rows * perRow, seed: (int)type);
        var blocks = GgmlReference.Quantize((int)type, x, rows);
        var expected = GgmlReference.Dequantize((int)type, blocks, x.Length);
        var ours = new float[x.Length];
        GgufQuant.Dequantize(type, blocks, ours);
        // Bit for bit: the same float32 operations in the same order.
        for (int i = 0; i < x.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(ours[i]) == BitConverter.SingleToInt32Bits(expected[i]), $"{type} value {i}: ours {ours[i]}, ggml {expected[i]}");
        // And the blocks do encode the input (a layout mix-up would decode to something else entirely).
        double maxErr = x.Zip(ours).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(maxErr < roughError * 7, $"{type}: max error {maxErr} against the original values");
    }

    [Fact]
    public void Q8_0EncodingIsByteIdenticalToGgml()
    {
        var x = RandomRows(4096, seed: 5);
        x[100] = 0; Array.Clear(x, 256, 32); // an all-zero block: d = 0
        var expected = GgmlReference.Quantize((int)GgmlType.Q8_0, x, 4);
        var ours = new byte[expected.Length];
        GgufQuant.QuantizeQ8_0(x, ours);
        Assert.Equal(expected, ours);
    }

    /// <summary>Rows that reach the quantisers' corner cases: an all-zero block, a single non-zero value, a constant
    /// block (max = min), all-negative and all-positive blocks, values so small their f16 scales are subnormal, large
    /// values, one outlier among tiny values, and plain random rows with a different spread per 32 values.</summary>
    static float[] HardRows(int seed)
    {
        const int block = 256;
        var x = RandomRows(16 * block, seed);
        var rng = new Random(seed);
        Array.Clear(x, 0, block);                                      // all zero
        Array.Clear(x, block, block); x[block + 77] = -0.3f;           // one value
        Array.Fill(x, 0.25f, 2 * block, block);                        // constant
        for (int i = 3 * block; i < 4 * block; i++) x[i] = -(float)rng.NextDouble() - 0.01f;
        for (int i = 4 * block; i < 5 * block; i++) x[i] = (float)rng.NextDouble() + 2f;
        for (int i = 5 * block; i < 6 * block; i++) x[i] = (float)(rng.NextDouble() - 0.5) * 1e-6f;
        for (int i = 6 * block; i < 7 * block; i++) x[i] = (float)(rng.NextDouble() - 0.5) * 3e4f;
        for (int i = 7 * block; i < 8 * block; i++) x[i] = (float)(rng.NextDouble() - 0.5) * 1e-3f;
        x[7 * block + 100] = 5f;
        for (int i = 8 * block; i < 9 * block; i++) x[i] = (float)Math.Round(rng.NextDouble() * 16) / 4; // ties on the grid
        return x;
    }

    /// <summary>Our C# ports of llama.cpp's reference quantisers write ggml's bytes exactly, on rows covering the corner
    /// cases and on 64 random rows each (ggml_quantize_chunk without an importance matrix runs the same _ref functions).</summary>
    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void QuantizersAreByteIdenticalToGgml(GgmlType type)
    {
        foreach (var x in new[] { HardRows(3), RandomRows(64 * 256, 11), RandomRows(64 * 256, 12).Select(v => v * 1e-2f).ToArray() })
        {
            int rows = x.Length / 256;
            var expected = GgmlReference.Quantize((int)type, x, rows);
            var ours = new byte[expected.Length];
            GgmlQuantize.Quantize(type, x, ours);
            var (_, bb) = GgmlTypeInfo.Geometry(type);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(expected[i] == ours[i], $"{type}: first difference at byte {i} (block {i / bb}, byte {i % bb} in it): ggml {expected[i]}, ours {ours[i]}");
        }
    }

    [Fact]
    public void HalfAndBFloat16DecodeExactly()
    {
        var f16 = new byte[] { 0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00 }; // 1.0, -2.0, smallest subnormal
        var y = new float[3];
        GgufQuant.Dequantize(GgmlType.F16, f16, y);
        Assert.Equal([1f, -2f, (float)BitConverter.UInt16BitsToHalf(1)], y);
        var bf16 = new byte[] { 0x80, 0x3F, 0x49, 0x40 }; // 1.0, 3.140625
        var z = new float[2];
        GgufQuant.Dequantize(GgmlType.BF16, bf16, z);
        Assert.Equal([1f, 3.140625f], z);
    }
}
