using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// Block-scaled FP8 weights as DeepSeek-V3/R1 ship them: a linear weight W [rows, cols] stored as float8_e4m3fn (dtype
/// "F8_E4M3") beside "{name}_scale_inv" [⌈rows/bm⌉, ⌈cols/bn⌉] float32, one scale per bm × bn block
/// (quantization_config.weight_block_size), and W[i, j] = fp8(W[i, j]) · scale_inv[i / bm, j / bn] (DeepSeek-V3's
/// inference/kernel.py weight_dequant; fp8_cast_bf16.py). Loading dequantises one block row at a time straight into
/// the parameter, so a shard is never held twice; saving quantises the same way with scale = amax / 448.
/// </summary>
public static class Fp8Weights
{
    public const string DType = "F8_E4M3";

    public static string ScaleName(string weight) => weight + "_scale_inv";

    /// <summary>Whether a parameter is stored in FP8 when saving: the layers' linear projections, as DeepSeek's
    /// releases (embeddings, output head, norms, the router and its bias stay in the checkpoint's dtype).</summary>
    public static bool Quantizes(string name, Tensor t) =>
        t.dim() == 2 && name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal) && name.Contains("proj");

    /// <summary>Checks an F8_E4M3 checkpoint tensor before anything is read: a block size from config.json, its scale
    /// present with the block grid's shape, a float destination of its shape.</summary>
    internal static void Check(SafetensorsFile file, SafetensorsEntry entry, IReadOnlyDictionary<string, SafetensorsFile> located, Tensor destination, int[]? block)
    {
        string where = $"{file.Path}: tensor '{entry.Name}'";
        if (block is not { Length: 2 }) throw new R1SharpException($"{where} is {DType}, but config.json has no quantization_config with a weight_block_size");
        if (entry.Shape.Length != 2) throw new R1SharpException($"{where} is {DType} with shape {entry.ShapeText}; block-scaled weights are matrices");
        if (!SafetensorsDType.IsFloat(destination.dtype)) throw new R1SharpException($"{where} is {DType}; it can only be read into a float parameter, not {destination.dtype}");
        string scale = ScaleName(entry.Name);
        if (!located.TryGetValue(scale, out var scaleFile))
            throw new R1SharpException($"{where} is {DType} but its scale '{scale}' is missing");
        var s = scaleFile.Entries[scale];
        long[] expected = [(entry.Shape[0] + block[0] - 1) / block[0], (entry.Shape[1] + block[1] - 1) / block[1]];
        if (!s.Shape.SequenceEqual(expected))
            throw new R1SharpException($"{scaleFile.Path}: tensor '{scale}' has shape {s.ShapeText}, expected {SafetensorsEntry.FormatShape(expected)} (blocks of {block[0]} × {block[1]} over {entry.ShapeText})");
        if (s.DType is not ("F32" or "BF16" or "F16"))
            throw new R1SharpException($"{scaleFile.Path}: tensor '{scale}' is {s.DType}; a scale is a float tensor");
    }

    /// <summary>Dequantises an F8_E4M3 tensor into destination (same shape, any float dtype), one block row at a time.</summary>
    internal static unsafe void ReadInto(SafetensorsFile file, SafetensorsEntry entry, SafetensorsFile scaleFile, Tensor destination, int[] block)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long rows = entry.Shape[0], cols = entry.Shape[1];
        int bm = block[0], bn = block[1];
        long scaleCols = (cols + bn - 1) / bn;
        var scales = scaleFile.Read(ScaleName(entry.Name), ScalarType.Float32).data<float>().ToArray();
        var staging = empty([Math.Min(bm, rows), cols], ScalarType.Float32);
        var bytes = new byte[Math.Min(bm, rows) * cols];
        var table = Fp8E4M3.Values;
        for (long r0 = 0; r0 < rows; r0 += bm)
        {
            int n = (int)Math.Min(bm, rows - r0);
            var span = bytes.AsSpan(0, (int)(n * cols));
            file.ReadBytes(entry, r0 * cols, span);
            float* output = (float*)Kernels.TensorMemory.Address(staging);
            long scaleRow = r0 / bm * scaleCols;
            for (int i = 0; i < n; i++)
                for (long j = 0; j < cols; j++)
                {
                    byte b = span[(int)(i * cols + j)];
                    if (Fp8E4M3.IsNaN(b))
                        throw new R1SharpException($"{file.Path}: tensor '{entry.Name}' holds an e4m3 NaN (0x{b:X2}) at [{r0 + i}, {j}]; the file is corrupt");
                    output[i * cols + j] = table[b] * scales[scaleRow + j / bn];
                }
            destination.narrow(0, r0, n).copy_(staging.narrow(0, 0, n));
        }
        GC.KeepAlive(staging);
    }

    /// <summary>A weight as two items to write: its e4m3 bytes and its float32 scales, both computed block row by
    /// block row from the weight as they are written (scale = amax / 448 per block, 1 for an all-zero block).</summary>
    internal static IEnumerable<SafetensorsItem> Items(string name, Tensor weight, int[] block)
    {
        long rows = weight.size(0), cols = weight.size(1);
        int bm = block[0], bn = block[1];
        long scaleRows = (rows + bm - 1) / bm, scaleCols = (cols + bn - 1) / bn;
        yield return new SafetensorsItem(name, DType, [rows, cols], rows * cols, s => ForEachBlockRow(weight, bm, bn, (values, n, scales) =>
        {
            var output = new byte[n * cols];
            for (int i = 0; i < n; i++)
                for (long j = 0; j < cols; j++)
                    output[i * cols + j] = Fp8E4M3.FromFloat(values[(int)(i * cols + j)] / scales[j / bn]);
            s.Write(output);
        }));
        yield return new SafetensorsItem(ScaleName(name), "F32", [scaleRows, scaleCols], scaleRows * scaleCols * 4,
            s => ForEachBlockRow(weight, bm, bn, (_, _, scales) => s.Write(MemoryMarshal.AsBytes(scales.AsSpan()))));
    }

    /// <summary>Calls back with each block row's float32 values, its row count and its per-block scales.</summary>
    static void ForEachBlockRow(Tensor weight, int bm, int bn, Action<float[], int, float[]> action)
    {
        using var noGrad = no_grad();
        long rows = weight.size(0), cols = weight.size(1);
        var scales = new float[(cols + bn - 1) / bn];
        for (long r0 = 0; r0 < rows; r0 += bm)
        {
            int n = (int)Math.Min(bm, rows - r0);
            float[] values;
            using (var scope = NewDisposeScope()) values = weight.detach().narrow(0, r0, n).to(ScalarType.Float32, CPU).contiguous().data<float>().ToArray();
            for (int c = 0; c < scales.Length; c++)
            {
                float amax = 0;
                for (int i = 0; i < n; i++)
                    for (long j = (long)c * bn; j < Math.Min(cols, (long)(c + 1) * bn); j++) amax = Math.Max(amax, Math.Abs(values[i * cols + j]));
                scales[c] = amax > 0 ? amax / Fp8E4M3.Max : 1f;
            }
            action(values, n, scales);
        }
    }
}
