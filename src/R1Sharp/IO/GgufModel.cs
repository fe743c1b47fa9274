using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// A GGUF file run as it is (`--model FILE.gguf`): the family's <see cref="CausalLM"/> from <see cref="ModelRegistry"/>
/// (by general.architecture, configured as <see cref="GgufImport"/> reads it) is built with its matrices deferred
/// (<see cref="DeferredWeights"/>), then each is attached from the memory-mapped file. Quantized matrices (Q8_0, Q4_0,
/// Q5_0, Q4_K, Q5_K, Q6_K) stay the file's blocks, read in place by the kernels and never dequantised as a whole, so
/// resident memory is the file's pages plus the cache; F32/F16/BF16 matrices, norms and biases are read into ordinary
/// tensors. The mapping is owned by the model and closed with it. Only the model is built here: the tokenizer and chat
/// template come from the same file through <see cref="GgufVocab"/>.
/// </summary>
public static class GgufModel
{
    /// <summary>Whether a --model path names a GGUF file (by its magic number) rather than a model folder.</summary>
    public static bool IsGgufFile(string path)
    {
        if (!File.Exists(path)) return false;
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return f.Read(magic) == 4 && BitConverter.ToUInt32(magic) == GgufFile.Magic;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Loads <paramref name="path"/>. Activations run in <paramref name="dtype"/>: by default float32, or bfloat16 for a
    /// file whose matrices are all BF16 (a float16 file runs in float32: the CPU has no fast float16 path).
    /// </summary>
    public static CausalLM Load(string path, ScalarType? dtype = null)
    {
        // The vocabulary's arrays are not read: the tokenizer is built from its own open of the file (GgufVocab).
        var mapping = GgufMapping.Open(path, skipArrays: k => k.StartsWith("tokenizer.ggml.", StringComparison.Ordinal));
        CausalLM? model = null;
        try
        {
            var g = mapping.File;
            foreach (var t in g.Tensors)
                if (!GgmlTypeInfo.IsKnown(t.Type))
                    throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(t.Name)} has ggml type {(uint)t.Type} ({t.Type}), which R1Sharp does not read (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)");
            // Quantized matrices stay in the mapped file: the import's memory check (every parameter as a float) would
            // refuse files that run fine; a model read into floats (deepseek2 below) is checked as the import is.
            var config = GgufImport.ReadConfig(g, checkMemory: false);
            var type = dtype ?? DefaultDType(g);
            if (type == ScalarType.Float16) type = ScalarType.Float32;
            if (GgufArchitectures.ForModelType(config.ModelType).LoadTensors is { } load)
            {
                GgufImport.CheckMemory(g, config, type);
                // deepseek2 stores its experts stacked and kv_b_proj split, which are not the family's matrices: they
                // are read (and dequantised) into an ordinary model, as `r1 import gguf` does, not run in place.
                model = ModelRegistry.Get(config.ModelType).Build(config, type);
                load(g, model);
                mapping.Dispose();
                return model;
            }
            using (DeferredWeights.Begin()) model = ModelRegistry.Get(config.ModelType).Build(config, type);
            model.Own(mapping);
            AttachWeights(mapping, model, type);
            // An untied quantized embedding table is read one row per token: by positional reads of the file rather
            // than through the map, so its pages stay out of the process (Embedding.AttachRowReader).
            if (model.Embeddings.Quantized is { } table && !ReferenceEquals(model.OutputWeight.Quantized, table))
            {
                var info = g.Tensor(table.Name);
                long rowBytes = table.RowBytes;
                model.Embeddings.AttachRowReader((first, count, dst) => g.ReadData(info, first * rowBytes, dst[..checked((int)(count * rowBytes))]));
            }
            return model;
        }
        catch
        {
            if (model is null) mapping.Dispose();
            else model.Dispose();
            throw;
        }
    }

    static ScalarType DefaultDType(GgufFile g) =>
        g.Tensors.Where(t => t.Dims.Length >= 2).All(t => t.Type == GgmlType.BF16) ? ScalarType.BFloat16 : ScalarType.Float32;

