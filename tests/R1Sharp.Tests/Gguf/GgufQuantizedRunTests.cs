using LLama;
using R1Sharp.Generation;
using R1Sharp.IO;
using R1Sharp.Kernels;
using R1Sharp.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// Quantized GGUF files written by `r1 quantize`'s code and run as they are (`--model FILE.gguf`), against llama.cpp
/// (its quantiser writes the same bytes from the same float32 file; its logits on the file agree with ours) and against
/// the dequantised import of the same file run in float32.
/// </summary>
[Collection(QuantizedGgufCollection.Name)]
public sealed class GgufQuantizedRunTests(QuantizedGgufModels models, ITestOutputHelper output)
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var a in QuantizedGgufModels.Architectures) foreach (var t in QuantizedGgufModels.Types) d.Add(a, t);
        return d;
    }

    int[] Text(int count) => models.Tokenizer.Encode(File.ReadAllText(SharedData.Path("GUIDE.md"))).Take(count).ToArray();

    /// <summary>llama-quantize on our float32 export writes the file `r1 quantize` writes from the folder: the same
    /// type for every tensor and the same bytes (q/k rows permuted for llama's interleaved RoPE before quantising).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void QuantizedFileIsWhatLlamaQuantizeWrites(string arch, string type)
    {
        LlamaCpp.Initialise();
        string theirs = models.Scratch($"{arch}.{type}.llama-quantize.gguf");
        Assert.True(LLamaQuantizer.Quantize(models.F32(arch), theirs, type.ToUpperInvariant(), nthread: 2, allowRequantize: false, quantizeOutputTensor: true));
        using var a = GgufMapping.Open(models.Quantized(arch, type));
        using var b = GgufMapping.Open(theirs);
        Assert.Equal(b.File.GetInt("general.file_type"), a.File.GetInt("general.file_type"));
        Assert.Equal(b.File.Tensors.Select(t => t.Name).Order(), a.File.Tensors.Select(t => t.Name).Order());
        foreach (var t in b.File.Tensors)
        {
            var ours = a.File.Tensor(t.Name);
            Assert.True(t.Type == ours.Type && t.Dims.SequenceEqual(ours.Dims),
                $"{t.Name}: llama-quantize wrote {t.Type} [{string.Join(", ", t.Dims)}], we {ours.Type} [{string.Join(", ", ours.Dims)}]");
            Assert.True(b.Bytes(t).SequenceEqual(a.Bytes(ours)), $"{arch} {type} {t.Name} ({t.Type}): bytes differ from llama-quantize's");
        }
        output.WriteLine($"{arch} {type}: " + string.Join(", ", a.File.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Count()} {g.Key}")));
    }

    /// <summary>
    /// Logits of every position of a text, ours decoding it one token at a time from the file (the int8 kernels, one
    /// row per product) and llama.cpp's from the same file. Both quantise each activation block to int8 the same way
    /// and take integer dot products with the same blocks, so where both engines hold the same float32 activations
    /// they agree to float summation order (Qwen2 Q4_K_M: ~5e-7). But rounding to int8 is discontinuous: any float32
    /// difference upstream (the engines' float32 parity is ~1e-4, GgufParityTests; ggml also keeps Q8_0 activation
    /// scales in f16) flips some roundings by a whole step, and those differences grow through the layers to the size
    /// of the rounding noise itself (scaling one of our RMSNorm weight vectors by 1 + 1e-6 moves our own logits by
    /// 1-2.5e-2 of the largest). So the tolerance is the effect of int8 activations on these logits, measured in the
    /// same test: the two int8 engines must be closer to each other than ours is to the float32 product of the same
    /// dequantised weights (the import), which independent roundings would exceed by √2 and an error in the blocks,
    /// names or layout by far; and they must pick the same argmax at nine positions in ten.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitsAgreeWithLlamaCppWithinTheActivationRounding(string arch, string type)
    {
        string gguf = models.Quantized(arch, type);
        var tokens = Text(40);
        float[][] theirs;
        using (var llama = new LlamaCpp(gguf)) theirs = llama.AllLogits(tokens);
        using var model = GgufModel.Load(gguf);
        Assert.True(model.IsQuantized);
        var ours = DecodeLogits(model, tokens);
        string back = models.Scratch($"{arch}-{type}-import");
        if (!Directory.Exists(back)) GgufImport.Import(gguf, back);
        using var imported = ModelFolder.Load(back);
        var f32 = DecodeLogits(imported, tokens);
        var (oursVsLlama, agree) = Compare(ours, theirs);
        var (oursVsF32, _) = Compare(ours, f32);
        output.WriteLine($"{arch} {type}: max |ours − llama.cpp| / max |llama.cpp| = {oursVsLlama:E2}, argmax agrees at {agree}/{tokens.Length}; int8 vs float32 activations {oursVsF32:E2}");
        Assert.True(oursVsLlama < oursVsF32, $"{arch} {type}: ours vs llama.cpp {oursVsLlama:E2} is not below int8 vs float32 {oursVsF32:E2}");
        Assert.True(agree >= 0.9 * tokens.Length, $"{arch} {type}: argmax agrees at {agree}/{tokens.Length}");
    }

    /// <summary>
    /// Generation from the file equals generation from its dequantised import, token for token, once the activations
    /// are float32 too (the scalar kernels: each row dequantised to ggml's values, then a float32 dot product): what is
    /// left is float summation order (logits within 1e-5). With the int8 kernels (the default) the two part: every
    /// product then differs from float32 by the activations' rounding, up to Σᵢ|wᵢ|·max|x_block|/254 (the kernels'
    /// bound, QuantGemvTests), which on these random-weight models moves logits by up to ~10 % of the largest, so a
    /// greedy path changes wherever its top two logits are closer than that; the teacher-forced logits are checked
    /// against that size.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void GenerationEqualsTheDequantisedImport(string arch, string type)
    {
        string gguf = models.Quantized(arch, type), back = models.Scratch($"{arch}-{type}-import");
        if (!Directory.Exists(back)) GgufImport.Import(gguf, back);
        using var model = GgufModel.Load(gguf);
        using var imported = ModelFolder.Load(back);
        var prompt = Text(12); // up to 16 rows every product takes the kernels, not dequantised bf16 tiles
        var greedy = new SamplingOptions { Temperature = 0, MaxTokens = 32 };
        var expected = new GenerationEngine(imported).Generate([prompt], greedy, [])[0].TokenIds;
        var saved = QuantKernels.Isa;
        QuantKernels.Isa = QuantIsa.Scalar;
        try
        {
            var ours = new GenerationEngine(model).Generate([prompt], greedy, [])[0].TokenIds;
            Assert.Equal(expected, ours);
            var (diff, _) = Compare(DecodeLogits(model, [.. prompt, .. expected]), DecodeLogits(imported, [.. prompt, .. expected]));
            Assert.True(diff < 1e-5, $"{arch} {type}: float32-activation logits differ from the import's by {diff:E2}");
        }
        finally { QuantKernels.Isa = saved; }
        var int8 = new GenerationEngine(model).Generate([prompt], greedy, [])[0].TokenIds;
        int same = int8.Zip(expected).TakeWhile(p => p.First == p.Second).Count();
        var (int8Diff, agree) = Compare(DecodeLogits(model, [.. prompt, .. expected]), DecodeLogits(imported, [.. prompt, .. expected]));
        output.WriteLine($"{arch} {type}: int8 activations follow the import's greedy path for {same}/{expected.Length} tokens; teacher-forced logits differ by {int8Diff:E2}, argmax agrees at {agree}/{prompt.Length + expected.Length}");
        Assert.True(int8Diff < 0.15, $"{arch} {type}: int8-activation logits differ from the import's by {int8Diff:E2}");
    }

    /// <summary>Logits of every position, fed one token at a time through the cache (the decode path).</summary>
    static float[][] DecodeLogits(CausalLM model, int[] tokens)
    {
        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, tokens.Length);
        var result = new float[tokens.Length][];
        for (int i = 0; i < tokens.Length; i++)
        {
            using var scope = NewDisposeScope();
            int[] pad = [0];
            var logits = model.Forward(tensor(new long[] { tokens[i] }, [1, 1]), AttentionMask.Positions(pad, i, 1, CPU),
                AttentionMask.Build(pad, i, 1, i + 1, CPU), cache);
            cache.SetRowLength(0, i + 1);
            result[i] = logits.data<float>().ToArray();
        }
        return result;
    }

    /// <summary>The largest difference relative to each position's largest reference logit, and how many positions
    /// have the same argmax.</summary>
    static (double Worst, int ArgmaxAgree) Compare(float[][] a, float[][] reference)
    {
        double worst = 0;
        int agree = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double diff = 0, scale = 0;
            for (int v = 0; v < a[i].Length; v++) { diff = Math.Max(diff, Math.Abs(a[i][v] - reference[i][v])); scale = Math.Max(scale, Math.Abs(reference[i][v])); }
            worst = Math.Max(worst, diff / scale);
            if (LlamaCpp.ArgMax(a[i]) == LlamaCpp.ArgMax(reference[i])) agree++;
        }
        return (worst, agree);
    }
}
