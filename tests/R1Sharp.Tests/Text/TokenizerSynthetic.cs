using System.Text.Json;
using R1Sharp.Text;

namespace R1Sharp.Tests.Text;

/// <summary>
/// Writes a tiny byte-level tokenizer.json (the 256 byte characters as ids 0–255, optional merges and added
/// tokens) so that single rules can be tested in isolation.
/// </summary>
public static class TokenizerSynthetic
{
    public static string Write(TempDir dir, string addedTokensJson = "[]", string? preTokenizerJson = null,
        string normalizerJson = "null", string[]? merges = null, string postProcessorJson = "null",
        string[]? extraVocab = null, bool ignoreMerges = false)
    {
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[ByteLevel.ByteToChar[b].ToString()] = b;
        foreach (var m in merges ?? [])
            vocab.TryAdd(m.Replace(" ", ""), vocab.Count);
        foreach (var v in extraVocab ?? [])
            vocab.TryAdd(v, vocab.Count);
        preTokenizerJson ??= """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}""";
        string json = $$"""
        {
          "version": "1.0",
          "added_tokens": {{addedTokensJson}},
          "normalizer": {{normalizerJson}},
          "pre_tokenizer": {{preTokenizerJson}},
          "post_processor": {{postProcessorJson}},
          "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
          "model": {"type": "BPE", "dropout": null, "unk_token": null, "ignore_merges": {{(ignoreMerges ? "true" : "false")}}, "vocab": {{JsonSerializer.Serialize(vocab)}},
                    "merges": {{JsonSerializer.Serialize(merges ?? [])}}}
        }
        """;
        var path = dir.File("tokenizer.json");
        File.WriteAllText(path, json);
        return path;
    }

    public static string Added(int id, string content, bool lstrip = false, bool rstrip = false, bool singleWord = false,
        bool normalized = false, bool special = true) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip,
            ["rstrip"] = rstrip, ["normalized"] = normalized, ["special"] = special,
        });

    /// <summary>The text of each token of an encoding, decoded one by one (to see where pieces were cut).</summary>
    public static string[] Pieces(HfTokenizer tok, string text) => tok.Encode(text).Select(id => tok.Decode([id])).ToArray();
}
