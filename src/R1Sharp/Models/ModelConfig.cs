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

    /// <summary>Parameters the model holds, from the shapes alone (checked against memory before any is allocated);
    /// OverflowException when they do not fit a long.</summary>
    public abstract long ParameterCount();

    /// <summary>Where the parameters are, with the keys and values that make them ("num_hidden_layers 1000000000 ×
    /// 131,200 per layer (hidden_size 64, …)"), for an error saying a configuration is too large.</summary>
    /// <param name="name">how the source names a key (GGUF metadata: "qwen2.block_count"); config.json's names when null</param>
    public abstract string DescribeSize(Func<string, string>? name = null);

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
            throw new ConfigValueException(source, "torch_dtype", $"{Excerpt.Quote(TorchDtype ?? "")} is not supported (expected float32, bfloat16 or float16)");
        // An id past the embedding rows can never be sampled: generation would never stop on it.
        foreach (int id in EosTokenIds) TokenId(source, "eos_token_id", id);
        if (BosTokenId is { } bos) TokenId(source, "bos_token_id", bos);
        // Used only to draw random weights (r1 init, pre-training), but a negative deviation, or one past float32's
        // range (the weights' type), is no initialisation.
        if (!(InitializerRange >= 0 && InitializerRange <= float.MaxValue))
            throw new ConfigValueException(source, "initializer_range", $"must be a number from 0 to float32's largest, found {Show(InitializerRange)}");
        QuantizationConfig?.Validate(source);
    }

    void TokenId(string source, string key, int id)
    {
        if (id < 0 || id >= VocabSize)
            throw new ConfigValueException(source, key, $"{id} is not a token id of this model (0 to vocab_size − 1 = {VocabSize - 1})");
    }

    protected static void Positive(string source, string key, long value)
    {
        if (value <= 0) throw new ConfigValueException(source, key, $"must be a positive integer, found {value}");
    }

    protected static void PositiveFinite(string source, string key, double value)
    {
        if (!(value > 0) || !double.IsFinite(value)) throw new ConfigValueException(source, key, $"must be a positive number, found {Show(value)}");
    }

    /// <summary>A number as a message shows it (invariant culture, so "1E+300" and "NaN" read the same everywhere).</summary>
    protected static string Show(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

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
            raw = Normalized(raw);
            config = raw.Deserialize<T>(Json) ?? throw new R1SharpException($"{source}: expected a JSON object");
        }
        catch (ConfigKeyException e) { throw new ConfigValueException(source, e.Key, e.Message); }
        catch (JsonException e) when (JsonErrorKey(e) is { } key) { throw new ConfigValueException(source, key, DescribeJsonError(raw, key, e)); }
        catch (JsonException e) { throw new R1SharpException($"{source}: malformed configuration: {e.Message}"); }
        catch (InvalidOperationException e) { throw new R1SharpException($"{source}: {e.Message}"); }
        config.Validate(source);
        return config;
    }

    /// <summary>config.json as the records read it: transformers 5's "dtype" as torch_dtype (both are read,
    /// torch_dtype is written), and a null model_type or torch_dtype as absent, as transformers treats None (the
    /// family's type; float32).</summary>
    static JsonObject Normalized(JsonObject raw)
    {
        bool dtypeOnly = !raw.ContainsKey("torch_dtype") && raw.ContainsKey("dtype");
        bool nulls = raw.TryGetPropertyValue("model_type", out var mt) && mt is null
            || raw.TryGetPropertyValue("torch_dtype", out var td) && td is null
            || raw.TryGetPropertyValue("dtype", out var d0) && d0 is null;
        if (!dtypeOnly && !nulls) return raw;
        raw = (JsonObject)raw.DeepClone();
        if (dtypeOnly)
        {
            var d = raw["dtype"];
            raw.Remove("dtype");
            raw["torch_dtype"] = d;
        }
        foreach (var key in new[] { "model_type", "torch_dtype" })
            if (raw.TryGetPropertyValue(key, out var v) && v is null) raw.Remove(key);
        return raw;
    }

    /// <summary>The top-level key a System.Text.Json error is about ("rope_scaling" for $.rope_scaling.factor is
    /// reported as "rope_scaling.factor"), or null when it names none.</summary>
    static string? JsonErrorKey(JsonException e)
    {
        var path = (e.Path ?? "$").TrimStart('$').TrimStart('.');
        return path.Length == 0 ? null : path;
    }

    /// <summary>"hidden_size" expects an integer, found 64.5 — from System.Text.Json's error and the value itself.</summary>
    static string DescribeJsonError(JsonObject raw, string path, JsonException e)
    {
        JsonNode? node = raw;
        foreach (var part in System.Text.RegularExpressions.Regex.Split(path, @"\.|(?=\[)"))
        {
            if (part.Length == 0) continue;
            if (part.StartsWith('[') && int.TryParse(part.Trim('[', ']'), out int index))
                node = node is JsonArray a && index < a.Count ? a[index] : null;
            else node = node is JsonObject o ? o[part.Trim('[', ']', '\'')] : null;
        }
        string found = Excerpt.Json(node);
        string m = e.Message;
        string expected = m.Contains("List`1") ? "a list" : m.Contains("Int32") ? "an integer in range" : m.Contains("Double") ? "a number"
            : m.Contains("Boolean") ? "true or false" : m.Contains("String") ? "a string" : m.Contains("RopeScaling") ? "an object or null" : "another type";
        return $"expects {expected}, found {found}";
    }
}

/// <summary>A configuration value out of range or of the wrong type: the file, the key and what is wrong. Readers
/// that know the key by another name (GGUF metadata) restate it under theirs.</summary>
public sealed class ConfigValueException(string source, string key, string detail) : R1SharpException($"{source}: \"{key}\" {detail}")
{
    /// <summary>The file (or other source) the value came from.</summary>
    public string Origin { get; } = source;
    public string Key { get; } = key;
    public string Detail { get; } = detail;
}

/// <summary>A config value that cannot be read, thrown from a property and reported with the file's name.</summary>
public sealed class ConfigKeyException(string key, string message) : Exception(message)
{
    public string Key { get; } = key;
}
