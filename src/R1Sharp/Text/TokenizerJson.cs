using System.Text.Json;

namespace R1Sharp.Text;

/// <summary>
/// The parts of a Hugging Face tokenizer.json that a byte-level BPE tokenizer needs, read and checked once.
/// Every problem is reported as an <see cref="R1SharpException"/> naming the file.
/// </summary>
public sealed class TokenizerJson
{
    public required string Path { get; init; }
    public required Dictionary<string, int> Vocab { get; init; }
    public required List<(string Left, string Right)> Merges { get; init; }
    /// <summary>BPE "ignore_merges": whole pre-tokens found in the vocabulary skip the merges (Llama 3).</summary>
    public required bool IgnoreMerges { get; init; }
    public required List<AddedToken> AddedTokens { get; init; }
    public required HfNormalizer Normalizer { get; init; }
    public required HfPreTokenizer PreTokenizer { get; init; }
    /// <summary>Special tokens a TemplateProcessing post_processor puts around a single sequence (empty otherwise).</summary>
    public required int[] TemplatePrefix { get; init; }
    public required int[] TemplateSuffix { get; init; }

    public static TokenizerJson Load(string path)
    {
        using var doc = ParseFile(path, "tokenizer.json");
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new R1SharpException($"{path}: expected a JSON object at the top level");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new R1SharpException($"{path}: no \"model\" object");
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (type != "BPE")
            throw new R1SharpException($"{path}: model type is \"{type}\"; only byte-level \"BPE\" tokenizers are supported");
        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (model.TryGetProperty(affix, out var a) && a.ValueKind == JsonValueKind.String && a.GetString()!.Length > 0)
                throw new R1SharpException($"{path}: BPE {affix} \"{a.GetString()}\" is not supported (byte-level BPE uses none)");

        return new TokenizerJson
        {
            Path = path,
            Vocab = ReadVocab(model, path),
            Merges = ReadMerges(model, path),
            IgnoreMerges = Flag(model, "ignore_merges"),
            AddedTokens = ReadAddedTokens(root, path),
            Normalizer = HfNormalizer.FromJson(Optional(root, "normalizer"), path),
            PreTokenizer = HfPreTokenizer.FromJson(Optional(root, "pre_tokenizer"), path),
            TemplatePrefix = ReadTemplate(Optional(root, "post_processor"), path, prefix: true),
            TemplateSuffix = ReadTemplate(Optional(root, "post_processor"), path, prefix: false),
        };
    }

