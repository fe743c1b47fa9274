namespace R1Sharp.Training.Sft;

/// <summary>
/// Supervised fine-tuning options. model_name_or_path, dataset_path and output_dir mean what they mean for
/// <c>r1 train grpo</c>; every other snake_case name is TRL's (SFTConfig / TrainingArguments), so a TRL or open-r1 SFT
/// recipe reads the same here.
/// </summary>
public sealed class SftConfig : IRecipe
{
    // Model, data, output
    public string ModelNameOrPath { get; set; } = "";
    public string OutputDir { get; set; } = "runs/sft";
    public string DatasetPath { get; set; } = "";
    /// <summary>Held-out rows (same formats) for eval_loss every eval_steps; empty = no evaluation.</summary>
    public string EvalDatasetPath { get; set; } = "";

    // Data
    /// <summary>Longest tokenized sample (or packed row); longer samples are truncated at the end, as TRL does.</summary>
    public int MaxLength { get; set; } = 1024;
    /// <summary>Several samples per row (best-fit decreasing, as TRL's packing_strategy "bfd"), positions restarting
    /// and attention confined to each sample.</summary>
    public bool Packing { get; set; }
    /// <summary>`messages` rows: loss on the assistant turns only. TRL defaults this to false; here it is true, as
    /// DeepSeek-R1's SFT trains the responses (see Sft/README.md).</summary>
    public bool AssistantOnlyLoss { get; set; } = true;
    /// <summary>`prompt`/`completion` rows: loss on the completion only (TRL: null means true).</summary>
    public bool? CompletionOnlyLoss { get; set; }

    // Optimisation
    public double LearningRate { get; set; } = 2e-5;
    public double NumTrainEpochs { get; set; } = 3;
    /// <summary>Optimizer steps; ≤ 0 derives them from num_train_epochs (TRL's -1).</summary>
    public int MaxSteps { get; set; } = -1;
    public int PerDeviceTrainBatchSize { get; set; } = 8;
    public int GradientAccumulationSteps { get; set; } = 1;
    public string LrSchedulerType { get; set; } = "linear";
    public double WarmupRatio { get; set; }
    public int WarmupSteps { get; set; }
    public double WeightDecay { get; set; }
    public double AdamBeta1 { get; set; } = 0.9;
    public double AdamBeta2 { get; set; } = 0.999;
    public double AdamEpsilon { get; set; } = 1e-8;
    public double MaxGradNorm { get; set; } = 1.0;

    // Bookkeeping
    public int Seed { get; set; } = 42;
    /// <summary>Checkpoint every this many steps (0: only at the end).</summary>
    public int SaveSteps { get; set; } = 500;
    /// <summary>Held-out loss every this many steps (0: never; needs eval_dataset_path).</summary>
    public int EvalSteps { get; set; }
    public int PerDeviceEvalBatchSize { get; set; } = 8;
    public int LoggingSteps { get; set; } = 1;
    public int NumThreads { get; set; }

    /// <summary>The model family's own training terms (DeepSeek-V3 §2.1.2, §2.2; ignored by dense families): α of the
    /// sequence-wise expert balance loss, γ of auxiliary-loss-free balancing, λ of the multi-token-prediction loss.</summary>
    public double AuxLossAlpha { get; set; }
    public double BiasUpdateSpeed { get; set; }
    public double MtpLossWeight { get; set; }
    public Models.AuxiliaryTrainingOptions AuxiliaryTraining => new(AuxLossAlpha, BiasUpdateSpeed, MtpLossWeight);

    public int RowsPerStep => checked(PerDeviceTrainBatchSize * GradientAccumulationSteps);

    /// <summary>Rows one optimizer step may take (per_device_train_batch_size × gradient_accumulation_steps).</summary>
    public const int MaxRowsPerStep = 1 << 20;

    public void Validate(string source = "config")
    {
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(MaxLength >= 2, $"max_length must be ≥ 2, got {MaxLength}");
        Check(LearningRate > 0, $"learning_rate must be > 0, got {LearningRate}");
        Check(MaxSteps > 0 || NumTrainEpochs > 0, "set max_steps or num_train_epochs to a positive number");
        Check(PerDeviceTrainBatchSize >= 1, $"per_device_train_batch_size must be ≥ 1, got {PerDeviceTrainBatchSize}");
        Check(PerDeviceEvalBatchSize >= 1, $"per_device_eval_batch_size must be ≥ 1, got {PerDeviceEvalBatchSize}");
        Check(GradientAccumulationSteps >= 1, $"gradient_accumulation_steps must be ≥ 1, got {GradientAccumulationSteps}");
        Check(LrSchedulerType is "constant" or "constant_with_warmup" or "linear" or "cosine",
            $"lr_scheduler_type \"{LrSchedulerType}\" is unknown (expected constant, constant_with_warmup, linear or cosine)");
        Check(WarmupRatio is >= 0 and <= 1, $"warmup_ratio must be in [0, 1], got {WarmupRatio}");
        Check(SaveSteps >= 0 && EvalSteps >= 0, "save_steps and eval_steps must be ≥ 0");
        // A step gathers its rows first: 10⁹ never started (and overflowed int, a .NET message naming no key).
        Check((long)PerDeviceTrainBatchSize * GradientAccumulationSteps <= MaxRowsPerStep,
            $"per_device_train_batch_size × gradient_accumulation_steps ({(long)PerDeviceTrainBatchSize * GradientAccumulationSteps:N0}) is more than {MaxRowsPerStep:N0} rows per step");
        Check(LoggingSteps >= 1, $"logging_steps must be ≥ 1, got {LoggingSteps}");
        AdamW.CheckOptions(source, AdamBeta1, AdamBeta2, AdamEpsilon, WeightDecay);
        NativeRuntime.CheckThreads(NumThreads, "num_threads", source + ": ", zeroIsDefault: true);
        AuxiliaryTraining.Validate(source);
    }

    /// <summary>Refuses micro-batches whose logits alone (rows × tokens × vocabulary, float32) exceed this machine's
    /// memory: per_device_train_batch_size 100000 ended in a libtorch allocation dump after a minute, 10⁹ never
    /// started (each step gathers its rows first).</summary>
    public void CheckMicroBatchFits(int longestRow, int vocabSize, string source = "config")
    {
        long memory = Models.ModelRegistry.MachineMemoryBytes();
        foreach (var (key, rows) in new[] { ("per_device_train_batch_size", PerDeviceTrainBatchSize), ("per_device_eval_batch_size", PerDeviceEvalBatchSize) })
        {
            double bytes = (double)rows * longestRow * vocabSize * sizeof(float);
            if (memory > 0 && bytes > memory)
                throw new R1SharpException($"{source}: {key} {rows}: the logits of one micro-batch ({rows} rows of up to {longestRow} tokens × " +
                    $"{vocabSize} vocabulary entries) would take {Models.ModelRegistry.FormatBytes(bytes)}, more than this machine's {Models.ModelRegistry.FormatBytes(memory)}");
        }
    }

    /// <summary>Optimizer steps of the run: max_steps, or num_train_epochs passes over <paramref name="rows"/> rows.</summary>
    public int TotalSteps(int rows) => MaxSteps > 0 ? MaxSteps : Math.Max(1, (int)Math.Ceiling(NumTrainEpochs * rows / RowsPerStep));

    public int TotalWarmup(int totalSteps) => WarmupSteps > 0 ? WarmupSteps : (int)Math.Ceiling(WarmupRatio * totalSteps);
}
