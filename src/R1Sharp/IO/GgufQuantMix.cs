namespace R1Sharp.IO;

/// <summary>The file types `r1 quantize --type` writes, as llama.cpp's llama-quantize names them.</summary>
public enum GgufQuantType { Q8_0, Q4_0, Q6_K, Q4_K_M }

/// <summary>
/// Which ggml type llama.cpp's llama-quantize gives each tensor of a file type (llama-quant.cpp:
/// tensor_allows_quantization, llama_tensor_get_type_impl, tensor_type_fallback), for the dense Qwen2/Llama models
/// R1Sharp writes, so that `r1 quantize` produces the files llama.cpp would. Q4_K_M is Q4_K with more bits where the
/// error costs most: the output matrix (or the token embeddings when they double as it) in Q6_K, and attn_v and ffn_down
/// in Q6_K for the first eighth of the layers, the last eighth, and every third layer between (use_more_bits); on 80-layer
/// (70B) models the remaining attn_v are Q5_K. Q4_0 likewise puts the output matrix in Q6_K. Rows that are not whole
/// blocks fall back as llama.cpp does (Q6_K → Q8_0, Q4_K → Q5_0; F16 when not even whole 32-value blocks): a model whose
/// hidden size is not a multiple of 256 (`r1 zero`'s demo, 128) gets no K-quant at all. Where llama-quantize has no fallback and
/// refuses the tensor (Q8_0 or Q4_0 rows that are not whole 32-value blocks) F16 is written.
/// Mixture-of-experts and Falcon rules are not here.
/// </summary>
public static class GgufQuantMix
{
    public static GgufQuantType Parse(string name) => name.ToLowerInvariant() switch
    {
        "q8_0" => GgufQuantType.Q8_0, "q4_0" => GgufQuantType.Q4_0, "q6_k" => GgufQuantType.Q6_K, "q4_k_m" => GgufQuantType.Q4_K_M,
        _ => throw new R1SharpException($"unknown quantization type \"{name}\" (expected q8_0, q4_0, q6_k or q4_k_m)"),
    };

    /// <summary>general.file_type (llama.h, enum llama_ftype).</summary>
    public static uint FileType(GgufQuantType t) => t switch
    {
        GgufQuantType.Q4_0 => 2, GgufQuantType.Q8_0 => 7, GgufQuantType.Q4_K_M => 15, GgufQuantType.Q6_K => 18,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>The type of most matrices (llama_ftype_get_default_type).</summary>
    public static GgmlType DefaultType(GgufQuantType t) => t switch
    {
        GgufQuantType.Q4_0 => GgmlType.Q4_0, GgufQuantType.Q8_0 => GgmlType.Q8_0, GgufQuantType.Q4_K_M => GgmlType.Q4_K, GgufQuantType.Q6_K => GgmlType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>One tensor as the chooser sees it: GGUF name, ggml dims (ne[0] first) and current type.</summary>
    public sealed record Tensor(string Name, long[] Dims, GgmlType Type);

    /// <summary>
    /// The type each tensor is stored as, in the order given. <paramref name="blockCount"/> is {arch}.block_count.
    /// llama.cpp counts attn_v and ffn_down tensors in its own order (layer number, then name), which for one of each per
    /// layer makes the count the layer index.
    /// </summary>
    public static GgmlType[] Choose(IReadOnlyList<Tensor> tensors, GgufQuantType mix, int blockCount)
    {
        var def = DefaultType(mix);
        bool tied = !tensors.Any(t => t.Name == "output.weight");
        int nAttnV = tensors.Count(t => IsAttnV(t.Name));
        var result = new GgmlType[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (!AllowsQuantization(t)) { result[i] = t.Type; continue; }
            var type = def;
            if (t.Name == "output.weight" || (tied && t.Name == "token_embd.weight"))
            {
                // Q8_0 when the rows are not whole blocks of the default type, else Q6_K unless the mix is Q8_0.
                if (t.Dims[0] % GgmlTypeInfo.Geometry(def).BlockSize != 0) type = GgmlType.Q8_0;
                else if (def != GgmlType.Q8_0) type = GgmlType.Q6_K;
            }
            else if (mix == GgufQuantType.Q4_K_M && IsAttnV(t.Name))
            {
                int layer = Layer(t.Name);
                if (UseMoreBits(layer, nAttnV)) type = GgmlType.Q6_K;
                if (blockCount == 80 && type == GgmlType.Q4_K) type = GgmlType.Q5_K; // LLM_TYPE_70B
            }
            else if (mix == GgufQuantType.Q4_K_M && t.Name.Contains("ffn_down", StringComparison.Ordinal))
            {
                if (UseMoreBits(Layer(t.Name), blockCount)) type = GgmlType.Q6_K;
            }
            result[i] = Fallback(t, type);
        }
        return result;
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers, and every third layer between.</summary>
    public static bool UseMoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    static bool IsAttnV(string name) => name.Contains("attn_v.weight", StringComparison.Ordinal)
        || name.Contains("attn_qkv.weight", StringComparison.Ordinal) || name.Contains("attn_kv_b.weight", StringComparison.Ordinal);

    static int Layer(string name)
    {
        var parts = name.Split('.');
        return parts.Length > 1 && parts[0] == "blk" && int.TryParse(parts[1], out int l) ? l
            : throw new R1SharpException($"tensor {Excerpt.Quote(name)}: cannot tell its layer (expected blk.N.…)");
    }

    /// <summary>tensor_allows_quantization for the tensors of dense models: 2-D and more, names ending in "weight",
    /// never norms.</summary>
    static bool AllowsQuantization(Tensor t) =>
        t.Dims.Length >= 2 && t.Name.EndsWith("weight", StringComparison.Ordinal) && !t.Name.Contains("_norm.weight", StringComparison.Ordinal)
        && !t.Name.Contains("ffn_gate_inp.weight", StringComparison.Ordinal);

    /// <summary>tensor_type_fallback: rows that are not whole blocks of the chosen type.</summary>
    static GgmlType Fallback(Tensor t, GgmlType type)
    {
        if (t.Dims[0] % GgmlTypeInfo.Geometry(type).BlockSize == 0) return type;
        var fallback = type switch
        {
            GgmlType.Q6_K => GgmlType.Q8_0,
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            // llama-quantize defines no fallback for Q8_0 and Q4_0 and refuses such a tensor; F16 keeps it exact, as
            // `r1 export gguf --type q8_0` always wrote it (small test models have feed-forward sizes such as 176).
            _ => GgmlType.F16,
        };
        if (t.Dims[0] % 32 != 0) return GgmlType.F16;
        if (!GgmlQuantize.IsSupported(fallback))
            throw new R1SharpException($"tensor {Excerpt.Quote(t.Name)}: rows of {t.Dims[0]} values are not whole {type} blocks; llama.cpp falls back to {fallback}, which R1Sharp does not write");
        return fallback;
    }
}
