using R1Sharp.Training;

namespace R1Sharp.Tasks;

/// <summary>
/// The embedded task's pipeline stages as recipe keys: <c>zero</c> (the whole `r1 zero` run: a base pre-trained from
/// scratch, then GRPO; its model, its prompts train.jsonl and heldout.jsonl) and <c>pretrain</c> (only the base, "pre-
/// trained the same way", e.g. a smaller student). Unset keys keep <see cref="ZeroOptions"/>' defaults. Names follow
/// config.json (hidden_size, num_hidden_layers, …) and `r1 zero`'s options; the GRPO run of a zero stage takes TRL's
/// adapter keys (use_peft, lora_r, …: <see cref="PeftOptions"/>), as `r1 zero --lora-r` does.
/// </summary>
/// <param name="pretrainOnly">a pretrain stage: a model trained from scratch, with no GRPO for adapters to apply to</param>
public sealed class ZeroStageOptions(bool pretrainOnly = false) : IRecipe
{
    string IRecipe.DatasetPath { get => ""; set { } }

    public int? Seed { get; set; }
    public int? Threads { get; set; }
    public int? Digits { get; set; }
    public double? StepsFraction { get; set; }
    public string? DirectAnswers { get; set; }
    public int? RlPrompts { get; set; }
    public int? HiddenSize { get; set; }
    public int? NumHiddenLayers { get; set; }
    public int? NumAttentionHeads { get; set; }
    public int? NumKeyValueHeads { get; set; }
    public int? IntermediateSize { get; set; }
    public int? PretrainSteps { get; set; }
    public int? PretrainBatchSize { get; set; }
    public double? PretrainLearningRate { get; set; }
    public int? GrpoSteps { get; set; }
    public int? EvalProblems { get; set; }

    // The GRPO run's adapters and memory work (GrpoConfig's keys of the same names; unset: its defaults)
    public bool? UsePeft { get; set; }
    public int? LoraR { get; set; }
    public int? LoraAlpha { get; set; }
    public double? LoraDropout { get; set; }
    public List<string>? LoraTargetModules { get; set; }
    public bool? UseRslora { get; set; }
    public bool? LoadIn_4bit { get; set; }
    public bool? LoadIn_8bit { get; set; }
    public bool? GradientCheckpointing { get; set; }
    public int? LogprobChunkSize { get; set; }

    bool AnyPeftKey => UsePeft is not null || LoraR is not null || LoraAlpha is not null || LoraDropout is not null || LoraTargetModules is not null
        || UseRslora is not null || LoadIn_4bit is not null || LoadIn_8bit is not null || GradientCheckpointing is not null || LogprobChunkSize is not null;

    public void Validate(string source)
    {
        var o = ToOptions("x");
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(o.Digits is >= 1 and <= 9, $"digits must be 1..9, got {o.Digits}");
        Check(o.DirectAnswers is "estimate" or "exact", $"direct_answers \"{o.DirectAnswers}\" is unknown (expected estimate or exact)");
        Check(o.StepsFraction is >= 0 and <= 1, $"steps_fraction must be in [0, 1], got {o.StepsFraction}");
        Check(o.HiddenSize >= 8 && o.Heads >= 1 && o.HiddenSize % o.Heads == 0, $"hidden_size ({o.HiddenSize}) must be a multiple of num_attention_heads ({o.Heads})");
        Check(o.KvHeads >= 1 && o.Heads % o.KvHeads == 0, $"num_attention_heads ({o.Heads}) must be a multiple of num_key_value_heads ({o.KvHeads})");
        Check(o.Layers >= 1 && o.IntermediateSize >= 1, "num_hidden_layers and intermediate_size must be ≥ 1");
        Check(o.Pretrain.Steps >= 1 && o.Pretrain.BatchSize >= 1 && o.Pretrain.LearningRate > 0, "pretrain_steps, pretrain_batch_size and pretrain_learning_rate must be positive");
        Check(o.Grpo.MaxSteps >= 1 && o.RlPrompts >= 1 && o.EvalProblems >= 1, "grpo_steps, rl_prompts and eval_problems must be ≥ 1");
        Check(!(pretrainOnly && AnyPeftKey), "a pretrain stage trains a model from scratch, all of it: use_peft, lora_* and the memory keys apply to zero and grpo stages");
        PeftOptions.Validate(o.Grpo, source);
    }

    /// <summary>The `r1 zero` options these keys describe, writing into <paramref name="outputDir"/>.</summary>
    public ZeroOptions ToOptions(string outputDir)
    {
        var d = new ZeroOptions();
        var o = d with
        {
            OutputDir = outputDir, Resume = true, Seed = Seed ?? d.Seed, Threads = Threads ?? d.Threads, Digits = Digits ?? d.Digits,
            StepsFraction = StepsFraction ?? d.StepsFraction, DirectAnswers = DirectAnswers ?? d.DirectAnswers, RlPrompts = RlPrompts ?? d.RlPrompts,
            HiddenSize = HiddenSize ?? d.HiddenSize, Layers = NumHiddenLayers ?? d.Layers, Heads = NumAttentionHeads ?? d.Heads,
            KvHeads = NumKeyValueHeads ?? d.KvHeads, IntermediateSize = IntermediateSize ?? d.IntermediateSize,
            EvalProblems = EvalProblems ?? d.EvalProblems,
            Pretrain = d.Pretrain with
            {
                Steps = PretrainSteps ?? d.Pretrain.Steps, BatchSize = PretrainBatchSize ?? d.Pretrain.BatchSize,
                LearningRate = PretrainLearningRate ?? d.Pretrain.LearningRate,
            },
        };
        if (GrpoSteps is { } g) o.Grpo.MaxSteps = g;
        var grpo = o.Grpo;
        grpo.UsePeft = UsePeft ?? grpo.UsePeft; grpo.LoraR = LoraR ?? grpo.LoraR; grpo.LoraAlpha = LoraAlpha ?? grpo.LoraAlpha;
        grpo.LoraDropout = LoraDropout ?? grpo.LoraDropout; grpo.LoraTargetModules = LoraTargetModules ?? grpo.LoraTargetModules;
        grpo.UseRslora = UseRslora ?? grpo.UseRslora; grpo.LoadIn_4bit = LoadIn_4bit ?? grpo.LoadIn_4bit; grpo.LoadIn_8bit = LoadIn_8bit ?? grpo.LoadIn_8bit;
        grpo.GradientCheckpointing = GradientCheckpointing ?? grpo.GradientCheckpointing; grpo.LogprobChunkSize = LogprobChunkSize ?? grpo.LogprobChunkSize;
        return o;
    }
}
