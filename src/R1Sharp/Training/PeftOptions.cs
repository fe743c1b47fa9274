using R1Sharp.IO;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>
/// The recipe keys for parameter-efficient training and its memory work, with TRL's names (ModelConfig: use_peft,
/// lora_r, lora_alpha, lora_dropout, lora_target_modules, use_rslora, load_in_4bit, load_in_8bit;
/// TrainingArguments: gradient_checkpointing), shared by every trainer's recipe.
/// </summary>
public interface IPeftRecipe
{
    bool UsePeft { get; set; }
    int LoraR { get; set; }
    int LoraAlpha { get; set; }
    double LoraDropout { get; set; }
    /// <summary>PEFT module names (q_proj, …) or all-linear; empty: PEFT's default for Llama/Qwen (q_proj, v_proj).</summary>
    List<string> LoraTargetModules { get; set; }
    bool UseRslora { get; set; }
    /// <summary>QLoRA: the frozen base's linear layers held in Q4_K blocks (TRL's bitsandbytes 4-bit flag).</summary>
    // Named with an underscore so that the recipe key is TRL's load_in_4bit (RecipeLoader.SnakeCase splits at capitals only).
    bool LoadIn_4bit { get; set; }
    /// <summary>The frozen base's linear layers held in Q8_0 blocks.</summary>
    bool LoadIn_8bit { get; set; }
    /// <summary>Recompute each decoder layer in backward instead of keeping its activations.</summary>
    bool GradientCheckpointing { get; set; }
    /// <summary>Rows of the vocabulary projection per chunk when computing token log-probabilities (0: all at once).</summary>
    int LogprobChunkSize { get; set; }
    int Seed { get; set; }
}

public static class PeftOptions
{
    /// <summary>The adapter configuration a recipe asks for, or null without use_peft.</summary>
    public static LoraConfig? Lora(IPeftRecipe r)
    {
        if (!r.UsePeft) return null;
        var targets = r.LoraTargetModules.Count == 0 ? ["q_proj", "v_proj"] : r.LoraTargetModules;
        // TRL turns a one-element list into a string, which PEFT reads as a regex over the full module name (or
        // all-linear). A lone plain name (q_proj) would then match nothing; it is read as the name it obviously is.
        bool pattern = targets.Count == 1 && (targets[0] == LoraConfig.AllLinear || targets[0].Any(c => "\\^$.|?*+()[]{}".Contains(c)));
        return new LoraConfig
        {
            R = r.LoraR, LoraAlpha = r.LoraAlpha, LoraDropout = r.LoraDropout, TargetModules = targets, TargetIsPattern = pattern, UseRslora = r.UseRslora,
        };
    }

    public static void Validate(IPeftRecipe r, string source)
    {
        if (Lora(r) is { } c) c.Validate(source);
        else if (r.LoadIn_4bit || r.LoadIn_8bit) throw new R1SharpException($"{source}: load_in_4bit / load_in_8bit freeze a quantized base, which trains only with use_peft: true");
        if (r.LoadIn_4bit && r.LoadIn_8bit) throw new R1SharpException($"{source}: set load_in_4bit or load_in_8bit, not both");
        if (r.LogprobChunkSize < 0) throw new R1SharpException($"{source}: logprob_chunk_size must be ≥ 0, got {r.LogprobChunkSize}");
    }

    /// <summary>Memory settings for the trainers' forward and backward passes.</summary>
    public static TrainingMemory Memory(IPeftRecipe r) => new(r.GradientCheckpointing, r.LogprobChunkSize);

    /// <summary>
    /// Prepares <paramref name="model"/> for a recipe with use_peft: the base's layer weights quantized in place when
    /// asked (QLoRA), a fresh adapter (seeded by the recipe's seed) on the targeted layers, every base parameter frozen.
    /// Returns null without use_peft (full fine-tuning).
    /// </summary>
    public static LoraModel? Apply(CausalLM model, IPeftRecipe r, string source)
    {
        if (Lora(r) is not { } config) return null;
        if (r.LoadIn_4bit || r.LoadIn_8bit) QuantizeBase(model, r.LoadIn_4bit ? GgmlType.Q4_K : GgmlType.Q8_0);
        var lora = LoraModel.Of(model);
        if (lora.Adapters.Count == 0) lora.AddFresh(config, r.Seed, source: source);
        lora.FreezeBase();
        return lora;
    }