    internal static JsonDocument ParseFile(string path, string what)
    {
        if (!File.Exists(path)) throw new R1SharpException($"{path}: {what} not found");
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new R1SharpException($"{path}: malformed JSON in {what} (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {e.Message}", e);
        }
    }

    static Dictionary<string, int> ReadVocab(JsonElement model, string path)
    {
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw new R1SharpException($"{path}: model has no \"vocab\" object");
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocab.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new R1SharpException($"{path}: vocab entry \"{p.Name}\" has id {p.Value}; expected a non-negative integer");
            result[p.Name] = id;
        }
        if (result.Count == 0) throw new R1SharpException($"{path}: model vocab is empty");
        return result;
    }

    // Merges are written either as "left right" strings (older files) or as ["left", "right"] pairs.
    static List<(string, string)> ReadMerges(JsonElement model, string path)
    {
        if (!model.TryGetProperty("merges", out var merges) || merges.ValueKind != JsonValueKind.Array)
            throw new R1SharpException($"{path}: model has no \"merges\" array");
        var result = new List<(string, string)>(merges.GetArrayLength());
        int index = 0;
        foreach (var m in merges.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String)
            {
                var s = m.GetString()!;
                int space = s.IndexOf(' ');
                if (space <= 0 || space != s.LastIndexOf(' ') || space == s.Length - 1)
                    throw new R1SharpException($"{path}: merge #{index} \"{s}\" is not two tokens separated by one space");
                result.Add((s[..space], s[(space + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                result.Add((m[0].GetString()!, m[1].GetString()!));
            else
                throw new R1SharpException($"{path}: merge #{index} is {m.ValueKind}; expected \"a b\" or [\"a\", \"b\"]");
            index++;
        }
        return result;
    }

    static List<AddedToken> ReadAddedTokens(JsonElement root, string path)
    {
        var result = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var added) || added.ValueKind == JsonValueKind.Null) return result;
        if (added.ValueKind != JsonValueKind.Array) throw new R1SharpException($"{path}: \"added_tokens\" is not an array");
        foreach (var a in added.EnumerateArray())
        {
            if (!a.TryGetProperty("id", out var idEl) || !idEl.TryGetInt32(out int id) || id < 0)
                throw new R1SharpException($"{path}: an added token has no valid \"id\"");
            string content = GetString(a, "content", path, $"added token {id}");
            result.Add(new AddedToken(id, content, Flag(a, "single_word"), Flag(a, "lstrip"), Flag(a, "rstrip"),
                Flag(a, "normalized", defaultValue: !Flag(a, "special")), Flag(a, "special")));
        }
        return result;
    }

    static bool Flag(JsonElement e, string name, bool defaultValue = false) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.True : defaultValue;

    /// <summary>Ids of the special tokens before (prefix) or after (suffix) $A in a TemplateProcessing "single" template.</summary>
    static int[] ReadTemplate(JsonElement? node, string path, bool prefix)
    {
        if (node is not { } e || e.ValueKind != JsonValueKind.Object) return [];
        string type = e.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type == "Sequence" && e.TryGetProperty("processors", out var procs) && procs.ValueKind == JsonValueKind.Array)
        {
            foreach (var p in procs.EnumerateArray())
                if (p.TryGetProperty("type", out var pt) && pt.GetString() == "TemplateProcessing") return ReadTemplate(p, path, prefix);
            return [];
        }
        if (type != "TemplateProcessing" || !e.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) return [];
        var ids = new List<int>();
        bool beforeSequence = true;
        foreach (var item in single.EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out _)) { beforeSequence = false; continue; }
            if (beforeSequence != prefix || !item.TryGetProperty("SpecialToken", out var st)) continue;
            string name = GetString(st, "id", path, "post_processor SpecialToken");
            if (!e.TryGetProperty("special_tokens", out var specials) || !specials.TryGetProperty(name, out var spec)
                || !spec.TryGetProperty("ids", out var specIds) || specIds.ValueKind != JsonValueKind.Array)
                throw new R1SharpException($"{path}: post_processor template uses \"{name}\" but special_tokens does not give its ids");
            foreach (var id in specIds.EnumerateArray()) ids.Add(id.GetInt32());
        }
        return [.. ids];
    }

    static JsonElement? Optional(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    internal static string GetString(JsonElement e, string name, string path, string what) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new R1SharpException($"{path}: {what} has no string \"{name}\"");

    internal static JsonElement.ArrayEnumerator GetArray(JsonElement e, string name, string path, string what) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray()
            : throw new R1SharpException($"{path}: {what} has no array \"{name}\"");
}

/// <summary>The fields of tokenizer_config.json that change how text is encoded.</summary>
public sealed record TokenizerConfig(string? Path, string? BosToken, string? EosToken, bool? AddBosToken, bool? AddEosToken)
{
    public static readonly TokenizerConfig Empty = new(null, null, null, null, null);

    public static TokenizerConfig Load(string path)
    {
        using var doc = TokenizerJson.ParseFile(path, "tokenizer_config.json");
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new R1SharpException($"{path}: expected a JSON object at the top level");
        return new TokenizerConfig(path, TokenName(root, "bos_token", path), TokenName(root, "eos_token", path),
            OptionalBool(root, "add_bos_token"), OptionalBool(root, "add_eos_token"));
    }

    // A special token is written either as a plain string or as an AddedToken object {"content": ...}.
    static string? TokenName(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
            return c.GetString();
        throw new R1SharpException($"{path}: \"{name}\" is {v.ValueKind}; expected a string or an object with \"content\"");
    }

    static bool? OptionalBool(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
}
