using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// Hugging Face parameter names ↔ llama.cpp tensor names for the qwen2 and llama architectures
/// (gguf-py's tensor_mapping.py: token_embd, blk.N.attn_q, ffn_gate, output_norm, output ...).
/// </summary>
public static partial class GgufNames
{
    static readonly (string Hf, string Gguf)[] LayerParts =
    [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
        ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
        ("self_attn.o_proj.weight", "attn_output.weight"), ("self_attn.o_proj.bias", "attn_output.bias"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.gate_proj.bias", "ffn_gate.bias"),
        ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.up_proj.bias", "ffn_up.bias"),
        ("mlp.down_proj.weight", "ffn_down.weight"), ("mlp.down_proj.bias", "ffn_down.bias"),
    ];

    static readonly (string Hf, string Gguf)[] Globals =
    [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")] private static partial Regex HfLayer();
    [GeneratedRegex(@"^blk\.(\d+)\.(.+)$")] private static partial Regex GgufLayer();

    public static string ToGguf(string hf)
    {
        foreach (var (h, g) in Globals) if (h == hf) return g;
        var m = HfLayer().Match(hf);
        if (m.Success)
            foreach (var (h, g) in LayerParts)
                if (h == m.Groups[2].Value) return $"blk.{m.Groups[1].Value}.{g}";
        throw new R1SharpException($"parameter '{hf}' has no llama.cpp tensor name (qwen2/llama layouts only)");
    }

    /// <summary>The HF name of a llama.cpp tensor, or null for tensors HF has no parameter for (rope_freqs).</summary>
    public static string? ToHf(string gguf)
    {
        foreach (var (h, g) in Globals) if (g == gguf) return h;
        var m = GgufLayer().Match(gguf);
        if (m.Success)
            foreach (var (h, g) in LayerParts)
                if (g == m.Groups[2].Value) return $"model.layers.{m.Groups[1].Value}.{h}";
        return null;
    }

    /// <summary>
    /// llama.cpp's "llama" graph applies RoPE to interleaved pairs (x0,x1),(x2,x3)…, while HF's rotate_half pairs
    /// x_i with x_{i+d/2}. convert_hf_to_gguf.py's LlamaModel.permute reorders the rows of q_proj/k_proj (weights
    /// and biases) within each head so the same rotation results: row (h, half, i) moves to (h, i, half).
    /// Qwen2 runs with NEOX-style RoPE in llama.cpp (same as rotate_half), so it needs no permutation.
    /// </summary>
    public static Tensor PermuteForInterleavedRope(Tensor w, int heads)
    {
        long rows = w.shape[0];
        long[] rest = w.shape.Skip(1).ToArray();
        return w.reshape([heads, 2, rows / heads / 2, .. rest]).transpose(1, 2).reshape(w.shape);
    }

    /// <summary>The inverse of <see cref="PermuteForInterleavedRope"/>, for import.</summary>
    public static Tensor UnpermuteFromInterleavedRope(Tensor w, int heads)
    {
        long rows = w.shape[0];
        long[] rest = w.shape.Skip(1).ToArray();
        return w.reshape([heads, rows / heads / 2, 2, .. rest]).transpose(1, 2).reshape(w.shape);
    }

    /// <summary>Heads to permute by for a llama q/k tensor (HF name), or null when the tensor is left as is.</summary>
    public static int? RopePermuteHeads(string hf, string arch, int heads, int kvHeads)
    {
        if (arch != "llama") return null;
        if (hf.EndsWith("self_attn.q_proj.weight") || hf.EndsWith("self_attn.q_proj.bias")) return heads;
        if (hf.EndsWith("self_attn.k_proj.weight") || hf.EndsWith("self_attn.k_proj.bias")) return kvHeads;
        return null;
    }
}
