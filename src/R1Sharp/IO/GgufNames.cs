using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// Hugging Face parameter names ↔ llama.cpp tensor names through an architecture's table (gguf-py's
/// tensor_mapping.py: token_embd, blk.N.attn_q, ffn_gate, output_norm, output …), and the row permutation of
/// llama.cpp's interleaved RoPE.
/// </summary>
public static partial class GgufNames
{
    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")] private static partial Regex HfLayer();
    [GeneratedRegex(@"^blk\.(\d+)\.(.+)$")] private static partial Regex GgufLayer();

    public static string ToGguf(string hf, GgufArchitecture arch)
    {
        foreach (var (h, g) in arch.GlobalTensors) if (h == hf) return g;
        var m = HfLayer().Match(hf);
        if (m.Success)
            foreach (var (h, g) in arch.LayerTensors)
                if (h == m.Groups[2].Value) return $"blk.{m.Groups[1].Value}.{g}";
        throw new R1SharpException($"parameter '{hf}' has no llama.cpp tensor name in the {arch.Name} architecture");
    }

    /// <summary>The HF name of a llama.cpp tensor, or null for tensors HF has no parameter for (rope_freqs).</summary>
    public static string? ToHf(string gguf, GgufArchitecture arch)
    {
        foreach (var (h, g) in arch.GlobalTensors) if (g == gguf) return h;
        var m = GgufLayer().Match(gguf);
        if (m.Success)
            foreach (var (h, g) in arch.LayerTensors)
                if (g == m.Groups[2].Value) return $"model.layers.{m.Groups[1].Value}.{h}";
        return null;
    }

    /// <summary>
    /// llama.cpp's "llama" graph applies RoPE to interleaved pairs (x0,x1),(x2,x3)…, while HF's rotate_half pairs
    /// x_i with x_{i+d/2}. convert_hf_to_gguf.py's LlamaModel.permute reorders the rows of q_proj/k_proj (weights
    /// and biases) within each head so the same rotation results: row (h, half, i) moves to (h, i, half).
    /// </summary>
    public static Tensor PermuteForInterleavedRope(Tensor w, int heads)
    {
        long rows = w.shape[0];
        long[] rest = w.shape.Skip(1).ToArray();
        return w.reshape([heads, 2, rows / heads / 2, .. rest]).transpose(1, 2).reshape(w.shape);
    }

    /// <summary>For each row of the Hugging Face layout, the row of the permuted matrix that holds it: row (h, half, i)
    /// was stored at (h, i, half). What <see cref="UnpermuteFromInterleavedRope"/> does, as an index for matrices that
    /// are read in place (<see cref="Kernels.QuantMatrix.WithRowOrder"/>).</summary>
    public static int[] InterleavedRopeRowOrder(int rows, int heads)
    {
        int half = rows / heads / 2;
        var order = new int[rows];
        for (int h = 0; h < heads; h++)
            for (int s = 0; s < 2; s++)
                for (int i = 0; i < half; i++)
                    order[h * 2 * half + s * half + i] = h * 2 * half + 2 * i + s;
        return order;
    }

    /// <summary>The inverse of <see cref="PermuteForInterleavedRope"/>, for import.</summary>
    public static Tensor UnpermuteFromInterleavedRope(Tensor w, int heads)
    {
        long rows = w.shape[0];
        long[] rest = w.shape.Skip(1).ToArray();
        return w.reshape([heads, rows / heads / 2, 2, .. rest]).transpose(1, 2).reshape(w.shape);
    }
}
