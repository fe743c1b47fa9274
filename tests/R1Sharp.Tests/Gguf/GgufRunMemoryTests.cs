using System.Text.Json;
using R1Sharp.IO;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// What running a GGUF file keeps resident (issue 15's memory target): the header's vocabulary arrays are stepped over
/// when only the model is loaded, an untied quantized embedding table is read by positional reads of the file instead
/// of through the map, and the tokenizer is built from the metadata without a tokenizer.json in between. Each against
/// the path it replaces.
/// </summary>
[Collection(QuantizedGgufCollection.Name)]
public sealed class GgufRunMemoryTests(QuantizedGgufModels models)
{
    /// <summary>Lookups through the row reader give the mapped table's dequantised rows, bit for bit, for repeated,
    /// first and last ids; a tied table (Qwen3 here: the output projection reads it whole) stays on the map.</summary>
    [Theory]
    [InlineData("qwen2", "q4_k_m")]
    [InlineData("llama", "q8_0")]
    [InlineData("qwen3", "q4_k_m")]
    public void EmbeddingRowsReadFromTheFileAreTheMappedRows(string arch, string type)
    {
        using var model = GgufModel.Load(models.Quantized(arch, type));
        var table = model.Embeddings.Quantized!;
        bool tied = ReferenceEquals(model.OutputWeight.Quantized, table);
        Assert.Equal(arch == "qwen3", tied);
        Assert.Equal(!tied, model.Embeddings.ReadsRowsFromFile);
        long[] ids = [0, 5, 5, 319, 17, table.Rows - 1, 200];
        using var noGrad = no_grad();
        using var looked = model.Embeddings.forward(tensor(ids, [1, ids.Length]));
        var got = looked.to(ScalarType.Float32).data<float>().ToArray();
        var all = table.ToFloat(); // the mapped blocks, dequantised
        for (int i = 0; i < ids.Length; i++)
            for (int c = 0; c < table.Cols; c++)
                Assert.True(all[ids[i] * table.Cols + c] == got[i * table.Cols + c], $"{arch} {type}: id {ids[i]} column {c}");
        Assert.Throws<IndexOutOfRangeException>(() => model.Embeddings.forward(tensor(new long[] { table.Rows }, [1, 1])));
    }

    /// <summary>Skipped arrays are absent; every other key, its value, and every tensor are as a full read gives them.</summary>
    [Fact]
    public void SkippedArraysAreNotReadAndTheRestIsIntact()
    {
        string path = models.Quantized("qwen2", "q4_k_m");
        using var full = GgufFile.Open(path);
        using var lean = GgufFile.Open(path, skipArrays: k => k.StartsWith("tokenizer.ggml.", StringComparison.Ordinal));
        var skipped = full.MetadataList.Where(kv => kv.Value.Value is GgufArray && kv.Key.StartsWith("tokenizer.ggml.")).Select(kv => kv.Key).ToList();
        Assert.Contains("tokenizer.ggml.tokens", skipped);
        Assert.Contains("tokenizer.ggml.merges", skipped);
        Assert.Equal(full.MetadataList.Select(kv => kv.Key).Except(skipped), lean.MetadataList.Select(kv => kv.Key));
        foreach (var (key, value) in lean.MetadataList)
            Assert.Equal(JsonSerializer.Serialize(full.Metadata[key].Value), JsonSerializer.Serialize(value.Value));
        Assert.Contains("tokenizer.ggml.model", lean.Metadata.Keys); // values that are not arrays stay
        Assert.Equal(full.DataStart, lean.DataStart);
        Assert.Equal(full.Tensors, lean.Tensors, (a, b) => a.Name == b.Name && a.Type == b.Type && a.Offset == b.Offset && a.Dims.SequenceEqual(b.Dims));
    }

    /// <summary>
    /// The tokenizer built straight from the metadata encodes, decodes and renders as the one built from the
    /// tokenizer.json that import writes, and both as the model folder's own tokenizer (the independent side: the
    /// folder the file was exported from), on every reference string, a text with the added tokens and the chat template.
    /// </summary>
    [Fact]
    public void TokenizerFromMetadataEqualsTheImportedTokenizerJson()
    {
        using var g = GgufFile.Open(models.Quantized("qwen2", "q4_k_m"));
        var (direct, template) = GgufVocab.ReadTokenizer(g);
        using var dir = new TempDir();
        GgufVocab.WriteTokenizerFiles(g, dir.Path);
        var viaJson = HfTokenizer.FromFolder(dir.Path);
        var jsonTemplate = ChatTemplate.FromTokenizerConfig(System.IO.Path.Combine(dir.Path, "tokenizer_config.json"));
        var folder = models.Tokenizer;
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedData.Path("tokenizers", "reference_ids.json")));
        var texts = doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToList();
        texts.Add(File.ReadAllText(SharedData.Path("GUIDE.md")));
        texts.Add("<|im_start|>user\nthe answer<|im_end|>\n<|im_start|>assistant\n");
        foreach (var text in texts)
        {
            var ids = direct.Encode(text, addSpecialTokens: true);
            Assert.Equal(viaJson.Encode(text, addSpecialTokens: true), ids);
            Assert.Equal(folder.Encode(text, addSpecialTokens: true), ids);
            Assert.Equal(viaJson.Decode(ids), direct.Decode(ids));
            Assert.Equal(viaJson.Decode(ids, skipSpecialTokens: true), direct.Decode(ids, skipSpecialTokens: true));
        }
        Assert.Equal(viaJson.VocabSize, direct.VocabSize);
        Assert.Equal((viaJson.BosTokenId, viaJson.EosTokenId), (direct.BosTokenId, direct.EosTokenId));
        for (int id = 0; id < direct.VocabSize; id++)
        {
            Assert.Equal(viaJson.IdToToken(id), direct.IdToToken(id));
            Assert.Equal(viaJson.IsSpecial(id), direct.IsSpecial(id));
        }
        ChatMessage[] chat = [new("system", "Be brief."), new("user", "What is 2 + 2?"), new("assistant", "4"), new("user", "And 3 + 3?")];
        Assert.NotNull(template);
        Assert.Equal(jsonTemplate.Render(chat), template!.Render(chat));
    }
}
