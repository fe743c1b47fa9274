using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// A qwen2/llama GGUF file → a Hugging Face folder (config.json, safetensors, tokenizer files, chat template):
/// the reverse of <see cref="GgufExport"/>. Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights are dequantised to float32;
/// F32/F16/BF16 keep their type.
/// </summary>
public static class GgufImport
{
    public static void Import(string ggufPath, string outDir)
    {
        using var g = GgufFile.Open(ggufPath);
        foreach (var t in g.Tensors)
            if (!GgmlTypeInfo.IsKnown(t.Type))
                throw new R1SharpException($"{g.Path}: tensor '{t.Name}' is {t.Type}; import supports F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K");
        var cfg = ReadConfig(g);
        var dtype = ChooseDType(g);
        using var model = new CausalLM(cfg, dtype: dtype);
        LoadWeights(g, model);
        string tokDir = Path.Combine(Path.GetTempPath(), "r1sharp-gguf-tok-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(tokDir);
        try
        {
            GgufVocab.WriteTokenizerFiles(g, tokDir);
            ModelFolder.Save(model, outDir, tokDir, dtype);
        }
        finally { Directory.Delete(tokDir, true); }
    }

    /// <summary>float32 for float32 or quantised matrices (dequantised values are exact in float32), else the
    /// matrices' own half type.</summary>
    static ScalarType ChooseDType(GgufFile g)
    {
        var types = g.Tensors.Where(t => t.Dims.Length >= 2).Select(t => t.Type).Distinct().ToList();
        if (types.Count == 1 && types[0] == GgmlType.BF16) return ScalarType.BFloat16;
        if (types.Count == 1 && types[0] == GgmlType.F16) return ScalarType.Float16;
        return ScalarType.Float32;
    }

    public static ModelConfig ReadConfig(GgufFile g)
    {
        string a = g.GetString("general.architecture");
        if (a is not ("qwen2" or "llama")) throw new R1SharpException($"{g.Path}: general.architecture \"{a}\" is not supported (expected qwen2 or llama)");
        long U(string k) => g.GetInt($"{a}.{k}");
        static double Tidy(double v) => double.Parse(((float)v).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var embd = g.Tensor("token_embd.weight");
        long hidden = U("embedding_length"), heads = U("attention.head_count");
        long headDim = g.TryInt($"{a}.attention.key_length") ?? hidden / heads;
        var raw = new JsonObject
        {
            ["architectures"] = new JsonArray(a == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"),
            ["model_type"] = a,
            ["vocab_size"] = embd.Dims[1],
            ["hidden_size"] = hidden,
            ["intermediate_size"] = U("feed_forward_length"),
            ["num_hidden_layers"] = U("block_count"),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = g.TryInt($"{a}.attention.head_count_kv") ?? heads,
            ["max_position_embeddings"] = g.TryInt($"{a}.context_length") ?? 32768,
            ["rms_norm_eps"] = Tidy(g.TryFloat($"{a}.attention.layer_norm_rms_epsilon") ?? 1e-6),
            ["rope_theta"] = Tidy(g.TryFloat($"{a}.rope.freq_base") ?? 10000),
            ["tie_word_embeddings"] = !g.HasTensor("output.weight"),
            ["hidden_act"] = "silu",
        };
        if (headDim != hidden / heads) raw["head_dim"] = headDim;
        if (a == "llama")
        {
            raw["attention_bias"] = g.HasTensor("blk.0.attn_q.bias");
            raw["mlp_bias"] = g.HasTensor("blk.0.ffn_up.bias");
        }
        if (g.TryInt("tokenizer.ggml.bos_token_id") is { } bos) raw["bos_token_id"] = bos;
        if (g.TryInt("tokenizer.ggml.eos_token_id") is { } eos) raw["eos_token_id"] = eos;
        if (g.HasTensor("rope_freqs.weight")) raw["rope_scaling"] = ReadRopeScaling(g, (int)headDim, raw["rope_theta"]!.GetValue<double>());
        return ModelConfig.FromJson(raw, g.Path);
    }

    /// <summary>Llama 3 scaling from our r1sharp.rope_scaling.* keys, else Llama 3.1's published parameters (factor 8,
    /// low 1, high 4, original context 8192), accepted only when they reproduce the file's rope_freqs.</summary>
    static JsonObject ReadRopeScaling(GgufFile g, int headDim, double theta)
    {
        string p = GgufExport.RopeScalingPrefix;
        var rs = new RopeScaling(g.TryString(p + "type") ?? "llama3", g.TryFloat(p + "factor") ?? 8, g.TryFloat(p + "low_freq_factor") ?? 1,
            g.TryFloat(p + "high_freq_factor") ?? 4, (int)(g.TryInt(p + "original_max_position_embeddings") ?? 8192));
        var expected = GgufExport.Llama3RopeFactors(headDim, theta, rs);
        var info = g.Tensor("rope_freqs.weight");
        if (info.Type != GgmlType.F32 || info.Elements != expected.Length)
            throw new R1SharpException($"{g.Path}: rope_freqs.weight should be {expected.Length} float32 values, found {info.Type} × {info.Elements}");
        var actual = new float[expected.Length];
        g.ReadData(info, 0, MemoryMarshal.AsBytes(actual.AsSpan()));
        for (int i = 0; i < actual.Length; i++)
            if (Math.Abs(actual[i] - expected[i]) > 1e-4 * Math.Abs(expected[i]))
                throw new R1SharpException($"{g.Path}: rope_freqs.weight[{i}] is {actual[i]} but llama3 scaling ({rs.Factor}, {rs.LowFreqFactor}, {rs.HighFreqFactor}, {rs.OriginalMaxPositionEmbeddings}) gives {expected[i]}");
        return new JsonObject
        {
            ["rope_type"] = rs.RopeType, ["factor"] = rs.Factor, ["low_freq_factor"] = rs.LowFreqFactor,
            ["high_freq_factor"] = rs.HighFreqFactor, ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
        };
    }

    static void LoadWeights(GgufFile g, CausalLM model)
    {
        var c = model.Config;
        var parameters = model.StateDict();
        var seen = new HashSet<string>();
        using var noGrad = no_grad();
        foreach (var info in g.Tensors)
        {
            if (info.Name == "rope_freqs.weight") continue;
            string hf = GgufNames.ToHf(info.Name) ?? throw new R1SharpException($"{g.Path}: tensor '{info.Name}' has no Hugging Face counterpart in {c.ModelType}");
            if (!parameters.TryGetValue(hf, out var p)) throw new R1SharpException($"{g.Path}: tensor '{info.Name}' ({hf}) is not a parameter of this {c.ModelType} configuration");
            if (!info.TorchShape.SequenceEqual(p.shape))
                throw new R1SharpException($"{g.Path}: tensor '{info.Name}' has shape [{string.Join(", ", info.TorchShape)}], expected [{string.Join(", ", p.shape)}] for {hf}");
            using var scope = NewDisposeScope();
            var x = ReadFloat32(g, info);
            if (GgufNames.RopePermuteHeads(hf, c.ModelType, c.NumAttentionHeads, c.NumKeyValueHeads) is { } h)
                x = GgufNames.UnpermuteFromInterleavedRope(x, h);
            p.copy_(x);
            seen.Add(hf);
        }
        var missing = parameters.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0) throw new R1SharpException($"{g.Path}: no tensor for parameter '{missing[0]}' ({GgufNames.ToGguf(missing[0])}){(missing.Count > 1 ? $" and {missing.Count - 1} more" : "")}");
    }

    /// <summary>A tensor decoded to float32 in its PyTorch shape, read and decoded a few MB at a time.</summary>
    public static Tensor ReadFloat32(GgufFile g, GgufTensorInfo info)
    {
        var result = empty(info.TorchShape, ScalarType.Float32);
        var (bs, bb) = GgmlTypeInfo.Geometry(info.Type);
        byte[] buffer = [];
        TensorMemory.ForEachChunk(result, (chunk, byteOffset) =>
        {
            var values = MemoryMarshal.Cast<byte, float>(chunk);
            long firstValue = byteOffset / 4;
            int bytes = values.Length / bs * bb;
            if (buffer.Length < bytes) buffer = new byte[bytes];
            g.ReadData(info, firstValue / bs * bb, buffer.AsSpan(0, bytes));
            GgufQuant.Dequantize(info.Type, buffer.AsSpan(0, bytes), values);
        });
        return result;
    }
}
