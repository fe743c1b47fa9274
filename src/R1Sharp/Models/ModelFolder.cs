using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// A Hugging Face model folder: config.json, generation_config.json, model.safetensors (or shards with
/// model.safetensors.index.json) and the tokenizer files. Loading reads weights straight into the parameters;
/// saving writes the folder under a temporary name and renames it into place, so a crash never leaves half a model.
/// </summary>
public static class ModelFolder
{
    public const string ConfigFile = "config.json";
    public const string GenerationConfigFile = "generation_config.json";
    public static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

    /// <summary>Checks that dir looks like a model folder, with one clear message when it does not.</summary>
    public static void Validate(string dir)
    {
        if (!Directory.Exists(dir)) throw new R1SharpException($"{dir}: model folder not found");
        if (!File.Exists(Path.Combine(dir, ConfigFile))) throw new R1SharpException($"{dir}: not a model folder (no {ConfigFile})");
        CheckpointIO.WeightFiles(dir); // throws when neither model.safetensors nor an index exists
    }

    /// <summary>The dtype to run a checkpoint in: its own, except float16, which has no fast CPU path (GUIDE.md),
    /// so it runs in float32 on the CPU.</summary>
    public static ScalarType DefaultDType(ModelConfig cfg, Device device) => cfg.TorchDtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => device.type == DeviceType.CPU ? ScalarType.Float32 : ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    public static ScalarType ParseDType(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "f16" or "fp16" or "float16" => ScalarType.Float16,
        _ => throw new R1SharpException($"unknown dtype \"{name}\" (expected f32, bf16 or f16)"),
    };

    public static string TorchDtypeName(ScalarType t) => t switch
    {
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => "float32",
    };

    public static CausalLM Load(string dir, Device? device = null, ScalarType? dtype = null)
    {
        Validate(dir);
        string configPath = Path.Combine(dir, ConfigFile);
        var cfg = ModelRegistry.LoadConfig(configPath);
        device ??= CPU;
        // FP8 block-scaled weights are dequantised while they load: the model in memory is a float model, and a folder
        // it saves says so (no quantization_config).
        var model = CausalLM.Create(cfg with { QuantizationConfig = null }, dtype ?? DefaultDType(cfg, device), device, configPath);
        try
        {
            // HF checkpoints of tied models sometimes carry lm_head.weight; older ones carry rotary inv_freq buffers.
            CheckpointIO.LoadInto(dir, model.StateDict(), ignoreExtra: model.IgnoredCheckpointTensor, fp8BlockSize: cfg.QuantizationConfig?.WeightBlockSize);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>Writes a complete HF folder. Tokenizer files are copied from tokenizerDir when given. With fp8, the
    /// layers' linear weights are written block-scaled in float8_e4m3fn with config.json's quantization_config, as
    /// DeepSeek's releases (<see cref="Fp8Weights"/>), the rest in dtype.</summary>
    public static void Save(CausalLM model, string dir, string? tokenizerDir = null, ScalarType? dtype = null, JsonObject? generationConfig = null,
        Fp8QuantizationConfig? fp8 = null)
    {
        var saveType = dtype ?? model.DType;
        string full = Path.GetFullPath(dir).TrimEnd('/');
        string tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(tmp);
        try
        {
            var config = model.Config with { TorchDtype = TorchDtypeName(saveType), QuantizationConfig = fp8 };
            WriteJson(Path.Combine(tmp, ConfigFile), config.ToJson());
            WriteJson(Path.Combine(tmp, GenerationConfigFile), generationConfig ?? DefaultGenerationConfig(config));
            if (fp8 is null) CheckpointIO.Save(tmp, model.StateDict(), dtype: saveType);
            else
            {
                fp8.Validate("fp8 save");
                CheckpointIO.SaveItems(tmp, model.StateDict().SelectMany(kv => Fp8Weights.Quantizes(kv.Key, kv.Value)
                    ? Fp8Weights.Items(kv.Key, kv.Value, fp8.WeightBlockSize) : [SafetensorsWriter.Item(kv.Key, kv.Value, saveType)]).ToList());
            }
            if (tokenizerDir != null)
                foreach (var f in TokenizerFiles)
                {
                    var src = Path.Combine(tokenizerDir, f);
                    if (File.Exists(src)) File.Copy(src, Path.Combine(tmp, f));
                }
            ReplaceDirectory(tmp, full);
        }
        catch
        {
            try { Directory.Delete(tmp, true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>DeepSeek-R1's recommended sampling (temperature 0.6, top-p 0.95) and the model's end tokens.</summary>
    public static JsonObject DefaultGenerationConfig(ModelConfig cfg)
    {
        var o = new JsonObject { ["do_sample"] = true, ["temperature"] = 0.6, ["top_p"] = 0.95 };
        if (cfg.BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (cfg.EosTokenIds.Count == 1) o["eos_token_id"] = cfg.EosTokenIds[0];
        else if (cfg.EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(cfg.EosTokenIds.Select(i => (JsonNode)i).ToArray());
        o["transformers_version"] = "4.46.0";
        return o;
    }

    /// <summary>generation_config.json of a folder, or null when absent or malformed.</summary>
    public static JsonObject? ReadGenerationConfig(string dir)
    {
        var path = Path.Combine(dir, GenerationConfigFile);
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new R1SharpException($"{path}: malformed JSON: {e.Message}"); }
    }

    static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>Moves a finished temporary folder into place: an existing folder is moved aside first and deleted
    /// only once the new one is in place.</summary>
    static void ReplaceDirectory(string tmp, string target)
    {
        string? old = null;
        if (Directory.Exists(target))
        {
            old = target + ".old-" + Guid.NewGuid().ToString("N")[..8];
            Directory.Move(target, old);
        }
        Directory.Move(tmp, target);
        if (old != null) Directory.Delete(old, true);
    }
}
