namespace R1Sharp.Training;

/// <summary>
/// GRPO options. Each property's snake_case name is its recipe key and, where TRL has the option, TRL's name
/// (GRPOConfig / TrainingArguments), so a TRL recipe reads the same here.
/// </summary>
public sealed class GrpoConfig : IRecipe, IPeftRecipe
{
    // Model, data, output
    public string ModelNameOrPath { get; set; } = "";
    public string OutputDir { get; set; } = "runs/grpo";
    public string DatasetPath { get; set; } = "";
    public string PromptField { get; set; } = "prompt";
    public string AnswerField { get; set; } = "answer";
    /// <summary>r1_zero (DeepSeek-R1 Table 1), chat (the model's chat template) or none (the prompt as it is).</summary>
    public string PromptTemplate { get; set; } = "r1_zero";

    // Rollouts
    public int NumGenerations { get; set; } = 8;
    public int MaxCompletionLength { get; set; } = 256;
    public int MaxPromptLength { get; set; } = 512;
    public double Temperature { get; set; } = 1.0;
    public double TopP { get; set; } = 1.0;
    public int TopK { get; set; }
    /// <summary>OpenAI-compatible servers (r1 serve, SGLang) that generate the rollouts; empty = this process.</summary>
    public List<string> RolloutEndpoints { get; set; } = [];
    /// <summary>Where each update is written for the servers to load: a path they all see. Default output_dir/rollout-weights.</summary>
    public string RolloutWeightsDir { get; set; } = "";
    /// <summary>Requests in flight per rollout server (each asks for one prompt's num_generations completions).</summary>
    public int RolloutConcurrency { get; set; } = 4;
    /// <summary>Seconds one request to a rollout server may take (a whole group of completions) before the step fails.</summary>
    public double RolloutRequestTimeout { get; set; } = 600;
    /// <summary>Completions per micro-batch (TRL); prompts per step = this × gradient_accumulation_steps / num_generations.</summary>
    public int PerDeviceTrainBatchSize { get; set; } = 16;
    public int GradientAccumulationSteps { get; set; } = 1;

    // Objective
    public string LossType { get; set; } = "grpo";
    public double Beta { get; set; } = 0.0;
    public double Epsilon { get; set; } = 0.2;
    /// <summary>Upper clip bound; defaults to epsilon (DAPO recommends 0.28).</summary>
    public double? EpsilonHigh { get; set; }
    public string ScaleRewards { get; set; } = "group";
    public string ImportanceSamplingLevel { get; set; } = "token";
    public int NumIterations { get; set; } = 1;
    public bool MaskTruncatedCompletions { get; set; }
    /// <summary>DAPO dynamic sampling: drop zero-variance groups and sample more prompts to refill the batch.</summary>
    public bool DynamicSampling { get; set; }
    public int MaxDynamicSamplingRounds { get; set; } = 4;

    // The model family's own training terms (DeepSeek-V3 §2.1.2, §2.2; ignored by dense families)
    /// <summary>α of the sequence-wise expert balance loss (DeepSeek's config.json: aux_loss_alpha).</summary>
    public double AuxLossAlpha { get; set; }
    /// <summary>γ of auxiliary-loss-free balancing: each expert's bias moves by γ after every optimizer step.</summary>
    public double BiasUpdateSpeed { get; set; }
    /// <summary>λ of the multi-token-prediction loss.</summary>
    public double MtpLossWeight { get; set; }
    public Models.AuxiliaryTrainingOptions AuxiliaryTraining => new(AuxLossAlpha, BiasUpdateSpeed, MtpLossWeight);

    // Rewards
    public List<string> RewardFuncs { get; set; } = ["accuracy", "format"];
    public List<double>? RewardWeights { get; set; }
    /// <summary>DAPO's L_cache for the overlong reward.</summary>
    public int OverlongBufferLen { get; set; } = 64;
    /// <summary>The language the chain of thought should be written in, for language_consistency (en, zh, …).</summary>
    public string LanguageTarget { get; set; } = "en";
    /// <summary>open-r1's names: n-gram size and the penalty at full repetition for repetition_penalty.</summary>
    public int RepetitionNGrams { get; set; } = 3;
    public double RepetitionMaxPenalty { get; set; } = -1.0;
    /// <summary>A reward call still running after this scores 0 and is abandoned; after 3 such calls that reward is
    /// disabled for the rest of the run (RewardSet).</summary>
    public double RewardTimeoutSeconds { get; set; } = 5;

    // Code rewards (code_accuracy, code_pass_rate, code_format): open-r1's names where it has them
    /// <summary>Where programs run: local (this machine's sandbox), piston or sandbox_fusion (a service at sandbox_endpoint).</summary>
    public string CodeProvider { get; set; } = "local";
    /// <summary>The language code_format expects and a stdin/stdout problem runs in when its row does not say.</summary>
    public string CodeLanguage { get; set; } = "python";
    /// <summary>Programs run at once (0: the machine's cores for the local sandbox, 8 for a service).</summary>
    public int ParallelCodeExecPerProc { get; set; }
    public string SandboxEndpoint { get; set; } = "";
    /// <summary>namespaces (bubblewrap; the default, refused where unavailable) or rlimits (limits only: trusted code).</summary>
    public string SandboxIsolation { get; set; } = "namespaces";
    public double SandboxCpuSeconds { get; set; } = 5;
    public double SandboxTimeout { get; set; } = 10;
    public int SandboxMemoryMb { get; set; } = 1024;
    /// <summary>More languages as command lines ({ruby: "ruby {file}"}) for the local sandbox; the service's names for our
    /// languages for Piston or SandboxFusion.</summary>
    public Dictionary<string, string> CodeLanguages { get; set; } = [];

