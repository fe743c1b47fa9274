using System.Runtime.InteropServices;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// A Hugging Face Qwen2/Llama folder → one GGUF v3 file that llama.cpp, Ollama and LLamaSharp load: the architecture
/// keys llama.cpp's loader reads, the tokenizer, the chat template, and the weights under llama.cpp's names
/// (llama q/k rows permuted for its interleaved RoPE; Llama 3 scaling as a rope_freqs tensor, as convert_hf_to_gguf.py).
/// Weights are converted one tensor at a time while the file is written.
/// </summary>
public static class GgufExport
{
    /// <summary>Parses --type: f32, bf16, f16 or q8_0.</summary>
    public static GgmlType ParseType(string name) => name.ToLowerInvariant() switch
    {
        "f32" => GgmlType.F32, "bf16" => GgmlType.BF16, "f16" => GgmlType.F16, "q8_0" => GgmlType.Q8_0,
        _ => throw new R1SharpException($"unknown GGUF type \"{name}\" (expected f32, bf16, f16 or q8_0)"),
    };

    public static void Export(string modelDir, string outPath, GgmlType type = GgmlType.F32, string? pre = null)
    {
        if (type is not (GgmlType.F32 or GgmlType.BF16 or GgmlType.F16 or GgmlType.Q8_0))
            throw new R1SharpException($"export to {type} is not supported (f32, bf16, f16 or q8_0)");
        // Weights stay in the checkpoint's own dtype and are converted one tensor at a time as they are written, so
        // norms and biases (always f32 in GGUF) are never rounded and a bf16 checkpoint takes no float32 copy.
        using var model = ModelFolder.Load(modelDir);
        var w = new GgufWriter();
        AddArchitecture(w, model.Config, type);
        GgufVocab.AddTo(w, modelDir, model.Config.VocabSize, model.Config.BosTokenId, model.Config.EosTokenIds, pre);
        AddTensors(w, model, type);
        w.Write(outPath);
    }

    /// <summary>Keys under "r1sharp." carry what GGUF has no key for, so import can rebuild config.json exactly.</summary>
    public const string RopeScalingPrefix = "r1sharp.rope_scaling.";

    static void AddArchitecture(GgufWriter w, ModelConfig c, GgmlType type)
    {
        string a = c.ModelType;
        w.Add("general.architecture", GgufValue.Str(a));
        w.Add("general.file_type", GgufValue.U32(GgmlTypeInfo.FileType(type)));
        w.Add($"{a}.context_length", GgufValue.U32((uint)c.MaxPositionEmbeddings));
        w.Add($"{a}.embedding_length", GgufValue.U32((uint)c.HiddenSize));
        w.Add($"{a}.block_count", GgufValue.U32((uint)c.NumHiddenLayers));
        w.Add($"{a}.feed_forward_length", GgufValue.U32((uint)c.IntermediateSize));
        w.Add($"{a}.attention.head_count", GgufValue.U32((uint)c.NumAttentionHeads));
        w.Add($"{a}.attention.head_count_kv", GgufValue.U32((uint)c.NumKeyValueHeads));
        w.Add($"{a}.attention.key_length", GgufValue.U32((uint)c.HeadDim));
        w.Add($"{a}.attention.value_length", GgufValue.U32((uint)c.HeadDim));
        w.Add($"{a}.rope.dimension_count", GgufValue.U32((uint)c.HeadDim));
        w.Add($"{a}.rope.freq_base", GgufValue.F32((float)c.RopeTheta));
        w.Add($"{a}.attention.layer_norm_rms_epsilon", GgufValue.F32((float)c.RmsNormEps));
        if (c.RopeScaling is { } rs)
        {
            // Not rope.scaling.*: llama.cpp would apply those as linear scaling on top of rope_freqs.
            w.Add(RopeScalingPrefix + "type", GgufValue.Str(rs.RopeType));
            w.Add(RopeScalingPrefix + "factor", new GgufValue(GgufValueType.Float64, rs.Factor));
            w.Add(RopeScalingPrefix + "low_freq_factor", new GgufValue(GgufValueType.Float64, rs.LowFreqFactor));
            w.Add(RopeScalingPrefix + "high_freq_factor", new GgufValue(GgufValueType.Float64, rs.HighFreqFactor));
            w.Add(RopeScalingPrefix + "original_max_position_embeddings", GgufValue.U32((uint)rs.OriginalMaxPositionEmbeddings));
        }
    }

    static void AddTensors(GgufWriter w, CausalLM model, GgmlType type)
    {
        var c = model.Config;
        if (c.RopeScaling is { } rs)
        {
            var factors = Llama3RopeFactors(c.HeadDim, c.RopeTheta, rs);
            w.AddTensor(new GgufTensorSpec("rope_freqs.weight", [factors.Length], GgmlType.F32,
                s => s.Write(MemoryMarshal.AsBytes(factors.AsSpan()))));
        }
        foreach (var (name, p) in model.named_parameters())
        {
            var tensor = p;
            int? heads = GgufNames.RopePermuteHeads(name, c.ModelType, c.NumAttentionHeads, c.NumKeyValueHeads);
            long[] dims = tensor.shape.Reverse().ToArray();
            // Norms and biases stay float32 as llama.cpp expects; matrices take the requested type when their rows
            // fill whole blocks.
            var t = dims.Length < 2 ? GgmlType.F32 : type;
            if (t == GgmlType.Q8_0 && dims[0] % 32 != 0) t = GgmlType.F16;
            w.AddTensor(new GgufTensorSpec(GgufNames.ToGguf(name), dims, t, s => WriteTensor(s, tensor, heads, t)));
        }
    }

    static void WriteTensor(Stream s, Tensor p, int? permuteHeads, GgmlType t)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = p.detach();
        if (permuteHeads is { } h) x = GgufNames.PermuteForInterleavedRope(x, h);
        var storage = t switch { GgmlType.BF16 => ScalarType.BFloat16, GgmlType.F16 => ScalarType.Float16, _ => ScalarType.Float32 };
        x = x.to(storage, CPU).contiguous();
        if (t != GgmlType.Q8_0) { TensorMemory.ForEachChunk(x, (chunk, _) => s.Write(chunk)); return; }
        byte[] buffer = [];
        TensorMemory.ForEachChunk(x, (chunk, _) =>
        {
            var values = MemoryMarshal.Cast<byte, float>(chunk);
            int bytes = values.Length / 32 * 34;
            if (buffer.Length < bytes) buffer = new byte[bytes];
            GgufQuant.QuantizeQ8_0(values, buffer.AsSpan(0, bytes));
            s.Write(buffer, 0, bytes);
        });
    }

    /// <summary>llama.cpp's rope_freqs for Llama 3 scaling: per frequency, the divisor convert_hf_to_gguf.py's
    /// LlamaModel computes (1 for short wavelengths, factor for long ones, a smooth blend between).</summary>
    public static float[] Llama3RopeFactors(int headDim, double theta, RopeScaling rs)
    {
        var result = new float[headDim / 2];
        double lowWavelen = rs.OriginalMaxPositionEmbeddings / rs.LowFreqFactor;
        double highWavelen = rs.OriginalMaxPositionEmbeddings / rs.HighFreqFactor;
        for (int i = 0; i < result.Length; i++)
        {
            double freq = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) result[i] = 1;
            else if (wavelen > lowWavelen) result[i] = (float)rs.Factor;
            else
            {
                double smooth = (rs.OriginalMaxPositionEmbeddings / wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor);
                result[i] = (float)(1 / ((1 - smooth) / rs.Factor + smooth));
            }
        }
        return result;
    }
}
