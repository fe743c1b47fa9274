using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Rewards;
using R1Sharp.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training.Distill;

/// <summary>
/// On-policy distillation (Agarwal et al. 2024, GKD with λ = 1; TRL's GKDTrainer; the on-policy distillation of
/// Qwen3 and Thinking Machines' write-up): each step the student samples one completion per prompt, a teacher that
/// shares its tokenizer scores every position of it, and the loss is the per-token divergence between the two
/// next-token distributions (<see cref="DistillLoss"/>; reverse KL by default), averaged over every completion token
/// of the step. Dense supervision on the student's own mistakes, unlike SFT (the teacher's samples) or RL (one reward
/// per sequence). An <see cref="ITrainer"/>: <see cref="TrainingLoop"/> drives it, checkpoints are
/// <see cref="TrainerCheckpoint"/>'s, and samples are a function of (seed, step), so a resumed run is bit-identical.
/// With use_peft only LoRA adapters over the student's frozen base train (<see cref="PeftOptions"/>, as SFT and GRPO):
/// the student samples through base + adapter unmerged, checkpoints hold the adapter in PEFT's layout.
/// </summary>
public sealed class OnPolicyDistillTrainer : ITrainer
{
    public DistillConfig Config { get; }
    public CausalLM Policy { get; }
    public CausalLM Teacher { get; }
    public MetricsLog Metrics { get; }
    public TrainerState State { get; private set; } = new();
    public Action<string>? OnLog { get; set; }

    readonly HfTokenizer _tokenizer;
    readonly IReadOnlyList<PromptExample> _data;
    readonly Func<string, string> _template;
    readonly int[] _eos;
    readonly GenerationEngine _engine;
    readonly AdamW _optimizer;
    readonly LoraModel? _lora;
    readonly TrainingMemory _memory;
    readonly LrSchedule _schedule;
    readonly RewardFunction _accuracy = AccuracyReward.Create();
    readonly string? _tokenizerDir;

    public OnPolicyDistillTrainer(DistillConfig config, CausalLM student, CausalLM teacher, HfTokenizer tokenizer,
        IReadOnlyList<PromptExample> data, Func<string, string> template, string? tokenizerDir = null, string source = "config")
    {
        config.Validate(source);
        if (data.Count == 0) throw new R1SharpException("the distillation prompts are empty");
        Config = config; Policy = student; Teacher = teacher; _tokenizer = tokenizer; _data = data; _template = template;
        _tokenizerDir = tokenizerDir;
        if (config.NumThreads > 0) set_num_threads(config.NumThreads);
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        // use_peft: adapters on the student, its base frozen (QLoRA: quantized first); only the adapters train (a
        // target the student lacks is an error before anything is written).
        _lora = PeftOptions.Apply(student, config, source);
        _memory = PeftOptions.Memory(config);
        Directory.CreateDirectory(config.OutputDir);
        Metrics = new MetricsLog(Path.Combine(config.OutputDir, "metrics.jsonl"));
        File.WriteAllText(Metrics.Path, "");
        _eos = TextGenerator.CollectEosIds(student.Config, tokenizer, generationConfig: null).ToArray();
        if (_eos.Length == 0) throw new R1SharpException("the student has no end-of-sequence token: completions could never stop");
        _engine = new GenerationEngine(student) { ReleaseMemoryAfterPrefill = false };
        _optimizer = new AdamW(PeftOptions.Trainable(student, _lora))
        {
            Beta1 = config.AdamBeta1, Beta2 = config.AdamBeta2, Eps = config.AdamEpsilon, WeightDecay = config.WeightDecay,
        };
        _schedule = new LrSchedule(config.LearningRate, config.TotalWarmup, config.MaxSteps, config.LrSchedulerType);
    }

    /// <summary>The adapters being trained (use_peft), or null for full fine-tuning.</summary>
    public LoraModel? Adapters => _lora;

    public bool Done => State.Step >= Config.MaxSteps;
    public int MaxSteps => Config.MaxSteps;
    public int SaveSteps => Config.SaveSteps;

