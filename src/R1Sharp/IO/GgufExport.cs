using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// What `r1 export gguf --type` and `r1 quantize --type` write: one storage type for every matrix (f32, bf16, f16), or
/// one of llama-quantize's file types (q8_0, q4_0, q6_k, q4_k_m), whose per-tensor types <see cref="GgufQuantMix"/>
/// chooses as llama.cpp does. Norms and biases are float32 in every case, as llama.cpp expects.
/// </summary>
public readonly record struct GgufFileType
{
    public GgmlType? Storage { get; }
    public GgufQuantType? Quant { get; }

    GgufFileType(GgmlType? storage, GgufQuantType? quant) { Storage = storage; Quant = quant; }

    public static GgufFileType Of(GgmlType storage) => storage switch
    {
        GgmlType.F32 or GgmlType.BF16 or GgmlType.F16 => new(storage, null),
        GgmlType.Q8_0 => new(null, GgufQuantType.Q8_0),
        GgmlType.Q4_0 => new(null, GgufQuantType.Q4_0),
        _ => throw new R1SharpException($"export to {storage} is not supported (f32, bf16, f16, q8_0, q4_0, q6_k or q4_k_m)"),
    };

    public static GgufFileType Of(GgufQuantType quant) => new(null, quant);

    public static implicit operator GgufFileType(GgmlType storage) => Of(storage);

    public static GgufFileType Parse(string name) => name.ToLowerInvariant() switch
    {
        "f32" => new(GgmlType.F32, null),
        "bf16" => new(GgmlType.BF16, null),
        "f16" => new(GgmlType.F16, null),
        "q8_0" or "q4_0" or "q6_k" or "q4_k_m" => new(null, GgufQuantMix.Parse(name)),
        _ => throw new R1SharpException($"unknown GGUF type \"{name}\" (expected f32, bf16, f16, q8_0, q4_0, q6_k or q4_k_m)"),
    };

    /// <summary>general.file_type (llama.h, enum llama_ftype).</summary>
    public uint FileType => Quant is { } q ? GgufQuantMix.FileType(q) : GgmlTypeInfo.FileType(Storage!.Value);

    public override string ToString() => (Quant?.ToString() ?? Storage!.Value.ToString()).ToLowerInvariant();
}

/// <summary>
/// A Hugging Face model folder → one GGUF v3 file that llama.cpp, Ollama and LLamaSharp load: the architecture
/// keys llama.cpp's loader reads, the tokenizer, the chat template, and the weights under llama.cpp's names, all from
/// the family's table in <see cref="GgufArchitectures"/>. Quantized types are written as llama-quantize writes them from
/// a float32 file (<see cref="GgmlQuantize"/>, <see cref="GgufQuantMix"/>): the same bytes.
/// Weights are converted one tensor at a time while the file is written.
/// </summary>
public static class GgufExport
{
    /// <summary>Parses --type: f32, bf16, f16, q8_0, q4_0, q6_k or q4_k_m.</summary>
    public static GgufFileType ParseType(string name) => GgufFileType.Parse(name);

    public static void Export(string modelDir, string outPath, GgufFileType type, string? pre = null)
    {
        // Weights stay in the checkpoint's own dtype and are converted one tensor at a time as they are written, so
        // norms and biases (always f32 in GGUF) are never rounded and a bf16 checkpoint takes no float32 copy.
        using var model = ModelFolder.Load(modelDir);
        var arch = GgufArchitectures.ForModelType(model.Config.ModelType);
        var w = new GgufWriter();
        arch.WriteMetadata(w, model.Config, type.FileType);
        GgufVocab.AddTo(w, modelDir, model.Config.VocabSize, model.Config.BosTokenId, model.Config.EosTokenIds, pre);
        AddTensors(w, model, type, arch);
        w.Write(outPath);
    }

    public static void Export(string modelDir, string outPath) => Export(modelDir, outPath, GgmlType.F32);

    static void AddTensors(GgufWriter w, CausalLM model, GgufFileType type, GgufArchitecture arch)
    {
        var c = model.Config;
        foreach (var extra in arch.ExtraTensors(c)) w.AddTensor(extra);
        if (arch.Tensors is { } custom)
        {
            // Architectures whose tensors are not one per parameter (deepseek2: stacked experts, split kv_b_proj) take
            // one storage type for every matrix; llama-quantize's per-tensor mixes are chosen for the dense layout.
            var storage = type.Storage ?? (type.Quant == GgufQuantType.Q8_0 ? GgmlType.Q8_0
                : throw new R1SharpException($"export of a {c.ModelType} model to {type} is not supported (f32, bf16, f16 or q8_0)"));
            foreach (var spec in custom(model, storage)) w.AddTensor(spec);
            return;
        }
        var tensors = model.named_parameters().Select(p => (Hf: p.name, Gguf: GgufNames.ToGguf(p.name, arch), Value: (Tensor)p.parameter, Dims: p.parameter.shape.Reverse().ToArray())).ToList();
        // Norms and biases stay float32 as llama.cpp expects; matrices take the storage type, or the type
        // llama-quantize would give them in the file type (chosen over the float32 file it would start from).
        var types = type.Quant is { } mix
            ? GgufQuantMix.Choose(tensors.Select(t => new GgufQuantMix.Tensor(t.Gguf, t.Dims, GgmlType.F32)).ToList(), mix, c.NumHiddenLayers)
            : tensors.Select(t => t.Dims.Length < 2 ? GgmlType.F32 : type.Storage!.Value).ToArray();
        for (int i = 0; i < tensors.Count; i++)
        {
            var (hf, name, tensor, dims) = tensors[i];
            var t = types[i];
            int? heads = arch.RopePermuteHeads(hf, c);
            w.AddTensor(new GgufTensorSpec(name, dims, t, s =>
            {
                using var noGrad = no_grad();
                using var scope = NewDisposeScope();
                WriteTensor(s, heads is { } h ? GgufNames.PermuteForInterleavedRope(tensor.detach(), h) : tensor, t);
            }));
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
        if (t is GgmlType.F32 or GgmlType.BF16 or GgmlType.F16) { TensorMemory.ForEachChunk(x, (chunk, _) => s.Write(chunk)); return; }
        // Chunks of whole rows (4 MB of float32 is whole blocks of 32 and 256), quantised on all threads: rows are
        // independent, so the bytes are the same however they are split.
        var (bs, bb) = GgmlTypeInfo.Geometry(t);
        byte[] buffer = [];
        int threads = Math.Max(1, get_num_threads());
        TensorMemory.ForEachChunk(x, (chunk, _) =>
        {
            var values = MemoryMarshal.Cast<byte, float>(chunk);
            int blocks = values.Length / bs, bytes = blocks * bb;
            if (buffer.Length < bytes) buffer = new byte[bytes];
            var src = chunk.ToArray(); // spans cannot cross into the worker lambdas
            var dst = buffer;
            int per = (blocks + threads - 1) / threads;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
            {
                int b0 = Math.Min(blocks, i * per), b1 = Math.Min(blocks, b0 + per);
                if (b1 <= b0) return;
                var xs = MemoryMarshal.Cast<byte, float>(src.AsSpan(b0 * bs * 4, (b1 - b0) * bs * 4));
                GgmlQuantize.Quantize(t, xs, dst.AsSpan(b0 * bb, (b1 - b0) * bb));
            });
            s.Write(buffer, 0, bytes);
        });
    }
}
