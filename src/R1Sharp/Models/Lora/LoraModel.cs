using R1Sharp.IO;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models.Lora;

/// <summary>
/// LoRA adapters over a causal LM, as PEFT's LoraModel: each targeted <see cref="Linear"/> carries a
/// <see cref="LoraLayer"/> whose update is added to its product, the base weights untouched (no copy, no merge), so
/// switching adapters off gives the base model back exactly (GRPO's reference policy, as TRL does with PEFT). Several
/// adapters may be loaded over one base and routed per row (a server choosing by the request's model). Parameter names
/// are PEFT's saved keys ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), so adapters read and
/// write PEFT's adapter_model.safetensors without a mapping table.
/// </summary>
public sealed class LoraModel : IDisposable
{
    public const string WeightsFile = "adapter_model.safetensors";
    const string Prefix = "base_model.model.";

    public CausalLM Model { get; }
    public LoraRouting Routing { get; } = new();
    /// <summary>The loaded adapters: name and configuration, by index.</summary>
    public List<(string Name, LoraConfig Config)> Adapters { get; } = [];
    readonly Dictionary<string, Linear> linears;
    readonly Dictionary<string, LoraLayer> layers = new(StringComparer.Ordinal);

    LoraModel(CausalLM model)
    {
        Model = model;
        linears = model.named_modules().Where(m => m.module is Linear).ToDictionary(m => m.name, m => (Linear)m.module, StringComparer.Ordinal);
    }

    /// <summary>The model's adapters, attached on first use.</summary>
    public static LoraModel Of(CausalLM model) => model.Lora ??= new LoraModel(model);

    /// <summary>Linear layers that all-linear leaves out: the output heads (PEFT excludes the model's output layer), and
    /// DeepSeek's kv_b_proj, which the absorbed attention reads as a matrix rather than through its product.</summary>
    static bool IsOutputHead(string name) => name == "lm_head" || name.EndsWith(".shared_head.head", StringComparison.Ordinal);
    static bool ReadDirectly(string name) => name.EndsWith(".kv_b_proj", StringComparison.Ordinal);

    /// <summary>The modules <paramref name="config"/> targets in this model; none is an error naming what was asked.</summary>
    public IReadOnlyList<string> TargetsOf(LoraConfig config, string source)
    {
        var names = linears.Keys.Where(n => config.Targets(n, IsOutputHead(n)) && !(ReadDirectly(n) && IsAllLinear(config))).ToList();
        if (names.Count == 0)
            throw new R1SharpException($"{source}: lora_target_modules {Describe(config)} matches no linear layer of this {Model.Config.ModelType} model " +
                $"(its layers are named {string.Join(", ", linears.Keys.Select(n => n.Split('.')[^1]).Distinct())})");
        // A listed name that matches nothing is a typo, not a smaller adapter (PEFT says the same for a list).
        if (!config.TargetIsPattern)
            foreach (var t in config.TargetModules)
                if (!linears.Keys.Any(n => n == t || n.EndsWith("." + t, StringComparison.Ordinal)))
                    throw new R1SharpException($"{source}: target module \"{t}\" is not a linear layer of this {Model.Config.ModelType} model " +
                        $"(expected some of {string.Join(", ", linears.Keys.Select(n => n.Split('.')[^1]).Distinct())})");
        if (names.FirstOrDefault(ReadDirectly) is { } direct)
            throw new R1SharpException($"{source}: {direct} cannot carry an adapter (the absorbed attention reads it as a matrix); leave kv_b_proj out of lora_target_modules");
        return names;
    }

    static bool IsAllLinear(LoraConfig c) => c.TargetIsPattern && c.TargetModules is [LoraConfig.AllLinear];
    static string Describe(LoraConfig c) => c.TargetIsPattern && c.TargetModules.Count == 1 ? $"\"{c.TargetModules[0]}\"" : "[" + string.Join(", ", c.TargetModules) + "]";

    /// <summary>A fresh adapter (B = 0) on the layers <paramref name="config"/> targets; returns its index.</summary>
    public int AddFresh(LoraConfig config, long seed, string name = "default", string source = "lora")
    {
        config.Validate(source);
        var targets = TargetsOf(config, source);
        var gen = new Generator((ulong)seed);
        var adapters = targets.ToDictionary(n => n, n => LoraAdapter.Fresh(linears[n].InFeatures, linears[n].OutFeatures, config, gen, Model.Device));
        return Add(name, config, adapters);
    }

