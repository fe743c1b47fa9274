using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace R1Sharp.Models.Lora;

/// <summary>
/// A LoRA adapter's configuration, as PEFT's LoraConfig writes adapter_config.json (peft_type "LORA", task_type
/// "CAUSAL_LM"): rank r, lora_alpha, lora_dropout, target_modules (module names matched as PEFT does, or "all-linear"),
/// use_rslora. The scaling of ΔW = B·A is lora_alpha / r, or lora_alpha / √r with rsLoRA (Kalajdzievski 2023).
/// </summary>
public sealed record LoraConfig
{
    public const string FileName = "adapter_config.json";
    public const string AllLinear = "all-linear";

    public int R { get; init; } = 8;
    public double LoraAlpha { get; init; } = 16;
    public double LoraDropout { get; init; }
    /// <summary>Module names (a module matches when its name is one of them or ends with "." + one), or one string:
    /// "all-linear" (every linear layer but the output head, as PEFT) or a regular expression the whole name must match.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [AllLinear];
    /// <summary>Whether target_modules was written as one string (a regex or all-linear) rather than a list.</summary>
    public bool TargetIsPattern { get; init; } = true;
    public bool UseRslora { get; init; }
    public string? BaseModelNameOrPath { get; init; }

    public double Scaling => UseRslora ? LoraAlpha / Math.Sqrt(R) : LoraAlpha / R;

    public void Validate(string source)
    {
        if (R < 1) throw new R1SharpException($"{source}: lora_r must be a positive integer, got {R}");
        if (!double.IsFinite(LoraAlpha) || LoraAlpha <= 0) throw new R1SharpException($"{source}: lora_alpha must be > 0, got {LoraAlpha}");
        if (!(LoraDropout >= 0 && LoraDropout < 1)) throw new R1SharpException($"{source}: lora_dropout must be in [0, 1), got {LoraDropout}");
        if (TargetModules.Count == 0) throw new R1SharpException($"{source}: lora_target_modules is empty (list module names such as q_proj, or all-linear)");
    }

    /// <summary>PEFT's matching (peft.tuners.tuners_utils.check_target_module_exists): a string is a full-match regex,
    /// a list matches exact names or "." + name suffixes; all-linear is every linear layer except the output head.</summary>
    public bool Targets(string moduleName, bool isOutputHead)
    {
        if (TargetIsPattern && TargetModules.Count == 1)
        {
            if (TargetModules[0] == AllLinear) return !isOutputHead;
            return Regex.IsMatch(moduleName, "^(?:" + TargetModules[0] + ")$");
        }
        foreach (var t in TargetModules)
            if (moduleName == t || moduleName.EndsWith("." + t, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>adapter_config.json with PEFT's keys (PEFT 0.13's LoraConfig fields that mean something here; the
    /// rest at PEFT's defaults, so PEFT and vLLM read it).</summary>
    public JsonObject ToJson() => new()
    {
        ["alpha_pattern"] = new JsonObject(),
        ["auto_mapping"] = null,
        ["base_model_name_or_path"] = BaseModelNameOrPath,
        ["bias"] = "none",
        ["fan_in_fan_out"] = false,
        ["inference_mode"] = true,
        ["init_lora_weights"] = true,
        ["layers_pattern"] = null,
        ["layers_to_transform"] = null,
        ["lora_alpha"] = LoraAlpha,
        ["lora_dropout"] = LoraDropout,
        ["modules_to_save"] = null,
        ["peft_type"] = "LORA",
        ["r"] = R,
        ["rank_pattern"] = new JsonObject(),
        ["revision"] = null,
        ["target_modules"] = TargetIsPattern && TargetModules.Count == 1 ? JsonValue.Create(TargetModules[0])
            : new JsonArray(TargetModules.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
        ["task_type"] = "CAUSAL_LM",
        ["use_dora"] = false,
        ["use_rslora"] = UseRslora,
    };

    /// <summary>Reads adapter_config.json; options this implementation does not have (DoRA, per-layer ranks, biases,
    /// extra saved modules, another PEFT method) are refused by name rather than ignored.</summary>
    public static LoraConfig Read(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"{path}: not found (an adapter folder holds {FileName} and adapter_model.safetensors)");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new R1SharpException($"{path}: expected a JSON object"); }
        catch (JsonException e) { throw new R1SharpException($"{path}: malformed JSON: {e.Message}"); }
        string? Str(string k) => o[k] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        double Num(string k, double d) => o[k] is JsonValue v ? (v.TryGetValue(out double x) ? x : v.TryGetValue(out int i) ? i : d) : d;
        bool Flag(string k) => o[k] is JsonValue v && v.TryGetValue(out bool b) && b;
        if (Str("peft_type") is { } pt && pt != "LORA") throw new R1SharpException($"{path}: peft_type \"{pt}\" is not supported (expected LORA)");
        if (Flag("use_dora")) throw new R1SharpException($"{path}: use_dora is not supported");
        if (Flag("fan_in_fan_out")) throw new R1SharpException($"{path}: fan_in_fan_out is not supported (GPT-2's Conv1D layout)");
        if (Str("bias") is { } bias && bias != "none") throw new R1SharpException($"{path}: bias \"{bias}\" is not supported (expected none)");
        foreach (var k in new[] { "rank_pattern", "alpha_pattern" })
            if (o[k] is JsonObject p && p.Count > 0) throw new R1SharpException($"{path}: {k} (per-layer ranks) is not supported");
        if (o["modules_to_save"] is JsonArray m && m.Count > 0) throw new R1SharpException($"{path}: modules_to_save is not supported");
        var targets = o["target_modules"];
        var list = targets switch
        {
            JsonArray a => a.Select(x => x?.GetValue<string>() ?? "").ToList(),
            JsonValue v when v.TryGetValue(out string? s) => [s],
            _ => throw new R1SharpException($"{path}: target_modules is missing"),
        };
        var cfg = new LoraConfig
        {
            R = (int)Num("r", 8), LoraAlpha = Num("lora_alpha", 8), LoraDropout = Num("lora_dropout", 0),
            TargetModules = list, TargetIsPattern = targets is JsonValue, UseRslora = Flag("use_rslora"),
            BaseModelNameOrPath = Str("base_model_name_or_path"),
        };
        cfg.Validate(path);
        return cfg;
    }
}
