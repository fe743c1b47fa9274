using System.Text.Json;
using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Text;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// The tokenizer inside our GGUF files, run by llama.cpp, against our tokenizer (which matches independent reference
/// ids, reference_ids.json) on every reference string. Where llama.cpp deviates for a reason of its own, the case
/// is listed with the reason.
/// </summary>
[Collection(GgufModelsCollection.Name)]
public sealed class GgufTokenizerTests(GgufTestModels models, ITestOutputHelper output)
{
    static List<string> ReferenceTexts()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedData.Path("tokenizers", "reference_ids.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToList();
    }

    /// <summary>Reference strings llama.cpp tokenizes differently, with the reason.</summary>
    static readonly Dictionary<(string Tokenizer, string Prefix), string> KnownDeviations = new()
    {
        [("qwen3", "\uFB01 ligature")] = "Qwen's tokenizer.json normalizes with NFC, composing \"e\" + U+0301 into \"é\"; "
            + "llama.cpp applies no normalizer to BPE vocabularies, so it encodes the decomposed pair",
    };

    void CheckAll(string tokenizerName, HfTokenizer ours, LlamaCpp llama)
    {
        int same = 0;
        var unexpected = new List<string>();
        foreach (var text in ReferenceTexts())
        {
            var expected = ours.Encode(text).ToArray();
            var actual = llama.Tokenize(text);
            var known = KnownDeviations.FirstOrDefault(k => k.Key.Tokenizer == tokenizerName && text.StartsWith(k.Key.Prefix));
            if (expected.SequenceEqual(actual)) { same++; Assert.True(known.Value == null, $"{tokenizerName}: listed as deviating but matches: {text}"); continue; }
            string line = $"{tokenizerName}: {JsonSerializer.Serialize(text)}\n  ours      {string.Join(' ', expected)}\n  llama.cpp {string.Join(' ', actual)}";
            output.WriteLine(line + (known.Value != null ? $"\n  known: {known.Value}" : ""));
            if (known.Value == null) unexpected.Add(line);
        }
        output.WriteLine($"{tokenizerName}: {same}/{ReferenceTexts().Count} reference strings tokenize identically");
        Assert.True(unexpected.Count == 0, "unexplained deviations:\n" + string.Join("\n", unexpected));
    }

    [Fact]
    public void Qwen3TokenizationMatchesLlamaCpp()
    {
        using var llama = new LlamaCpp(models.Gguf("qwen2"), vocabOnly: true);
        CheckAll("qwen3", models.Tokenizer, llama);
    }

    [Fact]
    public void DeepSeekV3TokenizationMatchesLlamaCpp()
    {
        string dir = SharedData.Path("tokenizers", "deepseek_v3");
        var tok = HfTokenizer.FromFolder(dir);
        string folder = models.Scratch("deepseek"), gguf = models.Scratch("deepseek.gguf");
        var cfg = ModelPresets.Create("qwen2", "tiny", (tok.VocabSize + 127) / 128 * 128, tok.BosTokenId, tok.EosTokenId is { } e ? [e] : []);
        using (var model = CausalLM.Create(cfg)) ModelFolder.Save(model, folder, dir);
        GgufExport.Export(folder, gguf);
        using var g = GgufFile.Open(gguf);
        Assert.Equal("deepseek-v3", g.GetString("tokenizer.ggml.pre"));
        Assert.True(g.TryBool("tokenizer.ggml.add_bos_token"));
        using var llama = new LlamaCpp(gguf, vocabOnly: true);
        Assert.Equal(tok.BosTokenId, (int?)llama.Weights.Vocab.BOS);
        CheckAll("deepseek_v3", tok, llama);
    }
}