    /// <summary>Loads a PEFT adapter folder (adapter_config.json, adapter_model.safetensors); returns its index. Keys
    /// or shapes that do not fit this model (an adapter trained on another base) are an error naming the tensor.</summary>
    public int Load(string dir, string? name = null)
    {
        if (!Directory.Exists(dir)) throw new R1SharpException($"{dir}: adapter folder not found");
        var config = LoraConfig.Read(Path.Combine(dir, LoraConfig.FileName));
        string weights = Path.Combine(dir, WeightsFile);
        if (!File.Exists(weights)) throw new R1SharpException($"{dir}: no {WeightsFile} in the adapter folder");
        using var f = SafetensorsFile.Open(weights);
        var adapters = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
        try
        {
            foreach (var key in f.Entries.Keys.Where(k => k.EndsWith(".lora_A.weight", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                string module = ModuleOf(key, weights);
                if (!linears.TryGetValue(module, out var linear))
                    throw new R1SharpException($"{weights}: tensor \"{key}\" is for module {module}, which this {Model.Config.ModelType} model does not have (an adapter for another base?)");
                string bKey = key[..^".lora_A.weight".Length] + ".lora_B.weight";
                if (!f.Entries.ContainsKey(bKey)) throw new R1SharpException($"{weights}: \"{key}\" has no matching \"{bKey}\"");
                var a = f.Read(key, ScalarType.Float32);
                var b = f.Read(bKey, ScalarType.Float32);
                if (a.dim() != 2 || b.dim() != 2 || a.size(0) != config.R || b.size(1) != config.R || a.size(1) != linear.InFeatures || b.size(0) != linear.OutFeatures)
                    throw new R1SharpException($"{weights}: \"{key}\" {SafetensorsEntry.FormatShape(a.shape)} and lora_B {SafetensorsEntry.FormatShape(b.shape)} do not fit " +
                        $"{module} [{linear.OutFeatures}, {linear.InFeatures}] at r = {config.R} (an adapter for another base?)");
                adapters[module] = new LoraAdapter(a.to(Model.Device).requires_grad_(true).DetachFromDisposeScope(),
                    b.to(Model.Device).requires_grad_(true).DetachFromDisposeScope(), config.Scaling, config.LoraDropout);
            }
            foreach (var key in f.Entries.Keys)
                if (!key.EndsWith(".lora_A.weight", StringComparison.Ordinal) && !key.EndsWith(".lora_B.weight", StringComparison.Ordinal))
                    throw new R1SharpException($"{weights}: tensor \"{key}\" is not a LoRA weight (only lora_A/lora_B are supported)");
            if (adapters.Count == 0) throw new R1SharpException($"{weights}: no lora_A weights");
        }
        catch
        {
            foreach (var a in adapters.Values) a.Dispose();
            throw;
        }
        return Add(name ?? Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), config, adapters);
    }

    /// <summary>PEFT's saved key "base_model.model.{module}.lora_A.weight" (older PEFT wrote ".lora_A.default.weight" in
    /// memory only; both are read).</summary>
    static string ModuleOf(string key, string file)
    {
        if (!key.StartsWith(Prefix, StringComparison.Ordinal)) throw new R1SharpException($"{file}: tensor \"{key}\" does not start with \"{Prefix}\" (not a PEFT adapter)");
        string module = key[Prefix.Length..^".lora_A.weight".Length];
        return module.EndsWith(".default", StringComparison.Ordinal) ? module[..^".default".Length] : module;
    }

    int Add(string name, LoraConfig config, Dictionary<string, LoraAdapter> adapters)
    {
        int index = Adapters.Count;
        Adapters.Add((name, config));
        foreach (var (module, adapter) in adapters)
        {
            if (!layers.TryGetValue(module, out var layer))
            {
                layer = new LoraLayer(module, Routing);
                layers[module] = layer;
                linears[module].Lora = layer;
            }
            while (layer.Adapters.Count < index) layer.Adapters.Add(null!);
            layer.Adapters.Add(adapter);
        }
        // Layers this adapter does not target hold a null slot, so an index means the same adapter everywhere.
        foreach (var layer in layers.Values) while (layer.Adapters.Count <= index) layer.Adapters.Add(null!);
        Routing.Active ??= index;
        return index;
    }

    /// <summary>Index of the adapter named <paramref name="name"/>, or −1.</summary>
    public int IndexOf(string name) => Adapters.FindIndex(a => a.Name == name);

    /// <summary>The adapter's tensors by PEFT's saved key names, in module order (what the optimizer and checkpoints see).</summary>
    public IEnumerable<(string Name, Tensor Param)> NamedParameters(int adapter = 0)
    {
        foreach (var (module, layer) in layers.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (layer.Adapters[adapter] is not { } a) continue;
            yield return (Prefix + module + ".lora_A.weight", a.A);
            yield return (Prefix + module + ".lora_B.weight", a.B);
        }
    }

    /// <summary>Freezes every base parameter (no gradient, so no optimizer state either): only adapters train.</summary>
    public void FreezeBase()
    {
        foreach (var p in Model.parameters()) p.requires_grad = false;
    }

    /// <summary>Routes every row through no adapter until disposed: the base model (GRPO's π_ref).</summary>
    public IDisposable Disabled()
    {
        var (active, perRow) = (Routing.Active, Routing.PerRow);
        Routing.Active = -1; Routing.PerRow = null;
        return new Restore(() => { Routing.Active = active; Routing.PerRow = perRow; });
    }

    sealed class Restore(Action undo) : IDisposable { public void Dispose() => undo(); }

    /// <summary>Writes adapter <paramref name="adapter"/> as PEFT does (adapter_config.json, adapter_model.safetensors
    /// in float32), under a temporary name renamed into place.</summary>
    public void Save(string dir, int adapter = 0, string? baseModel = null)
    {
        string full = Path.GetFullPath(dir).TrimEnd('/');
        string tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(tmp);
        try
        {
            var config = Adapters[adapter].Config with { BaseModelNameOrPath = baseModel ?? Adapters[adapter].Config.BaseModelNameOrPath };
            File.WriteAllText(Path.Combine(tmp, LoraConfig.FileName),
                config.ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
            SafetensorsWriter.Write(Path.Combine(tmp, WeightsFile), NamedParameters(adapter).Select(p => KeyValuePair.Create(p.Name, p.Param)),
                new Dictionary<string, string> { ["format"] = "pt" });
            string? old = null;
            if (Directory.Exists(full)) { old = full + ".old-" + Guid.NewGuid().ToString("N")[..8]; Directory.Move(full, old); }
            Directory.Move(tmp, full);
            if (old != null) Directory.Delete(old, true);
        }
        catch
        {
            try { Directory.Delete(tmp, true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Reads an adapter's tensors back in place (a checkpoint being resumed).</summary>
    public void LoadInto(string dir, int adapter = 0)
    {
        using var f = SafetensorsFile.Open(Path.Combine(dir, WeightsFile));
        foreach (var (name, p) in NamedParameters(adapter)) f.ReadInto(name, p);
    }

    /// <summary>W ← W + scaling·B·A for adapter <paramref name="adapter"/> on every layer it targets, then every adapter
    /// is removed: the model is a plain model again (PEFT's merge_and_unload). Dense bases only.</summary>
    public void MergeAndUnload(int adapter = 0)
    {
        using (no_grad())
            foreach (var (module, layer) in layers)
            {
                if (layer.Adapters[adapter] is not { } a) continue;
                var w = linears[module].weight ?? throw new R1SharpException($"{module}: a quantized base cannot be merged into (merge into the float model instead)");
                using var delta = a.DeltaWeight();
                using var sum = Ops.AddInPlace(w.to(ScalarType.Float32), delta);
                w.copy_(sum);
            }
        Unload();
    }

    /// <summary>Removes every adapter from the model's layers.</summary>
    public void Unload()
    {
        foreach (var (module, layer) in layers)
        {
            linears[module].Lora = null;
            foreach (var a in layer.Adapters) a?.Dispose();
        }
        layers.Clear();
        Adapters.Clear();
        Routing.Active = null; Routing.PerRow = null;
        Model.Lora = null;
    }

    public void Dispose() => Unload();
}