    /// <summary>One step: the student samples → the teacher scores → per-token divergence → update.</summary>
    public Dictionary<string, double> Step()
    {
        var clock = Stopwatch.StartNew();
        var prompts = NextPrompts(Config.RowsPerStep);
        var (promptIds, completions) = Sample(prompts);                                     // student samples
        double rolloutSeconds = clock.Elapsed.TotalSeconds;
        int tokens = completions.Sum(c => c.Length);
        double lr = _schedule.At(State.OptimizerStep);
        _optimizer.ZeroGrad();
        double loss = 0, teacherLogp = 0, studentLogp = 0;
        bool finite = true;
        using (PeftOptions.DropoutScope(_lora, Config, State.OptimizerStep)) // LoRA dropout, its masks a function of the step
        for (int start = 0; start < prompts.Count && finite; start += Config.PerDeviceTrainBatchSize)
        {
            int n = Math.Min(Config.PerDeviceTrainBatchSize, prompts.Count - start);
            using var scope = NewDisposeScope();
            using var batch = new SequenceBatch(promptIds.GetRange(start, n), completions.GetRange(start, n).Select(c => (IReadOnlyList<int>)c).ToList(), Policy.Device);
            Tensor teacherLogits, teacherTokenLogp;
            using (no_grad()) (teacherTokenLogp, teacherLogits) = batch.TokenLogProbs(Teacher);            // teacher scores
            var (logp, logits, pass) = batch.TokenLogProbs(Policy, _memory);
            var perToken = DistillLoss.PerToken(logits, teacherLogits, Config.Beta, Config.Temperature);  // divergence
            // The mean over every completion token of the step, not of the micro-batch: accumulation equals one big batch.
            using var stepTokens = Math.Max(1, tokens).ToScalar(); // held for the call (HeldScalars)
            var part = (perToken * batch.CompletionMask).sum().div(stepTokens);
            double value = part.item<float>();
            if (!double.IsFinite(value)) { finite = false; break; }
            pass.Backward(part);                                                                           // update
            loss += value;
            teacherLogp += (teacherTokenLogp * batch.CompletionMask).sum().item<float>();
            studentLogp += (logp.detach() * batch.CompletionMask).sum().item<float>();
        }
        double norm = finite ? _optimizer.GradNorm() : double.NaN;
        bool skipped = !double.IsFinite(norm);
        if (skipped) OnLog?.Invoke($"step {State.Step + 1}: non-finite {(finite ? "gradient" : "loss")}, update skipped");
        else
        {
            _optimizer.ClipGradients(norm, Config.MaxGradNorm);
            _optimizer.Step(lr);
            State.OptimizerStep++;
        }
        _optimizer.ZeroGrad();
        State.Step++;
        double accuracy = prompts.Select((p, i) => _accuracy.Score(p.Prompt, Text(completions[i]), p.Answer)).Average();
        var row = new Dictionary<string, double>
        {
            ["step"] = State.Step,
            ["loss"] = skipped ? double.NaN : loss,
            ["teacher_logp"] = teacherLogp / Math.Max(1, tokens),
            ["student_logp"] = studentLogp / Math.Max(1, tokens),
            ["accuracy"] = accuracy,
            ["completions/mean_length"] = (double)tokens / prompts.Count,
            ["completions/clipped_ratio"] = completions.Count(c => c.Length >= Config.MaxNewTokens && !_eos.Contains(c[^1])) / (double)prompts.Count,
            ["learning_rate"] = lr,
            ["grad_norm"] = norm,
            ["skipped"] = skipped ? 1 : 0,
            ["rollout_seconds"] = rolloutSeconds,
            ["update_seconds"] = clock.Elapsed.TotalSeconds - rolloutSeconds,
        };
        Metrics.Append(row);
        return row;
    }

    string Text(int[] completion) => _tokenizer.Decode(completion.Where(t => !_eos.Contains(t)));

    /// <summary>One completion per prompt from the student as it is now; row i samples with a seed that is a function
    /// of (seed, step, i) only, so a resumed run samples the same.</summary>
    (List<IReadOnlyList<int>> Prompts, List<int[]> Completions) Sample(List<PromptExample> prompts)
    {
        var ids = prompts.Select(p => (IReadOnlyList<int>)_tokenizer.Encode(_template(p.Prompt)).ToArray()).ToList();
        var options = new SamplingOptions
        {
            Temperature = (float)Config.Temperature, MaxTokens = Config.MaxNewTokens, Seed = GrpoTrainer.RolloutSeed(Config.Seed, State.Step, 0),
        };
        var outs = _engine.Generate(ids, options, _eos);
        return (ids, outs.Select(o => o.TokenIds).ToList());
    }

    List<PromptExample> NextPrompts(int count) => DataOrder.Take(_data, Config.Seed, State, count);

    public void SaveCheckpoint()
    {
        string dir = TrainerCheckpoint.Save(Config.OutputDir, State, Policy, _optimizer, Metrics, _tokenizerDir);
        OnLog?.Invoke($"checkpoint {dir}");
    }

    /// <summary>Continues from the newest checkpoint in output_dir; false when there is none.</summary>
    public bool Resume()
    {
        var state = TrainerCheckpoint.LoadLatest(Config.OutputDir, Policy, _optimizer, Metrics);
        if (state is null) return false;
        State = state;
        return true;
    }
}
