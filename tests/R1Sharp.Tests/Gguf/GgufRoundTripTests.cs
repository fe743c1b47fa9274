using LLama;
using LLama.Native;
using R1Sharp.IO;
using R1Sharp.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Gguf;

/// <summary>Export → import → export, the other types, GGUF files quantised by llama.cpp itself, and the errors.</summary>
[Collection(GgufModelsCollection.Name)]
public sealed class GgufRoundTripTests(GgufTestModels models, ITestOutputHelper output)
{
    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    [InlineData("qwen3")]
    public void F32ExportImportExportIsByteIdentical(string arch)
    {
        string back = models.Scratch($"{arch}-back"), again = models.Scratch($"{arch}-again.gguf");
        GgufImport.Import(models.Gguf(arch), back);
        GgufExport.Export(back, again);
        Assert.Equal(File.ReadAllBytes(models.Gguf(arch)), File.ReadAllBytes(again));

        // The imported folder holds the very weights and configuration we exported.
        using var original = ModelFolder.Load(models.Folder(arch));
        using var imported = ModelFolder.Load(back);
        static string[] Keys(ModelConfig c) => c.ToJson().Where(kv => kv.Key is not ("initializer_range" or "use_cache"))
            .Select(kv => $"{kv.Key}={kv.Value?.ToJsonString()}").Order().ToArray();
        Assert.Equal(Keys(original.Config), Keys(imported.Config));
        var a = original.StateDict();
        foreach (var (name, p) in imported.StateDict()) Assert.True(p.eq(a[name]).all().item<bool>(), name);
    }

    [Fact]
    public void Bf16AndF16ExportsRoundWeightsOnce()
    {
        using var original = ModelFolder.Load(models.Folder("llama"));
        foreach (var (type, dtype) in new[] { ("bf16", ScalarType.BFloat16), ("f16", ScalarType.Float16) })
        {
            string gguf = models.Scratch($"llama-{type}.gguf"), back = models.Scratch($"llama-{type}");
            GgufExport.Export(models.Folder("llama"), gguf, GgufExport.ParseType(type));
            using (var g = GgufFile.Open(gguf))
            {
                Assert.Equal(type == "bf16" ? GgmlType.BF16 : GgmlType.F16, g.Tensor("blk.0.attn_q.weight").Type);
                Assert.Equal(GgmlType.F32, g.Tensor("blk.0.attn_norm.weight").Type);
            }
            GgufImport.Import(gguf, back);
            using var imported = ModelFolder.Load(back, dtype: ScalarType.Float32);
            var a = original.StateDict();
            foreach (var (name, p) in imported.StateDict())
            {
                // The folder is imported in the matrices' type, so norms and biases (f32 in the file) are rounded there.
                using var expected = a[name].to(dtype).to(ScalarType.Float32);
                Assert.True(p.eq(expected).all().item<bool>(), $"{type} {name}");
            }
        }
    }

    /// <summary>llama.cpp's own quantiser (Q8_0 and Q4_0 mixes) makes the files; import must decode them to what
    /// llama.cpp reads from them, which is close to the original weights.</summary>
    [Theory]
    [InlineData("q8_0", 0.01)]
    [InlineData("q4_0", 0.15)]
    public void ImportsFilesQuantisedByLlamaCpp(string ftype, double tolerance)
    {
        LlamaCpp.Initialise();
        string quant = models.Scratch($"qwen2-{ftype}.gguf"), back = models.Scratch($"qwen2-{ftype}");
        LLamaQuantizer.Quantize(models.Gguf("qwen2"), quant, ftype, nthread: 2);
        using (var g = GgufFile.Open(quant))
            output.WriteLine($"{ftype}: " + string.Join(", ", g.Tensors.GroupBy(t => t.Type).Select(x => $"{x.Key} × {x.Count()}")));
        GgufImport.Import(quant, back);
        using var original = ModelFolder.Load(models.Folder("qwen2"));
        using var imported = ModelFolder.Load(back);
        var a = original.StateDict();
        foreach (var (name, p) in imported.StateDict())
        {
            double err = (p - a[name]).abs().max().item<float>() / Math.Max(1e-6, a[name].abs().max().item<float>());
            Assert.True(err < tolerance, $"{ftype} {name}: relative error {err}");
        }
    }

    [Fact]
    public void Q8_0ExportRunsInLlamaCpp()
    {
        string gguf = models.Scratch("qwen2-q8.gguf");
        GgufExport.Export(models.Folder("qwen2"), gguf, GgmlType.Q8_0);
        using (var g = GgufFile.Open(gguf)) Assert.Equal(GgmlType.Q8_0, g.Tensor("token_embd.weight").Type);
        using var q8 = new LlamaCpp(gguf);
        using var f32 = new LlamaCpp(models.Gguf("qwen2"));
        var tokens = models.Tokenizer.Encode("The quick brown fox jumps over the lazy dog. ").ToArray();
        var a = q8.AllLogits(tokens)[^1];
        var b = f32.AllLogits(tokens)[^1];
        double rel = a.Zip(b).Max(p => Math.Abs(p.First - p.Second)) / b.Max(Math.Abs);
        output.WriteLine($"q8_0 vs f32 last-position logits: {rel:E2} relative");
        Assert.True(rel < 0.05, $"q8_0 logits differ from f32 by {rel:E2}");
    }

    [Fact]
    public void BadFilesGiveErrorsNamingTheProblem()
    {
        string notGguf = models.Scratch("not.gguf");
        File.WriteAllBytes(notGguf, "GGML-nonsense-bytes"u8.ToArray());
        Assert.Contains("not a GGUF file", Assert.Throws<R1SharpException>(() => GgufFile.Open(notGguf)).Message);

        string truncated = models.Scratch("truncated.gguf");
        var bytes = File.ReadAllBytes(models.Gguf("qwen2"));
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.Contains("truncated", Assert.Throws<R1SharpException>(() => GgufFile.Open(truncated)).Message);

        // A Q2_K tensor: a real type that import does not decode.
        string q5k = models.Scratch("q5k.gguf");
        new GgufWriter().Add("general.architecture", GgufValue.Str("qwen2"))
            .AddTensor(new GgufTensorSpec("token_embd.weight", [256, 2], GgmlType.Q8_0, s => s.Write(new byte[2 * 8 * 34])))
            .Write(q5k);
        var patched = File.ReadAllBytes(q5k);
        int at = IndexOf(patched, "token_embd.weight"u8.ToArray()) + "token_embd.weight".Length + 4 + 16;
        BitConverter.GetBytes((uint)GgmlType.Q2_K).CopyTo(patched, at);
        File.WriteAllBytes(q5k, patched);
        var e = Assert.Throws<R1SharpException>(() => GgufImport.Import(q5k, models.Scratch("q5k")));
        Assert.Contains("Q2_K", e.Message);
        Assert.Contains("token_embd.weight", e.Message);
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
