using R1Sharp.IO;
using R1Sharp.Kernels;

namespace R1Sharp.Tests.Kernels;

/// <summary>
/// The quantized decode kernels against a dequantise-then-multiply reference in double (the weights decoded by
/// GgufQuant, itself checked bit for bit against ggml), on random blocks, 1 to 16 rows, every path this CPU has
/// (the AVX2 one forced on AVX-512 machines, and the scalar one everywhere).
/// </summary>
public sealed unsafe class QuantGemvTests
{
    static IEnumerable<QuantIsa> Paths() => Enum.GetValues<QuantIsa>().Where(i => i <= QuantKernels.Best);

    /// <summary>y = W·x in double from the dequantised weights, and Σ|w·x| per output (the scale of rounding errors).</summary>
    static (double[] Y, double[] Mag) Reference(float[] w, float[] x, int rows, int n, int k)
    {
        var y = new double[rows * n];
        var mag = new double[rows * n];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, m = 0;
                for (int i = 0; i < k; i++) { double p = (double)w[j * k + i] * x[r * k + i]; s += p; m += Math.Abs(p); }
                y[r * n + j] = s; mag[r * n + j] = m;
            }
        return (y, mag);
    }

    static float[] Run(QuantIsa isa, QuantMatrix[] ws, float[] x, int rows, float[]?[] biases, int threads = 2)
    {
        var outputs = ws.Select(w => new float[rows * w.Rows]).ToArray();
        var saved = QuantKernels.Isa;
        QuantKernels.Isa = isa;
        try
        {
            var handles = new List<System.Runtime.InteropServices.GCHandle>();
            nint Pin(Array a) { var h = System.Runtime.InteropServices.GCHandle.Alloc(a, System.Runtime.InteropServices.GCHandleType.Pinned); handles.Add(h); return h.AddrOfPinnedObject(); }
            var targets = ws.Select((w, i) => new QuantGemv.Target(w, Pin(outputs[i]), biases[i] is { } b ? Pin(b) : 0)).ToArray();
            fixed (float* xp = x) QuantGemv.Run(targets, xp, rows, threads);
            handles.ForEach(h => h.Free());
        }
        finally { QuantKernels.Isa = saved; }
        return outputs.SelectMany(o => o).ToArray();
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 64)]
    [InlineData(GgmlType.Q4_0, 96)]
    [InlineData(GgmlType.Q5_0, 160)]
    [InlineData(GgmlType.Q4_K, 512)]
    [InlineData(GgmlType.Q5_K, 768)]
    [InlineData(GgmlType.Q6_K, 512)]
    public void ExactOnActivationsThatQuantiseExactly(GgmlType type, int k)
    {
        const int n = 37;
        var w = QuantTestData.RandomMatrix(type, n, k, seed: (int)type);
        var wf = w.ToFloat();
        foreach (var isa in Paths())
            foreach (int rows in new[] { 1, 2, 3, 4, 5, 7, 8, 13, 16 })
            {
                var x = QuantTestData.GridRows(rows, k, seed: rows);
                var (yr, mag) = Reference(wf, x, rows, n, k);
                var y = Run(isa, [w], x, rows, [null]);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(Math.Abs(y[i] - yr[i]) <= 2e-6 * mag[i] + 1e-30,
                        $"{type} {isa} rows {rows} output {i}: kernel {y[i]}, reference {yr[i]} (Σ|w·x| {mag[i]})");
            }
    }

    /// <summary>
    /// The 8-row kernels (QuantDot8) add a sub-block's int16 products before widening them, which is safe only within
    /// the formats' ranges: here at their edges (every Q4_K nibble 15, every Q6_K value 63, Q8_0 bytes ±127) against
    /// activations of ±max (int8 ±127 everywhere), where an overflow would flip signs; checked against the 4-row
    /// kernels on the same integers (they widen every product), which differ from it by float summation order only,
    /// at 8 to 16 rows.
    /// </summary>
    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q8_0)]
    public void EightRowKernelsMatchFourRowOnesAtTheFormatsEdges(GgmlType type)
    {
        const int n = 19, k = 512;
        var bytes = QuantTestData.RandomBlocks(type, n, k, seed: 5);
        var (_, bb) = GgmlTypeInfo.Geometry(type);
        for (int b = 0; b < bytes.Length; b += bb)
            switch (type)
            {
                case GgmlType.Q4_K: bytes.AsSpan(b + 16, 128).Fill(0xFF); break;
                case GgmlType.Q6_K: bytes.AsSpan(b, 192).Fill(0xFF); break;
                case GgmlType.Q8_0: for (int i = 0; i < 32; i++) bytes[b + 2 + i] = (byte)(i % 3 == 0 ? 0x81 : 0x7F); break;
            }
        var w = QuantMatrix.FromBlocks("edges", type, n, k, bytes);
        foreach (var isa in Paths().Where(p => p != QuantIsa.Scalar))
            foreach (int rows in new[] { 8, 11, 16 })
            {
                var x = new float[rows * k];
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < k; i++) x[r * k + i] = (r % 2 == 0) == (i % 7 != 3) ? 1f : -1f;
                var saved = QuantKernels.EightRows;
                try
                {
                    QuantKernels.EightRows = false;
                    var four = Run(isa, [w], x, rows, [null]);
                    QuantKernels.EightRows = true;
                    var eight = Run(isa, [w], x, rows, [null]);
                    float scale = four.Max(Math.Abs);
                    for (int i = 0; i < four.Length; i++)
                        Assert.True(Math.Abs(eight[i] - four[i]) <= 1e-5 * scale,
                            $"{type} {isa} rows {rows} output {i}: 8-row kernel {eight[i]}, 4-row kernel {four[i]}");
                }
                finally { QuantKernels.EightRows = saved; }
            }
    }

    /// <summary>Gaussian x: the int8 paths differ from the float32 product by the activations' rounding, at most
    /// half a step d_x per value, so |error| ≤ Σ_i |w_i|·d_x(i)/2 (plus float accumulation); the scalar path not at all.</summary>
    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void WithinTheActivationRoundingBound(GgmlType type)
    {
        const int n = 21, k = 1536, rows = 6;
        var w = QuantTestData.RandomMatrix(type, n, k, seed: 100 + (int)type);
        var wf = w.ToFloat();
        var x = QuantTestData.GaussianRows(rows, k, seed: 7);
        var (yr, mag) = Reference(wf, x, rows, n, k);
        int block = type is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 ? 32 : 256;
        foreach (var isa in Paths())
        {
            var y = Run(isa, [w], x, rows, [null]);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < n; j++)
                {
                    double bound = 2e-6 * mag[r * n + j];
                    if (isa != QuantIsa.Scalar)
                        for (int b = 0; b < k / block; b++)
                        {
                            double amax = 0;
                            for (int i = b * block; i < (b + 1) * block; i++) amax = Math.Max(amax, Math.Abs(x[r * k + i]));
                            for (int i = b * block; i < (b + 1) * block; i++) bound += Math.Abs(wf[j * k + i]) * amax / 127 / 2;
                        }
                    double err = Math.Abs(y[r * n + j] - yr[r * n + j]);
                    Assert.True(err <= bound, $"{type} {isa} row {r} output {j}: error {err}, bound {bound}");
                }
        }
    }

    [Fact]
    public void MixedFormatsWithBiasesInOneCall()
    {
        const int k = 512;
        QuantMatrix[] ws = [QuantTestData.RandomMatrix(GgmlType.Q4_K, 40, k, 1), QuantTestData.RandomMatrix(GgmlType.Q6_K, 9, k, 2),
            QuantTestData.RandomMatrix(GgmlType.Q8_0, 33, k, 3), QuantTestData.RandomMatrix(GgmlType.Q5_K, 1, k, 4),
            QuantTestData.RandomMatrix(GgmlType.Q5_0, 7, k, 6)];
        var rng = new Random(5);
        float[]?[] biases = [ws[0].Rows is var r0 ? Enumerable.Range(0, r0).Select(_ => (float)rng.NextDouble()).ToArray() : null, null,
            Enumerable.Range(0, 33).Select(_ => (float)rng.NextDouble()).ToArray(), [42f], null];
        foreach (var isa in Paths())
            foreach (int rows in new[] { 1, 6, 16 })
            {
                var x = QuantTestData.GridRows(rows, k, seed: 9);
                var y = Run(isa, ws, x, rows, biases, threads: 2);
                int at = 0;
                for (int m = 0; m < ws.Length; m++)
                {
                    var (yr, mag) = Reference(ws[m].ToFloat(), x, rows, ws[m].Rows, k);
                    for (int i = 0; i < yr.Length; i++)
                    {
                        double expected = yr[i] + (biases[m]?[i % ws[m].Rows] ?? 0);
                        Assert.True(Math.Abs(y[at + i] - expected) <= 2e-6 * mag[i] + 1e-6, $"{isa} rows {rows} weight {m} output {i}: {y[at + i]} vs {expected}");
                    }
                    at += yr.Length;
                }
            }
    }

    /// <summary>Against llama.cpp's own CPU kernels (ggml-cpu's vec_dot after its own activation quantisation) on the
    /// same random blocks: the K-quants quantise activations to q8_K as we do (to rounding of the same values), so the
    /// outputs agree to float summation order; Q8_0/Q4_0 activations keep an f16 scale in ggml (ours float32), a
    /// relative difference up to 2^-11 per block.</summary>
    [Theory]
    [InlineData(GgmlType.Q8_0, 1e-3, 1024)]
    [InlineData(GgmlType.Q4_0, 1e-3, 1024)]
    [InlineData(GgmlType.Q5_0, 1e-3, 1024)]
    [InlineData(GgmlType.Q4_K, 1e-5, 1024)]
    [InlineData(GgmlType.Q5_K, 1e-5, 1024)]
    [InlineData(GgmlType.Q6_K, 1e-5, 1024)]
    [InlineData(GgmlType.Q4_K, 1e-5, 256)]
    [InlineData(GgmlType.Q6_K, 1e-5, 256)]
    public void AgreesWithLlamaCppsKernels(GgmlType type, double tol, int k)
    {
        const int n = 29;
        var blocks = QuantTestData.RandomBlocks(type, n, k, seed: 200 + (int)type);
        var w = QuantMatrix.FromBlocks("w", type, n, k, blocks);
        var wf = w.ToFloat();
        foreach (int rows in new[] { 1, 5 })
        {
            var x = QuantTestData.GaussianRows(rows, k, seed: rows);
            var theirs = Gguf.GgmlReference.MulMat((int)type, blocks, n, k, x, rows);
            var (_, mag) = Reference(wf, x, rows, n, k);
            foreach (var isa in Paths().Where(i => i != QuantIsa.Scalar))
            {
                var ours = Run(isa, [w], x, rows, [null]);
                for (int i = 0; i < ours.Length; i++)
                    Assert.True(Math.Abs(ours[i] - theirs[i]) <= tol * mag[i], $"{type} {isa} rows {rows} output {i}: ours {ours[i]}, llama.cpp {theirs[i]}");
            }
        }
    }
}