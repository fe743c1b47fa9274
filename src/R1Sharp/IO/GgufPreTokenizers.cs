using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.IO;

/// <summary>
/// llama.cpp does not read tokenizer.json's pre-tokenizer; it names one of its built-in ones in tokenizer.ggml.pre
/// (llama-vocab.cpp). convert_hf_to_gguf.py picks the name by hashing the ids of a test string; we recognise the
/// Split regexes themselves, and on import write them back as tokenizer.json expects.
/// </summary>
public static class GgufPreTokenizers
{
    const string Qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const string Llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    // DeepSeek-V3's tokenizer.json writes real CR/LF characters inside its third pattern; kept as is.
    const string DeepSeekV3Words = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

    /// <summary>tokenizer.ggml.pre name → the Split regexes of its tokenizer.json, in order, and whether the
    /// tokenizer.json applies an NFC normalizer (Qwen's does; llama.cpp applies none, see the tokenizer tests).</summary>
    static readonly (string Name, string[] Patterns, bool Nfc)[] Known =
    [
        ("qwen2", [Qwen2], true),
        ("llama-bpe", [Llama3], false),
        ("deepseek-v3", ["\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", DeepSeekV3Words], false),
        // What GGUF releases of DeepSeek-R1-Distill-Qwen name their tokenizer; llama.cpp runs it as qwen2. Import only:
        // export names the same regex qwen2. No NFC: the file does not say, and llama.cpp applies none.
        ("deepseek-r1-qwen", [Qwen2], false),
    ];

    public static IEnumerable<string> Names => Known.Select(k => k.Name);

    /// <summary>The tokenizer.ggml.pre name for a tokenizer.json, from its pre_tokenizer's Split regexes.</summary>
    public static string Detect(string tokenizerJsonPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath));
        var patterns = new List<string>();
        if (doc.RootElement.TryGetProperty("pre_tokenizer", out var pre)) CollectPatterns(pre, patterns);
        foreach (var (name, known, _) in Known)
            if (known.SequenceEqual(patterns)) return name;
        throw new R1SharpException($"{tokenizerJsonPath}: pre-tokenizer regexes [{string.Join(" ; ", patterns)}] match none llama.cpp knows here "
            + $"({string.Join(", ", Names)}); pass the tokenizer.ggml.pre name explicitly");
    }

    static void CollectPatterns(JsonElement e, List<string> output)
    {
        if (e.ValueKind != JsonValueKind.Object) return;
        string type = e.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type == "Sequence" && e.TryGetProperty("pretokenizers", out var list))
            foreach (var p in list.EnumerateArray()) CollectPatterns(p, output);
        else if (type == "Split" && e.TryGetProperty("pattern", out var pat) && pat.TryGetProperty("Regex", out var rx))
            output.Add(rx.GetString()!);
    }

    /// <summary>tokenizer.json's "normalizer" and "pre_tokenizer" for a tokenizer.ggml.pre name.</summary>
    public static (JsonNode? Normalizer, JsonNode PreTokenizer) ForName(string name, string source)
    {
        var k = Known.FirstOrDefault(x => x.Name == name);
        if (k.Name == null) throw new R1SharpException($"{source}: tokenizer.ggml.pre {Excerpt.Quote(name)} is not supported for import (supported: {string.Join(", ", Names)})");
        var steps = new JsonArray();
        foreach (var p in k.Patterns)
            steps.Add(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = p }, ["behavior"] = "Isolated", ["invert"] = false });
        steps.Add(ByteLevel());
        return (k.Nfc ? new JsonObject { ["type"] = "NFC" } : null, new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = steps });
    }

    public static JsonObject ByteLevel() =>
        new() { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false };
}
