using System.Runtime.InteropServices;
using LLama;
using R1Sharp.IO;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// llama.cpp's own quantiser (llama_model_quantize through LLamaSharp) on small qwen2-shaped GGUF files written here:
/// the type it gives each tensor is what GgufQuantMix.Choose says, every quantized tensor holds the bytes our C#
/// quantisers write from the same float32 values, and our decoder reads them as ggml does.
/// </summary>
public sealed class GgufQuantMixTests(ITestOutputHelper output) : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    const int Vocab = 512;

    /// <summary>A qwen2 file of random float32 weights, layers written last to first (llama.cpp sorts by layer).</summary>
    string Write(string name, int layers, bool tied, int hidden, int ffn)
    {
        var rng = new Random(layers * 10 + (tied ? 1 : 0));
        var w = new GgufWriter()
            .Add("general.architecture", GgufValue.Str("qwen2"))
            .Add("general.file_type", GgufValue.U32(0))
            .Add("qwen2.context_length", GgufValue.U32(256))
            .Add("qwen2.embedding_length", GgufValue.U32((uint)hidden))
            .Add("qwen2.block_count", GgufValue.U32((uint)layers))
            .Add("qwen2.feed_forward_length", GgufValue.U32((uint)ffn))
            .Add("qwen2.attention.head_count", GgufValue.U32(4))
            .Add("qwen2.attention.head_count_kv", GgufValue.U32(2))
            .Add("qwen2.rope.freq_base", GgufValue.F32(10000))
            .Add("qwen2.attention.layer_norm_rms_epsilon", GgufValue.F32(1e-6f));
        void Add(string n, params long[] dims)
        {
            var values = new float[dims.Aggregate(1L, (a, d) => a * d)];
            for (int i = 0; i < values.Length; i++) values[i] = (float)((rng.NextDouble() - 0.5) * (1 + i % 7));
            w.AddTensor(new GgufTensorSpec(n, dims, GgmlType.F32, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan()))));
        }
        Add("token_embd.weight", hidden, Vocab);
        Add("output_norm.weight", hidden);
        if (!tied) Add("output.weight", hidden, Vocab);
        for (int l = layers - 1; l >= 0; l--)
        {
            Add($"blk.{l}.attn_norm.weight", hidden);
            Add($"blk.{l}.attn_q.weight", hidden, hidden);
            Add($"blk.{l}.attn_k.weight", hidden, 128);
            Add($"blk.{l}.attn_v.weight", hidden, 128);
            Add($"blk.{l}.attn_q.bias", hidden);
            Add($"blk.{l}.attn_output.weight", hidden, hidden);
            Add($"blk.{l}.ffn_norm.weight", hidden);
            Add($"blk.{l}.ffn_gate.weight", hidden, ffn);
            Add($"blk.{l}.ffn_up.weight", hidden, ffn);
            Add($"blk.{l}.ffn_down.weight", ffn, hidden);
        }
        string path = _dir.File(name);
        w.Write(path);
        return path;
    }

    /// <summary>hidden 128 with feed-forward 384 is `r1 zero`'s demo shape: no row is whole 256-value blocks, so Q4_K_M
    /// falls back to Q5_0 (Q4_K's fallback) and Q8_0 (Q6_K's) throughout, and Q6_K to Q8_0.</summary>
    [Theory]
    [InlineData(GgufQuantType.Q4_K_M, "Q4_K_M", 10, false, 256, 512)]
    [InlineData(GgufQuantType.Q4_K_M, "Q4_K_M", 16, true, 256, 512)]
    [InlineData(GgufQuantType.Q4_K_M, "Q4_K_M", 4, true, 128, 384)]
    [InlineData(GgufQuantType.Q4_0, "Q4_0", 3, false, 256, 512)]
    [InlineData(GgufQuantType.Q4_0, "Q4_0", 4, true, 128, 384)]
    [InlineData(GgufQuantType.Q8_0, "Q8_0", 3, true, 256, 512)]
    [InlineData(GgufQuantType.Q6_K, "Q6_K", 3, false, 256, 512)]
    [InlineData(GgufQuantType.Q6_K, "Q6_K", 2, false, 128, 384)]
    public void TypesAndBytesMatchLlamaQuantize(GgufQuantType mix, string ftype, int layers, bool tied, int hidden, int ffn)
    {
        LlamaCpp.Initialise();
        string stem = $"{ftype}-{layers}-{tied}-{hidden}";
        string src = Write(stem + ".gguf", layers, tied, hidden, ffn), dst = _dir.File(stem + ".q.gguf");
        Assert.True(LLamaQuantizer.Quantize(src, dst, ftype, nthread: 2, allowRequantize: true, quantizeOutputTensor: true), "llama_model_quantize failed");
        using var original = GgufFile.Open(src);
        using var quant = GgufMapping.Open(dst);
        Assert.Equal(GgufQuantMix.FileType(mix), (uint)quant.File.GetInt("general.file_type"));
        var expected = GgufQuantMix.Choose(original.Tensors.Select(t => new GgufQuantMix.Tensor(t.Name, t.Dims, t.Type)).ToList(), mix, layers);
        output.WriteLine(string.Join(", ", quant.File.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Key} × {g.Count()}")));
        for (int i = 0; i < original.Tensors.Count; i++)
        {
            var t = original.Tensors[i];
            var q = quant.File.Tensor(t.Name);
            Assert.True(expected[i] == q.Type, $"{mix} {t.Name}: llama.cpp chose {q.Type}, GgufQuantMix {expected[i]}");
            if (q.Type == GgmlType.F32) continue;
            // The same float32 values through our quantiser give llama.cpp's bytes, which our decoder reads as ggml does.
            var values = new float[t.Elements];
            original.ReadData(t, 0, MemoryMarshal.AsBytes(values.AsSpan()));
            var ours = new byte[q.ByteSize];
            GgmlQuantize.Quantize(q.Type, values, ours);
            var theirs = quant.Bytes(q);
            Assert.True(theirs.SequenceEqual(ours), $"{mix} {t.Name} ({q.Type}): bytes differ from llama.cpp's");
            var decoded = new float[t.Elements];
            GgufQuant.Dequantize(q.Type, theirs, decoded);
            Assert.Equal(GgmlReference.Dequantize((int)q.Type, theirs.ToArray(), decoded.Length), decoded);
        }
        if (mix == GgufQuantType.Q4_K_M && hidden == 128)
            Assert.Equal([GgmlType.F32, GgmlType.Q5_0, GgmlType.Q8_0], quant.File.Tensors.Select(t => t.Type).Distinct().Order());
        else if (mix == GgufQuantType.Q4_K_M)
        {
            // The rule's shape on these files: output (or tied embeddings) Q6_K, and Q6_K attn_v/ffn_down in some layers only.
            Assert.Equal(GgmlType.Q6_K, quant.File.Tensor(tied ? "token_embd.weight" : "output.weight").Type);
            var q6 = Enumerable.Range(0, layers).Where(l => quant.File.Tensor($"blk.{l}.ffn_down.weight").Type == GgmlType.Q6_K).ToList();
            Assert.InRange(q6.Count, 2, layers - 1);
            Assert.Equal(q6, Enumerable.Range(0, layers).Where(l => quant.File.Tensor($"blk.{l}.attn_v.weight").Type == GgmlType.Q6_K));
        }
    }
}
