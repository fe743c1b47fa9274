using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// One model family: its config.json model_type and transformers class, how to read its configuration, how to build
/// the model, its named shapes for `r1 init`, and its llama.cpp architecture name (GGUF tables: IO/GgufArchitectures.cs).
/// </summary>
public sealed record ModelFamily(
    string ModelType,
    string Architecture,
    Func<JsonObject, string, ModelConfig> ReadConfig,
    Func<ModelConfig, ScalarType, CausalLM> Build,
    Func<string, int, ModelConfig> Preset,
    IReadOnlyList<string> Sizes,
    string GgufArchitecture);

/// <summary>
/// The families R1Sharp runs, keyed by config.json's model_type (and its architectures entry). Model folders, GGUF
/// import and export, `r1 init`, FLOP counting and the trainer's reference copy all go through here, so adding a
/// family is its own file plus one line below (and its GGUF table).
/// </summary>
public static class ModelRegistry
{
    public static IReadOnlyList<ModelFamily> Families { get; } =
    [
        Qwen2Config.Family,
        LlamaConfig.Family,
        Qwen3Config.Family,
        DeepseekV3Config.Family,
        DeepseekV2Config.Family,
    ];

    public static string Names => string.Join(", ", Families.Select(f => f.ModelType));

    public static ModelFamily Get(string modelType) =>
        Families.FirstOrDefault(f => f.ModelType == modelType)
        ?? throw new R1SharpException($"model type \"{modelType}\" is not supported (expected one of {Names})");

    public static ModelFamily? ByGgufArchitecture(string arch) => Families.FirstOrDefault(f => f.GgufArchitecture == arch);

    /// <summary>The family of a config.json: its model_type, else the class named in architectures.</summary>
    public static ModelFamily FamilyOf(JsonObject raw, string source)
    {
        string? modelType = raw["model_type"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        if (modelType != null)
            return Families.FirstOrDefault(f => f.ModelType == modelType)
                ?? throw new R1SharpException($"{source}: \"model_type\" {Excerpt.Quote(modelType)} is not supported (expected one of {Names})");
        var archs = raw["architectures"] as JsonArray;
        foreach (var a in archs ?? [])
            if (a is JsonValue av && av.TryGetValue(out string? name) && Families.FirstOrDefault(f => f.Architecture == name) is { } fam)
                return fam;
        throw new R1SharpException($"{source}: missing \"model_type\" (expected one of {Names})");
    }

    /// <summary>Reads config.json's object into its family's record.</summary>
    public static ModelConfig ReadConfig(JsonObject raw, string source) => FamilyOf(raw, source).ReadConfig(raw, source);

    public static ModelConfig LoadConfig(string configPath)
    {
        if (!File.Exists(configPath)) throw new R1SharpException($"{configPath}: config.json not found");
        JsonObject raw;
        try { raw = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new R1SharpException($"{configPath}: expected a JSON object"); }
        catch (System.Text.Json.JsonException e) { throw new R1SharpException($"{configPath}: malformed JSON: {e.Message}"); }
        return ReadConfig(raw, configPath);
    }

    /// <summary>A model of the configuration's family, parameters in dtype (created in it: converting afterwards would
    /// hold a float32 copy), after checking that they fit in this machine's memory.</summary>
    /// <param name="source">where the configuration came from (its file), named when it is refused</param>
    public static CausalLM Create(ModelConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null, string? source = null)
    {
        CheckMemory(config, dtype, source ?? $"{config.ModelType} configuration");
        var model = Get(config.ModelType).Build(config, dtype);
        if (device != null && device.type != DeviceType.CPU) model.to(device);
        return model;
    }

    /// <summary>Refuses a configuration whose parameters alone exceed the machine's memory (a typo such as
    /// num_hidden_layers 1000000000 would otherwise allocate until the system gives out), naming the keys that make
    /// them.</summary>
    /// <param name="name">how the source names a key (GGUF metadata); config.json's names when null</param>
    public static void CheckMemory(ModelConfig config, ScalarType dtype, string source, Func<string, string>? name = null)
    {
        long total = MachineMemoryBytes();
        double perParameter = dtype switch { ScalarType.BFloat16 or ScalarType.Float16 => 2, _ => 4 };
        double bytes;
        try { bytes = config.ParameterCount() * perParameter; }
        catch (OverflowException) { bytes = double.PositiveInfinity; }
        if (total > 0 && bytes > total)
            throw new R1SharpException($"{source}: the parameters would take {FormatBytes(bytes)} in {ModelFolder.TorchDtypeName(dtype)}, more than this " +
                $"machine's {FormatBytes(total)} of memory: {config.DescribeSize(name)}");
    }

    public static string FormatBytes(double bytes) => bytes switch
    {
        double.PositiveInfinity or >= long.MaxValue => "more than 8 EiB",
        >= 1L << 50 => $"{bytes / (1L << 50):F1} PiB",
        >= 1L << 40 => $"{bytes / (1L << 40):F1} TiB",
        >= 1 << 30 => $"{bytes / (1 << 30):F1} GiB",
        _ => $"{bytes / (1 << 20):F0} MiB",
    };

    /// <summary>The memory this process may use: physical memory (Linux /proc/meminfo's MemTotal) or, when lower, the
    /// limit the runtime sees (a container's cgroup limit); 0 when unknown.</summary>
    public static long MachineMemoryBytes()
    {
        long physical = 0;
        try
        {
            if (File.Exists("/proc/meminfo"))
                foreach (var line in File.ReadLines("/proc/meminfo"))
                    if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                    {
                        physical = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
                        break;
                    }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        long runtime = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return physical > 0 && runtime > 0 ? Math.Min(physical, runtime) : Math.Max(physical, runtime);
    }
}
