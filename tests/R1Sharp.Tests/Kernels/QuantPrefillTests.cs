using R1Sharp.IO;
using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Kernels;

/// <summary>Dequantised tiles (ggml's values bit for bit, on every path) and the prefill product through them.</summary>
public sealed unsafe class QuantPrefillTests
{
    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void DequantisationIsGgmlsOnEveryPath(GgmlType type)
    {
        const int rows = 5, cols = 512;
        var blocks = QuantTestData.RandomBlocks(type, rows, cols, seed: 3);
        var expected = Gguf.GgmlReference.Dequantize((int)type, blocks, rows * cols);
        var m = QuantMatrix.FromBlocks("w", type, rows, cols, blocks);
        var saved = QuantKernels.Isa;
        try
        {
            foreach (var isa in Enum.GetValues<QuantIsa>().Where(i => i <= QuantKernels.Best))
            {
                QuantKernels.Isa = isa;
                var ours = m.ToFloat();
                for (int i = 0; i < ours.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(ours[i]) == BitConverter.SingleToInt32Bits(expected[i]), $"{type} {isa} value {i}: {ours[i]} vs ggml {expected[i]}");
            }
        }
        finally { QuantKernels.Isa = saved; }
    }

    [Theory]
    [InlineData(GgmlType.Q4_K, ScalarType.Float32)]
    [InlineData(GgmlType.Q6_K, ScalarType.Float32)]
    [InlineData(GgmlType.Q8_0, ScalarType.BFloat16)]
    [InlineData(GgmlType.Q4_K, ScalarType.BFloat16)]
    public void PrefillMatchesTheDequantisedProduct(GgmlType type, ScalarType gemm)
    {
        const int n = 3000, k = 768, t = 37; // 4 MB tiles: 1360 rows of float32 or 2720 of bfloat16, so two tiles either way
        var w = QuantTestData.RandomMatrix(type, n, k, seed: 4);
        var wf = w.ToFloat();
        var x = QuantTestData.GaussianRows(t, k, seed: 5);
        var bias = Enumerable.Range(0, n).Select(i => (float)Math.Sin(i)).ToArray();
        using var xt = tensor(x).reshape(1, t, k);
        using var bt = tensor(bias);
        using var y = QuantPrefill.Linear(xt, w, bt, gemm, threads: 2);
        Assert.Equal([1, t, n], y.shape);
        var yv = y.data<float>().ToArray();
        double tol = gemm == ScalarType.BFloat16 ? 2 * Math.Pow(2, -8) : 1e-5;
        for (int r = 0; r < t; r++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, mag = 0;
                for (int i = 0; i < k; i++) { double p = (double)wf[j * k + i] * x[r * k + i]; s += p; mag += Math.Abs(p); }
                Assert.True(Math.Abs(yv[r * n + j] - (s + bias[j])) <= tol * mag + 1e-4, $"{type} {gemm} row {r} output {j}: {yv[r * n + j]} vs {s + bias[j]}");
            }
    }

    [Fact]
    public void PrefillTilesCoverEveryRow()
    {
        // 6000 rows of K = 256 in float32 are 1.5 tiles of 4 MB: the last, partial tile must be right too.
        const int n = 6000, k = 256, t = 3;
        var w = QuantTestData.RandomMatrix(GgmlType.Q8_0, n, k, seed: 6);
        var wf = w.ToFloat();
        var x = QuantTestData.GaussianRows(t, k, seed: 7);
        using var xt = tensor(x).reshape(t, k);
        using var y = QuantPrefill.Linear(xt, w, gemmType: ScalarType.Float32);
        var yv = y.data<float>().ToArray();
        foreach (int j in new[] { 0, 4095, 4096, 4097, 5999 })
            for (int r = 0; r < t; r++)
            {
                double s = 0, mag = 0;
                for (int i = 0; i < k; i++) { double p = (double)wf[j * k + i] * x[r * k + i]; s += p; mag += Math.Abs(p); }
                Assert.True(Math.Abs(yv[r * n + j] - s) <= 1e-5 * mag, $"row {r} output {j}: {yv[r * n + j]} vs {s}");
            }
    }

