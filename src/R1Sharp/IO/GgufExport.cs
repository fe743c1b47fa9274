using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// A Hugging Face model folder → one GGUF v3 file that llama.cpp, Ollama and LLamaSharp load: the architecture
/// keys llama.cpp's loader reads, the tokenizer, the chat template, and the weights under llama.cpp's names, all from
/// the family's table in <see cref="GgufArchitectures"/>.
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
        var arch = GgufArchitectures.ForModelType(model.Config.ModelType);
        var w = new GgufWriter();
        arch.WriteMetadata(w, model.Config, type);
        GgufVocab.AddTo(w, modelDir, model.Config.VocabSize, model.Config.BosTokenId, model.Config.EosTokenIds, pre);
        AddTensors(w, model, type, arch);
        w.Write(outPath);
    }

    static void AddTensors(GgufWriter w, CausalLM model, GgmlType type, GgufArchitecture arch)
    {
        var c = model.Config;
        foreach (var extra in arch.ExtraTensors(c)) w.AddTensor(extra);
        if (arch.Tensors is { } custom)
        {
            foreach (var spec in custom(model, type)) w.AddTensor(spec);
            return;
        }
        foreach (var (name, p) in model.named_parameters())
        {
            var tensor = p;
            int? heads = arch.RopePermuteHeads(name, c);
            w.AddTensor(Spec(GgufNames.ToGguf(name, arch), tensor.shape, type,
                () => [heads is { } h ? GgufNames.PermuteForInterleavedRope(tensor.detach(), h) : tensor]));
        }
    }

    /// <summary>A tensor of the given PyTorch shape whose data are the parts in order (one tensor, or e.g. the experts
    /// of a stacked llama.cpp tensor), each converted as it is written. Norms and biases (fewer than 2 dimensions) stay
    /// float32 as llama.cpp expects; matrices take the requested type when their rows fill whole blocks.</summary>
    internal static GgufTensorSpec Spec(string name, long[] torchShape, GgmlType requested, Func<IEnumerable<Tensor>> parts)
    {
        long[] dims = torchShape.Reverse().ToArray();
        var t = dims.Length < 2 ? GgmlType.F32 : requested;
        if (t == GgmlType.Q8_0 && dims[0] % 32 != 0) t = GgmlType.F16;
        return new GgufTensorSpec(name, dims, t, s =>
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope(); // parts computed for the file (a permutation, a split) end here
            foreach (var part in parts()) WriteTensor(s, part, t);
        });
    }

    static void WriteTensor(Stream s, Tensor p, GgmlType t)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = p.detach();
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
}
