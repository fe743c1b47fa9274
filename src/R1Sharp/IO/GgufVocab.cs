using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Text;

namespace R1Sharp.IO;

/// <summary>
/// The tokenizer as GGUF metadata (tokenizer.ggml.*, tokenizer.chat_template), following convert_hf_to_gguf.py's
/// get_vocab_base and gguf-py's SpecialVocab; and back to tokenizer.json + tokenizer_config.json on import.
/// </summary>
public static class GgufVocab
{
    // llama_token_type (llama.h): what llama.cpp's tokenizer does with each id.
    public const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>Appends the tokenizer metadata of a model folder, padded to the model's vocabulary size.</summary>
    public static void AddTo(GgufWriter w, string folder, int modelVocab, int? configBos, IReadOnlyList<int> configEos, string? pre = null)
    {
        string jsonPath = Path.Combine(folder, "tokenizer.json");
        var tj = TokenizerJson.Load(jsonPath);
        var tok = HfTokenizer.FromFolder(folder);
        var cfg = ReadConfig(folder);

        var tokens = new string[modelVocab];
        var types = new int[modelVocab];
        for (int i = 0; i < modelVocab; i++) { tokens[i] = $"[PAD{i}]"; types[i] = Unused; }
        void Set(int id, string text, int type)
        {
            if (id >= modelVocab) throw new R1SharpException($"{jsonPath}: token id {id} ({Excerpt.Quote(text)}) is outside the model's vocab_size {modelVocab}");
            tokens[id] = text; types[id] = type;
        }
        foreach (var (text, id) in tj.Vocab) Set(id, text, Normal);
        // Added tokens: special ones, and ones that look like control tokens (convert's does_token_look_special), are
        // CONTROL (matched only when parsing specials); the others USER_DEFINED (always matched, like HF).
        foreach (var t in tj.AddedTokens) Set(t.Id, t.Content, t.Special || LooksSpecial(t.Content) ? Control : UserDefined);

        w.Add("tokenizer.ggml.model", GgufValue.Str("gpt2"));
        w.Add("tokenizer.ggml.pre", GgufValue.Str(pre ?? GgufPreTokenizers.Detect(jsonPath)));
        w.Add("tokenizer.ggml.tokens", GgufValue.Strings(tokens));
        w.Add("tokenizer.ggml.token_type", GgufValue.I32s(types));
        w.Add("tokenizer.ggml.merges", GgufValue.Strings(tj.Merges.Select(m => m.Left + " " + m.Right)));

        int? Id(string? token) => token == null ? null : tok.TokenToId(token);
        int? bos = Id(cfg.Bos) ?? configBos;
        int? eos = Id(cfg.Eos) ?? (configEos.Count > 0 ? configEos[0] : null);
        int? pad = Id(cfg.Pad);
        if (bos is { } b) w.Add("tokenizer.ggml.bos_token_id", GgufValue.U32((uint)b));
        if (eos is { } e) w.Add("tokenizer.ggml.eos_token_id", GgufValue.U32((uint)e));
        if (pad is { } p) w.Add("tokenizer.ggml.padding_token_id", GgufValue.U32((uint)p));
        // What encoding with special tokens adds (tokenizer_config's add_bos_token, else the post-processor's
        // template): the ids before and after those of a plain word.
        var plain = tok.Encode("a");
        var full = tok.Encode("a", addSpecialTokens: true);
        int at = Enumerable.Range(0, full.Count - plain.Count + 1).First(i => full.Skip(i).Take(plain.Count).SequenceEqual(plain));
        w.Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(at > 0 && full[0] == bos));
        w.Add("tokenizer.ggml.add_eos_token", GgufValue.Bool(at + plain.Count < full.Count && full[^1] == eos));
        if (cfg.ChatTemplate != null) w.Add("tokenizer.chat_template", GgufValue.Str(cfg.ChatTemplate));
    }

    /// <summary>convert_hf_to_gguf.py's does_token_look_special: "&lt;|…|&gt;" and DeepSeek's "&lt;｜…｜&gt;" spellings.</summary>
    public static bool LooksSpecial(string t) =>
        t is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (t.StartsWith("<|") && t.EndsWith("|>")) || (t.StartsWith("<｜") && t.EndsWith("｜>"))
        || (t.StartsWith("<unused") && t.EndsWith('>'));

    sealed record Config(string? Bos, string? Eos, string? Pad, string? ChatTemplate);

    static Config ReadConfig(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return new Config(null, null, null, null);
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new R1SharpException($"{path}: expected a JSON object"); }
        catch (JsonException e) { throw new R1SharpException($"{path}: malformed JSON: {e.Message}"); }
        static string? Name(JsonNode? n) => n switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonObject obj => obj["content"]?.GetValue<string>(),
            _ => null,
        };
        // chat_template is a string, or a list of {name, template} where "default" is the one used.
        string? template = o["chat_template"] switch
        {
            JsonValue v when v.TryGetValue(out string? s) => s,
            JsonArray a => a.OfType<JsonObject>().FirstOrDefault(x => Name(x["name"]) == "default")?["template"]?.GetValue<string>(),
            _ => null,
        };
        template ??= File.Exists(Path.Combine(folder, "chat_template.jinja")) ? File.ReadAllText(Path.Combine(folder, "chat_template.jinja")) : null;
        return new Config(Name(o["bos_token"]), Name(o["eos_token"]), Name(o["pad_token"]), template);
    }

    /// <summary>
    /// The tokenizer and chat template of a GGUF file (the template null when the file has none), for running the file
    /// directly: the tables built straight from the metadata arrays, read as <see cref="WriteTokenizerFiles"/> writes
    /// them for import (the same vocabulary, added tokens, merges, pre-tokenizer and specials), so a file and its import
    /// tokenize and render alike. Going through a tokenizer.json in memory left ~30 MB of the JSON parser's pooled
    /// buffers resident for the life of the process, and took twice as long.
    /// </summary>
    public static (HfTokenizer Tokenizer, ChatTemplate? Template) ReadTokenizer(GgufFile g)
    {
        var v = Read(g);
        var vocab = new Dictionary<string, int>(v.Tokens.Count, StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int i = 0; i < v.Tokens.Count; i++)
        {
            if (v.Types[i] == Normal) vocab[v.Tokens[i]] = i;
            else if (v.Types[i] is Control or UserDefined)
                added.Add(new AddedToken(i, v.Tokens[i], SingleWord: false, LStrip: false, RStrip: false, Normalized: false, Special: v.Types[i] == Control));
        }
        if (vocab.Count == 0) throw new R1SharpException($"{g.Path}: tokenizer.ggml.tokens has no normal tokens");
        var merges = new List<(string, string)>(v.Merges.Count);
        for (int i = 0; i < v.Merges.Count; i++)
        {
            string m = v.Merges[i];
            int space = m.IndexOf(' ');
            if (space <= 0 || space != m.LastIndexOf(' ') || space == m.Length - 1)
                throw new R1SharpException($"{g.Path}: tokenizer.ggml.merges #{i} {Excerpt.Quote(m)} is not two tokens separated by one space");
            merges.Add((m[..space], m[(space + 1)..]));
        }
        static JsonElement? Element(JsonNode? node) => node is null ? null : JsonSerializer.SerializeToElement(node);
        var json = new TokenizerJson
        {
            Path = g.Path, Vocab = vocab, Merges = merges, IgnoreMerges = false, AddedTokens = added,
            Normalizer = HfNormalizer.FromJson(Element(v.Normalizer), g.Path),
            PreTokenizer = HfPreTokenizer.FromJson(Element(v.PreTokenizer), g.Path),
            TemplatePrefix = [], TemplateSuffix = [], // post_processor ByteLevel: no template
        };
        var config = new TokenizerConfig(g.Path, v.Bos, v.Eos, v.AddBos, v.AddEos);
        var tokenizer = HfTokenizer.FromParts(json, config);
        ChatTemplate? template = null;
        if (v.ChatTemplate is { } source)
        {
            try { template = new ChatTemplate(source, v.Bos, v.Eos); }
            catch (R1SharpException e) { throw new R1SharpException($"{g.Path}: tokenizer.chat_template: {e.Message}", e); }
        }
        return (tokenizer, template);
    }

    /// <summary>A gpt2-type vocabulary as the metadata holds it, checked.</summary>
    sealed record Vocab(List<string> Tokens, List<int> Types, List<string> Merges, JsonNode? Normalizer, JsonNode PreTokenizer,
        string? Bos, string? Eos, string? Pad, bool AddBos, bool AddEos, string? ChatTemplate);

    static Vocab Read(GgufFile g)
    {
        string model = g.TryString("tokenizer.ggml.model") ?? throw new R1SharpException($"{g.Path}: no tokenizer (tokenizer.ggml.model is missing)");
        if (model != "gpt2") throw new R1SharpException($"{g.Path}: tokenizer.ggml.model {Excerpt.Quote(model)} is not supported (expected gpt2, byte-level BPE)");
        var tokens = Strings(g, "tokenizer.ggml.tokens");
        var types = g.TryArray("tokenizer.ggml.token_type")?.Items.Select(Convert.ToInt32).ToList() ?? Enumerable.Repeat(Normal, tokens.Count).ToList();
        if (types.Count != tokens.Count) throw new R1SharpException($"{g.Path}: {types.Count} token types for {tokens.Count} tokens");
        var merges = g.TryArray("tokenizer.ggml.merges") is { } m ? Strings(g, "tokenizer.ggml.merges") : [];
        string pre = g.TryString("tokenizer.ggml.pre") ?? "default";
        var (normalizer, preTokenizer) = GgufPreTokenizers.ForName(pre, g.Path);
        string? TokenAt(string key) => g.TryInt(key) is { } id && id >= 0 && id < tokens.Count ? tokens[(int)id] : null;
        return new Vocab(tokens, types, merges, normalizer, preTokenizer,
            TokenAt("tokenizer.ggml.bos_token_id"), TokenAt("tokenizer.ggml.eos_token_id"), TokenAt("tokenizer.ggml.padding_token_id"),
            g.TryBool("tokenizer.ggml.add_bos_token") ?? false, g.TryBool("tokenizer.ggml.add_eos_token") ?? false,
            g.TryString("tokenizer.chat_template"));
    }

    /// <summary>Writes tokenizer.json and tokenizer_config.json for a GGUF's gpt2-type vocabulary into <paramref name="dir"/>.</summary>
    public static void WriteTokenizerFiles(GgufFile g, string dir)
    {
        var v = Read(g);
        var (tokens, types, merges) = (v.Tokens, v.Types, v.Merges);
        var vocab = new JsonObject();
        var added = new JsonArray();
        for (int i = 0; i < tokens.Count; i++)
        {
            if (types[i] == Normal) vocab[tokens[i]] = i;
            else if (types[i] is Control or UserDefined)
                added.Add(new JsonObject
                {
                    ["id"] = i, ["content"] = tokens[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                    ["normalized"] = false, ["special"] = types[i] == Control,
                });
        }
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = v.Normalizer, ["pre_tokenizer"] = v.PreTokenizer,
            ["post_processor"] = GgufPreTokenizers.ByteLevel(), ["decoder"] = GgufPreTokenizers.ByteLevel(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray(merges.Select(x => (JsonNode)x!).ToArray()),
            },
        };
        var config = new JsonObject
        {
            ["add_bos_token"] = v.AddBos,
            ["add_eos_token"] = v.AddEos,
            ["bos_token"] = v.Bos,
            ["eos_token"] = v.Eos,
            ["pad_token"] = v.Pad,
            ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = 131072,
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
        };
        if (v.ChatTemplate is { } tpl) config["chat_template"] = tpl;
        var encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString(new JsonSerializerOptions { Encoder = encoder }));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
            config.ToJsonString(new JsonSerializerOptions { Encoder = encoder, WriteIndented = true }) + "\n");
    }

    static List<string> Strings(GgufFile g, string key) =>
        g.TryArray(key) is { ElementType: GgufValueType.String } a ? a.Items.Cast<string>().ToList()
            : throw new R1SharpException($"{g.Path}: metadata {Excerpt.Quote(key)} should be an array of strings");
}
