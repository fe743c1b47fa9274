using System.Text.Json;
using System.Text.Json.Nodes;

namespace R1Sharp.Models;

/// <summary>Llama 3 style RoPE frequency scaling (config.json "rope_scaling" with rope_type "llama3").</summary>
public sealed record RopeScaling(string RopeType, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>
/// A decoder-only transformer's configuration; the properties mirror Hugging Face config.json keys.
/// Covers Qwen2/Qwen2.5 (model_type "qwen2": q/k/v bias) and Llama 3 (model_type "llama": no bias, llama3 rope scaling).
/// The original JSON is kept so that saving writes back every key we do not model (HF round trip).
/// </summary>
public sealed record ModelConfig
{
    public string ModelType { get; init; } = "qwen2";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int NumKeyValueHeads { get; init; }
    public int HeadDim { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 32768;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q/k/v projections: always on for Qwen2, "attention_bias" for Llama.</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on o_proj (Llama's attention_bias also covers o_proj; Qwen2 has none).</summary>
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public string TorchDtype { get; init; } = "float32";
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public JsonObject Raw { get; init; } = new();

    public int NumKeyValueGroups => NumAttentionHeads / NumKeyValueHeads;

    public static ModelConfig Load(string configPath)
    {
        if (!File.Exists(configPath)) throw new R1SharpException($"{configPath}: config.json not found");
        JsonObject raw;
        try { raw = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new R1SharpException($"{configPath}: expected a JSON object"); }
        catch (JsonException e) { throw new R1SharpException($"{configPath}: malformed JSON: {e.Message}"); }
        return FromJson(raw, configPath);
    }

    public static ModelConfig FromJson(JsonObject raw, string source = "config.json")
    {
        string modelType = Str(raw, "model_type") ?? throw new R1SharpException($"{source}: missing \"model_type\"");
        if (modelType is not ("qwen2" or "llama" or "qwen3"))
            throw new R1SharpException($"{source}: model_type \"{modelType}\" is not supported (expected qwen2 or llama)");
        if (modelType == "qwen3") throw new R1SharpException($"{source}: model_type \"qwen3\" (q/k norm) is not supported yet; expected qwen2 or llama");
        int Req(string key) => Int(raw, key) ?? throw new R1SharpException($"{source}: missing integer \"{key}\"");
        int heads = Req("num_attention_heads");
        int hidden = Req("hidden_size");
        bool isLlama = modelType == "llama";
        bool attnBias = Bool(raw, "attention_bias") ?? false;
        var cfg = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Req("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Req("intermediate_size"),
            NumHiddenLayers = Req("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = Int(raw, "num_key_value_heads") ?? heads,
            HeadDim = Int(raw, "head_dim") ?? hidden / heads,
            MaxPositionEmbeddings = Int(raw, "max_position_embeddings") ?? 32768,
            RmsNormEps = Dbl(raw, "rms_norm_eps") ?? 1e-6,
            RopeTheta = Dbl(raw, "rope_theta") ?? 10000.0,
            RopeScaling = ParseRopeScaling(raw["rope_scaling"], source),
            TieWordEmbeddings = Bool(raw, "tie_word_embeddings") ?? false,
            QkvBias = isLlama ? attnBias : true,
            OutputBias = isLlama && attnBias,
            MlpBias = isLlama && (Bool(raw, "mlp_bias") ?? false),
            HiddenAct = Str(raw, "hidden_act") ?? "silu",
            TorchDtype = Str(raw, "torch_dtype") ?? Str(raw, "dtype") ?? "float32",
            BosTokenId = Int(raw, "bos_token_id"),
            EosTokenIds = IntList(raw["eos_token_id"]),
            Raw = raw,
        };
        if (cfg.HiddenAct != "silu") throw new R1SharpException($"{source}: hidden_act \"{cfg.HiddenAct}\" is not supported (expected silu)");
        if (heads % cfg.NumKeyValueHeads != 0) throw new R1SharpException($"{source}: num_attention_heads {heads} is not a multiple of num_key_value_heads {cfg.NumKeyValueHeads}");
        if (cfg.HeadDim % 2 != 0) throw new R1SharpException($"{source}: head_dim {cfg.HeadDim} must be even for RoPE");
        return cfg;
    }

    /// <summary>The JSON to write as config.json: the original keys, with ours updated.</summary>
    public JsonObject ToJson()
    {
        var o = (JsonObject)Raw.DeepClone();
        o["model_type"] = ModelType;
        o["vocab_size"] = VocabSize;
        o["hidden_size"] = HiddenSize;
        o["intermediate_size"] = IntermediateSize;
        o["num_hidden_layers"] = NumHiddenLayers;
        o["num_attention_heads"] = NumAttentionHeads;
        o["num_key_value_heads"] = NumKeyValueHeads;
        if (HeadDim != HiddenSize / NumAttentionHeads || o.ContainsKey("head_dim")) o["head_dim"] = HeadDim;
        o["max_position_embeddings"] = MaxPositionEmbeddings;
        o["rms_norm_eps"] = RmsNormEps;
        o["rope_theta"] = RopeTheta;
        o["tie_word_embeddings"] = TieWordEmbeddings;
        o["hidden_act"] = HiddenAct;
        o["torch_dtype"] = TorchDtype;
        if (ModelType == "llama") { o["attention_bias"] = QkvBias; o["mlp_bias"] = MlpBias; }
        if (RopeScaling is { } rs)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = rs.RopeType, ["factor"] = rs.Factor, ["low_freq_factor"] = rs.LowFreqFactor,
                ["high_freq_factor"] = rs.HighFreqFactor, ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
            };
        if (BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(i => (JsonNode)i).ToArray());
        if (!o.ContainsKey("architectures"))
            o["architectures"] = new JsonArray(ModelType == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM");
        return o;
    }

    static RopeScaling? ParseRopeScaling(JsonNode? node, string source)
    {
        if (node is not JsonObject o) return null;
        string type = Str(o, "rope_type") ?? Str(o, "type") ?? "default";
        if (type == "default") return null;
        if (type != "llama3") throw new R1SharpException($"{source}: rope_scaling type \"{type}\" is not supported (expected llama3)");
        return new RopeScaling(type, Dbl(o, "factor") ?? 8, Dbl(o, "low_freq_factor") ?? 1, Dbl(o, "high_freq_factor") ?? 4,
            Int(o, "original_max_position_embeddings") ?? 8192);
    }

    static string? Str(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    static int? Int(JsonObject o, string k) => o[k] is JsonValue v ? (v.TryGetValue(out int i) ? i : v.TryGetValue(out long l) ? (int)l : v.TryGetValue(out double d) ? (int)d : null) : null;
    static double? Dbl(JsonObject o, string k) => o[k] is JsonValue v ? (v.TryGetValue(out double d) ? d : v.TryGetValue(out int i) ? i : null) : null;
    static bool? Bool(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue(out bool b) ? b : null;
    static List<int> IntList(JsonNode? n) => n switch
    {
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToList(),
        JsonValue v when v.TryGetValue(out int i) => [i],
        _ => [],
    };
}