    // Optimisation
    public double LearningRate { get; set; } = 1e-6;
    public double WeightDecay { get; set; } = 0.0;
    public double AdamBeta1 { get; set; } = 0.9;
    public double AdamBeta2 { get; set; } = 0.99;
    public double AdamEpsilon { get; set; } = 1e-8;
    public double MaxGradNorm { get; set; } = 1.0;
    public string LrSchedulerType { get; set; } = "cosine";
    public int WarmupSteps { get; set; }
    public double WarmupRatio { get; set; }
    public int MaxSteps { get; set; } = 100;

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
    public int LogprobChunkSize { get; set; }

    // Bookkeeping
    public int Seed { get; set; } = 42;
    public int SaveSteps { get; set; } = 50;
    public int LoggingSteps { get; set; } = 1;
    public int NumThreads { get; set; }

    public double EffectiveEpsilonHigh => EpsilonHigh ?? Epsilon;

    /// <summary>The objective's options with their values parsed (read-only: not a recipe key).</summary>
    public LossOptions Loss => LossOptions.From(this);
    public int GenerationBatchSize => PerDeviceTrainBatchSize * GradientAccumulationSteps;
    public int PromptsPerStep => GenerationBatchSize / NumGenerations;

    /// <summary>Completions one step may generate (per_device_train_batch_size × gradient_accumulation_steps).</summary>
    public const int MaxCompletionsPerStep = 1 << 20;

    public void Validate(string source = "config")
    {
        void Check(bool ok, string message) { if (!ok) throw new R1SharpException($"{source}: {message}"); }
        Check(NumGenerations >= 2, $"num_generations must be ≥ 2 (a group needs a baseline), got {NumGenerations}");
        Check(PerDeviceTrainBatchSize >= 1 && GradientAccumulationSteps >= 1,
            $"per_device_train_batch_size and gradient_accumulation_steps must be ≥ 1, got {PerDeviceTrainBatchSize} and {GradientAccumulationSteps}");
        // A step's completions are set up together (a sequence, a generator and cache rows each): 10⁹ never started.
        Check((long)PerDeviceTrainBatchSize * GradientAccumulationSteps <= MaxCompletionsPerStep,
            $"per_device_train_batch_size × gradient_accumulation_steps ({(long)PerDeviceTrainBatchSize * GradientAccumulationSteps:N0}) is more than {MaxCompletionsPerStep:N0} completions per step");
        Check(GenerationBatchSize % NumGenerations == 0,
            $"per_device_train_batch_size × gradient_accumulation_steps ({GenerationBatchSize}) must be a multiple of num_generations ({NumGenerations})");
        try { _ = Loss; } // loss_type, scale_rewards and importance_sampling_level parsed into their enums once
        catch (R1SharpException e) { throw new R1SharpException($"{source}: {e.Message}"); }
        Check(PromptTemplate is "r1_zero" or "chat" or "none", $"prompt_template \"{PromptTemplate}\" is unknown (expected r1_zero, chat or none)");
        Check(Epsilon >= 0 && EffectiveEpsilonHigh >= 0, "epsilon and epsilon_high must be ≥ 0");
        Check(Beta >= 0, $"beta must be ≥ 0, got {Beta}");
        Check(NumIterations >= 1, $"num_iterations must be ≥ 1, got {NumIterations}");
        Check(MaxCompletionLength >= 1, $"max_completion_length must be ≥ 1, got {MaxCompletionLength}");
        Check(LearningRate > 0, $"learning_rate must be > 0, got {LearningRate}");
        Check(MaxSteps >= 1, $"max_steps must be ≥ 1, got {MaxSteps}");
        Check(RolloutConcurrency >= 1, $"rollout_concurrency must be ≥ 1, got {RolloutConcurrency}");
        Check(RolloutRequestTimeout > 0 && RolloutRequestTimeout <= 86400, $"rollout_request_timeout must be between 0 and 86400 seconds, got {RolloutRequestTimeout}");
        Check(double.IsFinite(Temperature) && Temperature >= 0, $"temperature must be a finite number ≥ 0, got {Temperature}");
        Check(TopP > 0 && TopP <= 1, $"top_p must be in (0, 1], got {TopP}");
        Check(CodeProvider is "local" or "piston" or "sandbox_fusion", $"code_provider \"{CodeProvider}\" is unknown (expected local, piston or sandbox_fusion)");
        Check(CodeProvider == "local" || SandboxEndpoint.Length > 0, $"code_provider {CodeProvider} needs sandbox_endpoint (the service's URL)");
        Check(SandboxIsolation is "namespaces" or "rlimits", $"sandbox_isolation \"{SandboxIsolation}\" is unknown (expected namespaces or rlimits)");
        Check(RewardWeights is null || RewardWeights.Count == RewardFuncs.Count,
            $"reward_weights has {RewardWeights?.Count} entries for {RewardFuncs.Count} reward_funcs");
        Check(LoggingSteps >= 1, $"logging_steps must be ≥ 1, got {LoggingSteps}");
        AdamW.CheckOptions(source, AdamBeta1, AdamBeta2, AdamEpsilon, WeightDecay);
        NativeRuntime.CheckThreads(NumThreads, "num_threads", source + ": ", zeroIsDefault: true);
        AuxiliaryTraining.Validate(source);
        PeftOptions.Validate(this, source);
        Check(!UsePeft || RolloutEndpoints.Count == 0, "use_peft with rollout_endpoints is not supported yet (the servers load full weights; serve the adapter with r1 serve --lora instead)");
    }

    public int TotalWarmup => WarmupSteps > 0 ? WarmupSteps : (int)Math.Ceiling(WarmupRatio * MaxSteps * NumIterations);
}