    static unsafe void AttachWeights(GgufMapping mapping, CausalLM model, ScalarType dtype)
    {
        var g = mapping.File;
        var c = model.Config;
        var arch = GgufArchitectures.ForModelType(c.ModelType);
        var modules = new Dictionary<string, nn.Module>();
        foreach (var (name, module) in model.named_modules()) modules[name] = module;
        var parameters = model.StateDict(); // the norms and biases: the matrices are not allocated yet
        var seen = new HashSet<string>();
        using var noGrad = no_grad();
        foreach (var info in g.Tensors)
        {
            if (arch.NonParameterTensors.Contains(info.Name)) continue;
            string hf = GgufNames.ToHf(info.Name, arch) ?? throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)} has no Hugging Face counterpart in {c.ModelType}");
            mapping.Pointer(info); // a tensor past the end of a truncated file, named
            mapping.CheckExtent(info);
            int dot = hf.LastIndexOf('.');
            modules.TryGetValue(hf[..dot], out var owner);
            if (hf[(dot + 1)..] == "weight" && owner is Linear or Embedding)
                AttachMatrix(mapping, info, hf, owner, arch.RopePermuteHeads(hf, c), dtype);
            else if (parameters.TryGetValue(hf, out var p))
            {
                if (!info.TorchShape.SequenceEqual(p.shape))
                    throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)} has shape [{string.Join(", ", info.TorchShape)}], expected [{string.Join(", ", p.shape)}] for {hf}");
                using var scope = NewDisposeScope();
                p.copy_(ReadDense(mapping, info, arch.RopePermuteHeads(hf, c)));
            }
            else throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(info.Name)} ({hf}) is not a parameter of this {c.ModelType} configuration");
            if (!seen.Add(hf)) throw new R1SharpException($"{g.Path}: two tensors map to {hf}");
        }
        foreach (var (name, module) in modules)
        {
            bool empty = module is Linear { Quantized: null, weight: null } or Embedding { Quantized: null, weight: null };
            if (empty) throw new R1SharpException($"{g.Path}: no tensor for parameter '{name}.weight' ({GgufNames.ToGguf(name + ".weight", arch)})");
        }
        var missing = parameters.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new R1SharpException($"{g.Path}: no tensor for parameter '{missing[0]}' ({GgufNames.ToGguf(missing[0], arch)}){(missing.Count > 1 ? $" and {missing.Count - 1} more" : "")}");
    }

    /// <summary>A Linear's or Embedding's matrix: quantized blocks in place (q/k rows read in HF's order when the
    /// file permuted them for interleaved RoPE), or a dense tensor in the model's dtype.</summary>
    static void AttachMatrix(GgufMapping mapping, GgufTensorInfo info, string hf, nn.Module owner, int? permuteHeads, ScalarType dtype)
    {
        var (rows, cols) = owner switch
        {
            Linear l => (l.OutFeatures, l.InFeatures),
            Embedding e => (e.NumEmbeddings, e.EmbeddingDim),
            _ => throw new ArgumentException(nameof(owner)),
        };
        if (!info.TorchShape.SequenceEqual([rows, cols]))
            throw new R1SharpException($"{mapping.File.Path}: tensor {Excerpt.Quote(info.Name)} has shape [{string.Join(", ", info.TorchShape)}], expected [{rows}, {cols}] for {hf}");
        if (QuantMatrix.IsSupported(info.Type))
        {
            var m = mapping.Matrix(info.Name);
            if (permuteHeads is { } heads) m = m.WithRowOrder(GgufNames.InterleavedRopeRowOrder(m.Rows, heads));
            if (owner is Linear l) l.Attach(m); else ((Embedding)owner).Attach(m);
            return;
        }
        var dense = ReadDense(mapping, info, permuteHeads);
        var typed = dense.dtype == dtype ? dense : dense.to(dtype);
        if (!ReferenceEquals(typed, dense)) dense.Dispose();
        if (owner is Linear lin) lin.Attach(typed); else ((Embedding)owner).Attach(typed);
    }

    /// <summary>A tensor decoded to float32 in its PyTorch shape from the mapped file, a few MB at a time.</summary>
    static unsafe Tensor ReadDense(GgufMapping mapping, GgufTensorInfo info, int? permuteHeads)
    {
        var result = empty(info.TorchShape, ScalarType.Float32);
        var (bs, bb) = GgmlTypeInfo.Geometry(info.Type);
        nint src = (nint)mapping.Pointer(info);
        TensorMemory.ForEachChunk(result, (chunk, byteOffset) =>
        {
            var values = MemoryMarshal.Cast<byte, float>(chunk);
            long first = byteOffset / 4 / bs * bb;
            GgufQuant.Dequantize(info.Type, new ReadOnlySpan<byte>((byte*)src + first, values.Length / bs * bb), values);
        });
        if (permuteHeads is not { } h) return result;
        using (result) return GgufNames.UnpermuteFromInterleavedRope(result, h).contiguous();
    }
}