    /// <summary>QuantLinear picks the kernels for few rows and the tiles for many; both give the dequantised product
    /// (within the int8 activation rounding, or bf16 tiles), with biases, for several weights at once.</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(40)]
    [InlineData(300)]
    public void QuantLinearAtAnyRowCount(int t)
    {
        const int k = 512;
        QuantMatrix[] ws = [QuantTestData.RandomMatrix(GgmlType.Q4_K, 70, k, 1), QuantTestData.RandomMatrix(GgmlType.Q6_K, 20, k, 2)];
        var x = QuantTestData.GaussianRows(t, k, seed: 8);
        using var xt = tensor(x).reshape(t, k);
        using var b0 = tensor(Enumerable.Range(0, 70).Select(i => (float)i / 10).ToArray());
        var ys = QuantLinear.ApplyMany(xt, ws, [b0, null]);
        for (int m = 0; m < 2; m++)
        {
            var wf = ws[m].ToFloat();
            var yv = ys[m].data<float>().ToArray();
            int n = ws[m].Rows;
            for (int r = 0; r < t; r += 7)
                for (int j = 0; j < n; j++)
                {
                    double s = m == 0 ? j / 10.0 : 0, mag = 0;
                    for (int i = 0; i < k; i++) { double p = (double)wf[j * k + i] * x[r * k + i]; s += p; mag += Math.Abs(p); }
                    Assert.True(Math.Abs(yv[r * n + j] - s) <= 1e-2 * mag + 1e-3, $"rows {t} weight {m} [{r}, {j}]: {yv[r * n + j]} vs {s}");
                }
            ys[m].Dispose();
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void ColumnSlicesDequantiseAsTheWholeRows(GgmlType type)
    {
        const int rows = 4, cols = 1024;
        var m = QuantTestData.RandomMatrix(type, rows, cols, seed: 11);
        var whole = m.ToFloat();
        int bs = m.BlockSize;
        var saved = QuantKernels.Isa;
        try
        {
            foreach (var isa in Enum.GetValues<QuantIsa>().Where(i => i <= QuantKernels.Best))
            {
                QuantKernels.Isa = isa;
                foreach (var (c0, width) in new[] { (0, bs), (bs, 2 * bs), (cols - bs, bs), (0, cols) })
                {
                    var slice = new float[2 * width];
                    fixed (float* p = slice) m.Dequantize(1, 2, c0, width, p);
                    for (int r = 0; r < 2; r++)
                        for (int c = 0; c < width; c++)
                            Assert.True(BitConverter.SingleToInt32Bits(slice[r * width + c]) == BitConverter.SingleToInt32Bits(whole[(1 + r) * cols + c0 + c]),
                                $"{type} {isa} columns [{c0}, {c0 + width}) row {1 + r} column {c0 + c}");
                }
            }
        }
        finally { QuantKernels.Isa = saved; }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => { fixed (float* p = new float[cols]) m.Dequantize(0, 1, bs / 2, bs, p); });
        Assert.Contains("whole", e.Message);
    }

    /// <summary>The blocked MLP (prefill over quantized gate/up/down) against down(silu(gate·x) ⊙ up·x) in float64 from
    /// the dequantised weights: three intermediate blocks (the last one smaller), tiles small enough that gate/up and down each take several,
    /// a Q4_K_M-like mix of formats and an all-Q8_0 one (blocks of 32), float32 and bfloat16 GEMMs.</summary>
    [Theory]
    [InlineData(GgmlType.Q4_K, GgmlType.Q6_K, ScalarType.Float32)]
    [InlineData(GgmlType.Q4_K, GgmlType.Q6_K, ScalarType.BFloat16)]
    [InlineData(GgmlType.Q8_0, GgmlType.Q8_0, ScalarType.BFloat16)]
    public void BlockedMlpMatchesTheFormula(GgmlType gateUpType, GgmlType downType, ScalarType gemm)
    {
        const int k = 512, inter = 4352, hidden = 300, t = 61;
        var gate = QuantTestData.RandomMatrix(gateUpType, inter, k, 21);
        var up = QuantTestData.RandomMatrix(gateUpType, inter, k, 22);
        var down = QuantTestData.RandomMatrix(downType, hidden, inter, 23);
        int block = QuantPrefill.MlpBlock(inter, down.BlockSize);
        Assert.Equal(3, (inter + block - 1) / block); // three blocks, the last one smaller
        Assert.NotEqual(0, inter % block);
        var x = QuantTestData.GaussianRows(t, k, seed: 24);
        using var xt = tensor(x).reshape(1, t, k);
        using var y = QuantPrefill.SwiGluMlp(xt, gate, up, down, gemm, threads: 2, tileBytes: 256 << 10);
        Assert.Equal([1, t, hidden], y.shape);
        Assert.Equal(ScalarType.Float32, y.dtype);
        var yv = y.data<float>().ToArray();
        float[] gf = gate.ToFloat(), uf = up.ToFloat(), df = down.ToFloat();
        double tol = gemm == ScalarType.BFloat16 ? 0.03 : 1e-4;
        var a = new double[inter];
        for (int r = 0; r < t; r++)
        {
            for (int i = 0; i < inter; i++)
            {
                double g = 0, u = 0;
                for (int c = 0; c < k; c++) { g += (double)gf[i * k + c] * x[r * k + c]; u += (double)uf[i * k + c] * x[r * k + c]; }
                a[i] = g / (1 + Math.Exp(-g)) * u;
            }
            for (int j = 0; j < hidden; j++)
            {
                double s = 0, mag = 0;
                for (int i = 0; i < inter; i++) { double p = df[j * inter + i] * a[i]; s += p; mag += Math.Abs(p); }
                Assert.True(Math.Abs(yv[r * hidden + j] - s) <= tol * mag + 1e-4, $"{gateUpType}/{downType} {gemm} row {r} output {j}: {yv[r * hidden + j]} vs {s} (Σ|terms| {mag})");
            }
        }
    }

    [Theory]
    [InlineData(8960, 256, 1792)] // the 1.5B shape's Q4_K/Q6_K: 5 blocks
    [InlineData(8960, 32, 1792)]  // Q8_0
    [InlineData(1024, 256, 1024)] // small enough for one block
    [InlineData(256 * 11, 256, 1536)] // 11 units: 6 + 5
    [InlineData(18944, 256, 2048)] // 7B's intermediate size, 74 units: 9 × 8 + 2
    public void MlpBlocksAreWholeFormatBlocksNearTwoThousandColumns(int inter, int blockSize, int expected)
    {
        int block = QuantPrefill.MlpBlock(inter, blockSize);
        Assert.Equal(0, block % blockSize);
        Assert.InRange(block, blockSize, Math.Max(2048, blockSize));
        Assert.Equal(expected, block);
    }
}
