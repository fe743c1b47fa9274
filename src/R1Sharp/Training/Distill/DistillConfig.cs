namespace R1Sharp.Training.Distill;

/// <summary>
/// On-policy distillation options. model_name_or_path (the student), dataset_path and output_dir mean what they mean
/// for `r1 train grpo`; the rest are TRL's GKDConfig names (teacher_model_name_or_path, max_new_tokens, temperature,
/// beta) and TrainingArguments' (learning_rate, max_steps, …), so a TRL GKD recipe reads the same here. The student
/// always samples its own completions (GKD's lmbda = 1, fully on-policy). With use_peft the student trains LoRA
/// adapters over its frozen base (TRL's ModelConfig names, as in `r1 train sft|grpo`; <see cref="PeftOptions"/>).
/// </summary>
public sealed class DistillConfig : IRecipe, IPeftRecipe
{
    public string ModelNameOrPath { get; set; } = "";
    /// <summary>A local model folder with the student's tokenizer: it scores every token of the student's samples.</summary>
    public string TeacherModelNameOrPath { get; set; } = "";
    public string OutputDir { get; set; } = "runs/distill";
    /// <summary>Prompts, as `r1 sample` reads them (problem or question, answer): the answer only feeds the accuracy metric.</summary>
    public string DatasetPath { get; set; } = "";
    /// <summary>r1_zero (DeepSeek-R1 Table 1), chat (the student's chat template) or none.</summary>
    public string PromptTemplate { get; set; } = "chat";

    /// <summary>Student completion tokens at most per prompt.</summary>
    public int MaxNewTokens { get; set; } = 128;
    /// <summary>Sampling temperature of the student, and the temperature both distributions are compared at (GKD).</summary>
    public double Temperature { get; set; } = 0.9;
    /// <summary>The generalised Jensen-Shannon interpolation of GKD: 1 is the reverse KL(student ‖ teacher) (mode
    /// seeking, the on-policy distillation loss), 0 the forward KL(teacher ‖ student).</summary>
    public double Beta { get; set; } = 1.0;

    /// <summary>Prompts (one completion each) per micro-batch; a step is this × gradient_accumulation_steps.</summary>
    public int PerDeviceTrainBatchSize { get; set; } = 8;
    public int GradientAccumulationSteps { get; set; } = 1;
    public double LearningRate { get; set; } = 1e-5;
    public int MaxSteps { get; set; } = 100;
    public string LrSchedulerType { get; set; } = "linear";
    public double WarmupRatio { get; set; }
    public int WarmupSteps { get; set; }
    public double WeightDecay { get; set; }
    public double AdamBeta1 { get; set; } = 0.9;
    public double AdamBeta2 { get; set; } = 0.999;
    public double AdamEpsilon { get; set; } = 1e-8;
    public double MaxGradNorm { get; set; } = 1.0;

    // Parameter-efficient training and memory (TRL's ModelConfig / TrainingArguments names; PeftOptions)
    public bool UsePeft { get; set; }
    public int LoraR { get; set; } = 16;
    public int LoraAlpha { get; set; } = 32;
    public double LoraDropout { get; set; } = 0.05;
    public List<string> LoraTargetModules { get; set; } = [];
    public bool UseRslora { get; set; }
    public bool LoadIn_4bit { get; set; }
    public bool LoadIn_8bit { get; set; }
    public bool GradientCheckpointing { get; set; }
    /// <summary>Not for distillation: its loss compares whole next-token distributions, so the logits are needed whole.</summary>
    public int LogprobChunkSize { get; set; }

    public int Seed { get; set; } = 42;
    /// <summary>Checkpoint every this many steps (0: only at the end).</summary>
    public int SaveSteps { get; set; } = 50;
    public int LoggingSteps { get; set; } = 1;
    public int NumThreads { get; set; }

    public int RowsPerStep => PerDeviceTrainBatchSize * GradientAccumulationSteps;
    public int TotalWarmup => WarmupSteps > 0 ? WarmupSteps : (int)Math.Ceiling(WarmupRatio * MaxSteps);

    public void Validate(string source = "config")
    {
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(PromptTemplate is "r1_zero" or "chat" or "none", $"prompt_template \"{PromptTemplate}\" is unknown (expected r1_zero, chat or none)");
        Check(MaxNewTokens >= 1, $"max_new_tokens must be ≥ 1, got {MaxNewTokens}");
        Check(Temperature > 0, $"temperature must be > 0 (the loss compares distributions at it), got {Temperature}");
        Check(Beta is >= 0 and <= 1, $"beta must be in [0, 1], got {Beta}");
        Check(PerDeviceTrainBatchSize >= 1, $"per_device_train_batch_size must be ≥ 1, got {PerDeviceTrainBatchSize}");
        Check(GradientAccumulationSteps >= 1, $"gradient_accumulation_steps must be ≥ 1, got {GradientAccumulationSteps}");
        Check(LearningRate > 0, $"learning_rate must be > 0, got {LearningRate}");
        Check(MaxSteps >= 1, $"max_steps must be ≥ 1, got {MaxSteps}");
        Check(LrSchedulerType is "constant" or "constant_with_warmup" or "linear" or "cosine",
            $"lr_scheduler_type \"{LrSchedulerType}\" is unknown (expected constant, constant_with_warmup, linear or cosine)");
        Check(WarmupRatio is >= 0 and <= 1, $"warmup_ratio must be in [0, 1], got {WarmupRatio}");
        Check(SaveSteps >= 0, "save_steps must be ≥ 0");
        PeftOptions.Validate(this, source);
        Check(LogprobChunkSize == 0, $"logprob_chunk_size ({LogprobChunkSize}) does not apply to distillation: its loss compares the student's and the " +
            "teacher's whole next-token distributions, not the sampled tokens' log-probs (use gradient_checkpointing to save memory)");
    }
}