    /// <summary>What the optimizer trains: the adapters after <see cref="Apply"/> (the base is frozen and gets no
    /// optimizer state), every parameter of the model without use_peft.</summary>
    public static IEnumerable<(string Name, Tensor Param)> Trainable(CausalLM model, LoraModel? lora) =>
        lora?.NamedParameters() ?? model.named_parameters().Select(p => (p.name, (Tensor)p.parameter));

    /// <summary>
    /// LoRA dropout on for the policy's training forward and backward passes of one optimizer step, until disposed;
    /// rollouts and the scoring of fixed policies run outside it, without dropout. The masks come from the adapters'
    /// own generator seeded from (seed, optimizer step), so a resumed run draws the same masks whatever else the
    /// process draws meanwhile. Null without adapters.
    /// </summary>
    public static IDisposable? DropoutScope(LoraModel? lora, IPeftRecipe r, long optimizerStep)
    {
        if (lora is null) return null;
        if (r.LoraDropout > 0) lora.Routing.DropoutGenerator.manual_seed(GrpoTrainer.RolloutSeed(r.Seed, optimizerStep, 15));
        lora.Routing.Training = true;
        return new EndOfScope(() => lora.Routing.Training = false);
    }

    sealed class EndOfScope(Action end) : IDisposable { public void Dispose() => end(); }

    /// <summary>
    /// A trainer's result in output_dir: the model folder (output_dir/model) and, after use_peft, the adapter in PEFT's
    /// layout (output_dir/adapter, as TRL saves it) with the model folder holding it merged, so the next stage of a
    /// pipeline loads a plain model. A quantized base (QLoRA) cannot be merged exactly: the adapter is the result.
    /// Returns the folder to hand on.
    /// </summary>
    public static string SaveResult(CausalLM model, string outputDir, string baseModel)
    {
        string modelDir = Path.Combine(outputDir, "model");
        if (model.Lora is { } lora)
        {
            string adapterDir = Path.Combine(outputDir, "adapter");
            lora.Save(adapterDir, baseModel: baseModel);
            if (model.IsQuantized) return adapterDir;
            lora.MergeAndUnload();
        }
        ModelFolder.Save(model, modelDir, baseModel);
        return modelDir;
    }

    /// <summary>Replaces the dense weight of every decoder-layer linear by its blocks in <paramref name="type"/> (ggml's
    /// quantization, as llama-quantize): the output head and embeddings stay as they are, as bitsandbytes leaves
    /// lm_head. A matrix whose rows are not whole blocks of the type falls back to Q8_0, or stays dense.</summary>
    public static void QuantizeBase(CausalLM model, GgmlType type)
    {
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not Linear { weight: { } w } linear || name == "lm_head" || name.EndsWith(".head", StringComparison.Ordinal)) continue;
            var t = linear.InFeatures % GgmlTypeInfo.Geometry(type).BlockSize == 0 ? type
                : linear.InFeatures % GgmlTypeInfo.Geometry(GgmlType.Q8_0).BlockSize == 0 ? GgmlType.Q8_0 : (GgmlType?)null;
            if (t is not { } qt) continue;
            float[] values;
            using (no_grad())
            using (var f = w.detach().to(ScalarType.Float32).cpu().contiguous()) values = f.data<float>().ToArray();
            var (bs, bb) = GgmlTypeInfo.Geometry(qt);
            var blocks = new byte[values.LongLength / bs * bb];
            int cols = (int)linear.InFeatures, rowBytes = cols / bs * bb;
            Parallel.For(0, (int)linear.OutFeatures, row =>
                GgmlQuantize.Quantize(qt, values.AsSpan(row * cols, cols), blocks.AsSpan(row * rowBytes, rowBytes)));
            linear.Attach(QuantMatrix.FromBlocks(name + ".weight", qt, (int)linear.OutFeatures, (int)linear.InFeatures, blocks));
        }
    }
}
