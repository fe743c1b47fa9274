using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using R1Sharp.Kernels;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// A GGUF file of a supported architecture → a Hugging Face folder (config.json, safetensors, tokenizer files, chat template):
/// the reverse of <see cref="GgufExport"/>. Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K weights are dequantised to float32;
/// F32/F16/BF16 keep their type.
/// </summary>
public static class GgufImport
{
    public static void Import(string ggufPath, string outDir)
    {
        using var g = GgufFile.Open(ggufPath);
        foreach (var t in g.Tensors)
            if (!GgmlTypeInfo.IsKnown(t.Type))
                throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(t.Name)} is {t.Type}; import supports F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K");
        var cfg = ReadConfig(g);
        var dtype = ChooseDType(g);
        using var model = CausalLM.Create(cfg, dtype, source: g.Path);
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

    /// <summary>The file's configuration, checked as config.json is, with every error naming the metadata key the
    /// value came from, and (unless <paramref name="checkMemory"/> is false: a quantized file run in place, whose
    /// weights stay in the mapped file) refused when its parameters cannot fit in memory as imported.</summary>
    public static ModelConfig ReadConfig(GgufFile g, bool checkMemory = true)
    {
        var arch = GgufArchitectures.ForFile(g);
        ModelConfig cfg;
        // By the model_type the architecture's reader writes: one llama.cpp architecture may serve several families
        // (deepseek2: DeepSeek-V2 and V3).
        try { cfg = ModelRegistry.ReadConfig(arch.ReadConfig(g), g.Path); }
        catch (ConfigValueException e) when (arch.MetadataKeys.TryGetValue(e.Key, out var key))
        {
            // The value was read from the file's metadata: name it as the file does (and as config.json will).
            throw new R1SharpException($"{g.Path}: {key} {e.Detail} (config.json's \"{e.Key}\")");
        }
        if (checkMemory) CheckMemory(g, cfg, ChooseDType(g));
        return cfg;
    }

    /// <summary>Refuses a model of the file's configuration whose parameters in <paramref name="dtype"/> cannot fit in
    /// memory, naming the metadata keys that make them.</summary>
    public static void CheckMemory(GgufFile g, ModelConfig config, ScalarType dtype)
    {
        var arch = GgufArchitectures.ForFile(g);
        ModelRegistry.CheckMemory(config, dtype, g.Path, k => arch.MetadataKeys.GetValueOrDefault(k, k));
    }

    static void LoadWeights(GgufFile g, CausalLM model)
    {
        var c = model.Config;
        var arch = GgufArchitectures.ForModelType(c.ModelType);
        if (arch.LoadTensors is { } custom)
        {
            custom(g, model);
            return;
        }
        var parameters = model.StateDict();
        var seen = new HashSet<string>();
        using var noGrad = no_grad();
        foreach (var info in g.Tensors)
        {
            if (arch.NonParameterTensors.Contains(info.Name)) continue;
            string hf = GgufNames.ToHf(info.Name, arch) ?? throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)} has no Hugging Face counterpart in {c.ModelType}");
            if (!parameters.TryGetValue(hf, out var p)) throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)} ({hf}) is not a parameter of this {c.ModelType} configuration");
            if (!info.TorchShape.SequenceEqual(p.shape))
                throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)} has shape [{string.Join(", ", info.TorchShape)}], expected [{string.Join(", ", p.shape)}] for {hf}");
            using var scope = NewDisposeScope();
            var x = ReadFloat32(g, info);
            if (arch.RopePermuteHeads(hf, c) is { } h)
                x = GgufNames.UnpermuteFromInterleavedRope(x, h);
            p.copy_(x);
            seen.Add(hf);
        }
        var missing = parameters.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0) throw new R1SharpException($"{g.Path}: no tensor for parameter '{missing[0]}' ({GgufNames.ToGguf(missing[0], arch)}){(missing.Count > 1 ? $" and {missing.Count - 1} more" : "")}");
    }

    /// <summary>A tensor decoded to float32 in its PyTorch shape, read and decoded a few MB at a time.</summary>
    public static Tensor ReadFloat32(GgufFile g, GgufTensorInfo info) => ReadFloat32(g, info, 0, info.TorchShape);

    /// <summary>Part of a tensor, from its element firstElement on, decoded to float32 in the given shape (e.g. one
    /// expert of a stacked llama.cpp tensor); firstElement must start a block.</summary>
    public static Tensor ReadFloat32(GgufFile g, GgufTensorInfo info, long firstElement, long[] shape)
    {
        var result = empty(shape, ScalarType.Float32);
        var (bs, bb) = GgmlTypeInfo.Geometry(info.Type);
        if (firstElement % bs != 0 || firstElement + result.numel() > info.Elements)
            throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)}: elements {firstElement}..{firstElement + result.numel()} are not whole {info.Type} blocks within its {info.Elements}");
        byte[] buffer = [];
        TensorMemory.ForEachChunk(result, (chunk, byteOffset) =>
        {
            var values = MemoryMarshal.Cast<byte, float>(chunk);
            long firstValue = firstElement + byteOffset / 4;
            int bytes = values.Length / bs * bb;
            if (buffer.Length < bytes) buffer = new byte[bytes];
            g.ReadData(info, firstValue / bs * bb, buffer.AsSpan(0, bytes));
            GgufQuant.Dequantize(info.Type, buffer.AsSpan(0, bytes), values);
        });
        return result;
    }
}
