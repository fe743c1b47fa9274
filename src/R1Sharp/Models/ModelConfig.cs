using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace R1Sharp.Models;

/// <summary>
/// A causal language model's configuration: the keys every family's Hugging Face config.json has. Each family derives
/// its own record (<see cref="LlamaConfig"/>, <see cref="Qwen2Config"/>, <see cref="Qwen3Config"/>) whose defaults are
/// a real model, as transformers' config classes do. Properties are the config.json keys under System.Text.Json's
/// snake_case naming (NumHiddenLayers ↔ num_hidden_layers), so no key is mapped by hand; keys a family does not model
/// are kept in <see cref="Extra"/> and written back, so a saved folder round-trips.
/// </summary>
public abstract record ModelConfig
{
    [JsonPropertyOrder(-10)] public string ModelType { get; init; } = "";
    [JsonPropertyOrder(-9)] public List<string>? Architectures { get; init; }
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int MaxPositionEmbeddings { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public double InitializerRange { get; init; } = 0.02;
    /// <summary>The checkpoint's dtype: "float32", "bfloat16" or "float16" (transformers 5 writes it as "dtype").</summary>
    public string TorchDtype { get; init; } = "float32";
    public int? BosTokenId { get; init; }

    /// <summary>config.json's eos_token_id, one id or a list.</summary>
    [JsonIgnore] public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    [JsonPropertyName("eos_token_id"), JsonInclude]
    JsonNode? EosTokenIdJson
    {
        get => EosTokenIds.Count switch { 0 => null, 1 => EosTokenIds[0], _ => new JsonArray(EosTokenIds.Select(i => (JsonNode)i).ToArray()) };
        init => EosTokenIds = value switch
        {
            null => [],
            JsonValue v when v.TryGetValue(out int i) => [i],
            JsonArray a when a.All(x => x is JsonValue e && e.TryGetValue(out int _)) => a.Select(x => x!.GetValue<int>()).ToList(),
            _ => throw new ConfigKeyException("eos_token_id", $"expects an integer or a list of integers, found {value.ToJsonString()}"),
        };
    }

    /// <summary>Block-scaled FP8 weights (DeepSeek-V3/R1's releases on the Hub, and other models' -FP8 releases): read
    /// dequantised (IO/Fp8Weights.cs); null for float checkpoints.</summary>
    public Fp8QuantizationConfig? QuantizationConfig { get; init; }

    /// <summary>Keys this family does not model, written back unchanged.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

    /// <summary>The class transformers builds for this configuration ("Qwen2ForCausalLM").</summary>
    [JsonIgnore] public abstract string ArchitectureName { get; }

    /// <summary>Parameters the model holds, from the shapes alone (checked against memory before any is allocated).</summary>
    public abstract long ParameterCount();

    /// <summary>Matmul FLOPs of a forward pass over rows × length tokens, with the vocabulary projection of
    /// logitColumns of them (2 per multiply-add; element-wise work left out, as model-FLOPs utilisation counts,
    /// PaLM appendix B).</summary>
    public abstract double ForwardFlops(long rows, long length, long logitColumns);

    /// <summary>Checks every value that shapes the computation; throws one error naming the key.</summary>
    public virtual void Validate(string source)
    {
        Positive(source, "vocab_size", VocabSize);
        Positive(source, "hidden_size", HiddenSize);
        Positive(source, "num_hidden_layers", NumHiddenLayers);
        Positive(source, "max_position_embeddings", MaxPositionEmbeddings);
        if (TorchDtype is not ("float32" or "bfloat16" or "float16"))
            throw new R1SharpException($"{source}: torch_dtype \"{TorchDtype}\" is not supported (expected float32, bfloat16 or float16)");
        foreach (int id in EosTokenIds)
            if (id < 0) throw new R1SharpException($"{source}: eos_token_id {id} is negative");
        if (BosTokenId is < 0) throw new R1SharpException($"{source}: bos_token_id {BosTokenId} is negative");
        QuantizationConfig?.Validate(source);
    }

    protected static void Positive(string source, string key, long value)
    {
        if (value <= 0) throw new R1SharpException($"{source}: \"{key}\" must be a positive integer, found {value}");
    }

    protected static void PositiveFinite(string source, string key, double value)
    {
        if (!(value > 0) || !double.IsFinite(value)) throw new R1SharpException($"{source}: \"{key}\" must be a positive number, found {value}");
    }

    /// <summary>config.json's JSON naming: snake_case properties, strict numbers (64.5 is not an integer).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };

    /// <summary>The JSON to write as config.json: every key, ours and the ones kept from the file.</summary>
    public JsonObject ToJson()
    {
        var o = (JsonObject)JsonSerializer.SerializeToNode(this, GetType(), Json)!;
        o["architectures"] ??= new JsonArray(ArchitectureName);
        return o;
    }

    /// <summary>Reads a family's config record from config.json's object, with one error naming the key for a value
    /// of the wrong type or out of range.</summary>
    public static T FromJson<T>(JsonObject raw, string source) where T : ModelConfig
    {
        T config;
        try
        {
            // transformers 5 names torch_dtype "dtype"; both are read, torch_dtype is written.
            if (!raw.ContainsKey("torch_dtype") && raw["dtype"] is JsonValue d && d.TryGetValue(out string? dtype))
            {
                raw = (JsonObject)raw.DeepClone();
                raw.Remove("dtype");
                raw["torch_dtype"] = dtype;
            }
            config = raw.Deserialize<T>(Json) ?? throw new R1SharpException($"{source}: expected a JSON object");
        }
        catch (ConfigKeyException e) { throw new R1SharpException($"{source}: \"{e.Key}\" {e.Message}"); }
        catch (JsonException e) { throw new R1SharpException($"{source}: {DescribeJsonError(raw, e)}"); }
        catch (InvalidOperationException e) { throw new R1SharpException($"{source}: {e.Message}"); }
        config.Validate(source);
        return config;
    }

    /// <summary>"hidden_size" expects an integer, found 64.5 — from System.Text.Json's error and the value itself.</summary>
    static string DescribeJsonError(JsonObject raw, JsonException e)
    {
        var path = (e.Path ?? "$").TrimStart('$').TrimStart('.');
        if (path.Length == 0) return $"malformed configuration: {e.Message}";
        JsonNode? node = raw;
        foreach (var part in path.Split('.'))
            node = node is JsonObject o ? o[part.Trim('[', ']', '\'')] : null;
        string found = node?.ToJsonString() ?? "null";
        if (found.Length > 60) found = found[..60] + "…";
        string expected = e.Message.Contains("Int32") ? "an integer in range" : e.Message.Contains("Double") ? "a number"
            : e.Message.Contains("Boolean") ? "true or false" : e.Message.Contains("String") ? "a string" : "another type";
        return $"\"{path}\" expects {expected}, found {found}";
    }
}

/// <summary>A config value that cannot be read, thrown from a property and reported with the file's name.</summary>
public sealed class ConfigKeyException(string key, string message) : Exception(message)
{
    public string Key { get; } = key;
}
