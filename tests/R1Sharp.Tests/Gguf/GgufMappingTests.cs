using System.Text;
using R1Sharp.IO;
using R1Sharp.Kernels;
using R1Sharp.Tests.Kernels;

namespace R1Sharp.Tests.Gguf;

/// <summary>Quantized tensors read in place from a mapped GGUF file, and the one-line errors for files whose tensors
/// are truncated or mislabelled.</summary>
public sealed unsafe class GgufMappingTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static readonly (string Name, GgmlType Type, int Rows, int Cols)[] Tensors =
    [
        ("blk.0.attn_q.weight", GgmlType.Q4_K, 8, 512),
        ("blk.0.ffn_down.weight", GgmlType.Q8_0, 4, 256),
        ("blk.0.attn_v.weight", GgmlType.Q6_K, 3, 256),
        ("output_norm.weight", GgmlType.F32, 1, 256),
    ];

    string WriteFile(string name)
    {
        var w = new GgufWriter().Add("general.architecture", GgufValue.Str("qwen2"));
        foreach (var (n, type, rows, cols) in Tensors)
        {
            long[] dims = type == GgmlType.F32 ? [cols] : [cols, rows];
            var bytes = type == GgmlType.F32 ? new byte[cols * 4] : QuantTestData.RandomBlocks(type, rows, cols, n.Length);
            w.AddTensor(new GgufTensorSpec(n, dims, type, s => s.Write(bytes)));
        }
        string path = _dir.File(name);
        w.Write(path);
        return path;
    }

    [Fact]
    public void MatricesAreReadInPlace()
    {
        string path = WriteFile("ok.gguf");
        using var g = GgufMapping.Open(path);
        foreach (var (n, type, rows, cols) in Tensors.Where(t => t.Type != GgmlType.F32))
        {
            var m = g.Matrix(n);
            Assert.Equal((type, rows, cols), (m.Type, m.Rows, m.Cols));
            var expected = new float[rows * cols];
            GgufQuant.Dequantize(type, File.ReadAllBytes(path).AsSpan((int)(g.File.DataStart + (long)g.File.Tensor(n).Offset), (int)m.ByteSize), expected);
            Assert.Equal(expected, m.ToFloat());
            // and the kernels read it where it is
            var x = QuantTestData.GridRows(1, cols, 1);
            var y = new float[rows];
            fixed (float* xp = x) fixed (float* yp = y) QuantGemv.Run([new QuantGemv.Target(m, (nint)yp)], xp, 1, 1);
            for (int j = 0; j < rows; j++)
            {
                double r = 0, mag = 0;
                for (int i = 0; i < cols; i++) { r += (double)expected[j * cols + i] * x[i]; mag += Math.Abs((double)expected[j * cols + i] * x[i]); }
                Assert.True(Math.Abs(y[j] - r) <= 2e-6 * mag, $"{n} row {j}: {y[j]} vs {r}");
            }
        }
    }

    static void Relabel(string path, string tensor, GgmlType type)
    {
        var bytes = File.ReadAllBytes(path);
        var name = Encoding.UTF8.GetBytes(tensor);
        int at = bytes.AsSpan().IndexOf(name) + name.Length + 4 + 16; // n_dims (u32), two dims (u64), then the type
        BitConverter.GetBytes((uint)type).CopyTo(bytes, at);
        File.WriteAllBytes(path, bytes);
    }

    static string Error(Action a) => Assert.Throws<R1SharpException>(a).Message;

    [Fact]
    public void TruncatedOrMislabelledTensorsAreOneErrorNamingThem()
    {
        string truncated = WriteFile("truncated.gguf");
        var bytes = File.ReadAllBytes(truncated);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 1100)]);
        var e = Error(() => GgufMapping.Open(truncated).Dispose());
        Assert.Contains("\"blk.0.attn_v.weight\"", e);
        Assert.Contains("truncated", e);

        // Q4_K data (8 × 2 blocks of 144 bytes) labelled Q8_0 claims 8 × 16 × 34 bytes: it runs into the next tensor.
        string bigger = WriteFile("bigger.gguf");
        Relabel(bigger, "blk.0.attn_q.weight", GgmlType.Q8_0);
        e = Error(() => GgufMapping.Open(bigger).Dispose());
        Assert.Contains("\"blk.0.attn_q.weight\"", e);
        Assert.Contains("type or shape", e);
        Assert.DoesNotContain('\n', e);

        // Q8_0 data labelled Q4_K claims fewer bytes than it has: refused when read as a matrix.
        string smaller = WriteFile("smaller.gguf");
        Relabel(smaller, "blk.0.ffn_down.weight", GgmlType.Q4_K);
        using (var g = GgufMapping.Open(smaller))
        {
            e = Error(() => g.Matrix("blk.0.ffn_down.weight"));
            Assert.Contains("\"blk.0.ffn_down.weight\"", e);
            Assert.Contains("type or shape", e);
            Assert.Equal(GgmlType.Q4_K, g.Matrix("blk.0.attn_q.weight").Type); // the others still read
        }

        // A type id ggml does not have, a vector asked for as a matrix, a missing tensor.
        string unknown = WriteFile("unknown.gguf");
        Relabel(unknown, "blk.0.attn_v.weight", (GgmlType)99);
        using (var g = GgufMapping.Open(unknown))
        {
            e = Error(() => g.Matrix("blk.0.attn_v.weight"));
            Assert.Contains("\"blk.0.attn_v.weight\"", e);
            Assert.Contains("99", e);
            Assert.Contains("\"output_norm.weight\"", Error(() => g.Matrix("output_norm.weight")));
            Assert.Contains("\"blk.9.attn_q.weight\"", Error(() => g.Matrix("blk.9.attn_q.weight")));
        }
    }
}
