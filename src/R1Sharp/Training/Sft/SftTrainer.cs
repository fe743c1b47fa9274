using System.Diagnostics;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training.Sft;

/// <summary>
/// Supervised fine-tuning (TRL's SFTTrainer; DeepSeek-R1's cold start and the R1-Distill recipe): next-token
/// cross-entropy on the trained tokens of each sample, averaged over every trained token of the optimizer step (as
/// transformers does across gradient accumulation), AdamW with warm-up and decay, gradient clipping. Shaped like
/// <see cref="GrpoTrainer"/> (<see cref="Step"/>, <see cref="Done"/>, <see cref="State"/>, <see cref="SaveCheckpoint"/>,
/// <see cref="Resume"/>) so one loop drives either; checkpoints are <see cref="TrainerCheckpoint"/>'s.
/// </summary>
public sealed class SftTrainer : ITrainer
{
    public SftConfig Config { get; }
    public CausalLM Policy { get; }
    public MetricsLog Metrics { get; }
    public TrainerState State { get; private set; } = new();
    /// <summary>Messages for the user: skipped steps, checkpoints.</summary>
    public Action<string>? OnLog { get; set; }
    /// <summary>Fault injection for tests: transforms each micro-batch loss before backward (e.g. into NaN).</summary>
    public Func<Tensor, Tensor>? LossTransform { get; set; }
    /// <summary>Optimizer steps of the whole run.</summary>
    public int TotalSteps { get; }
    /// <summary>The training rows: one sample each, or several when packing.</summary>
    public IReadOnlyList<IReadOnlyList<TokenizedSample>> Rows { get; }

    readonly IReadOnlyList<IReadOnlyList<TokenizedSample>> _evalRows;
    readonly AdamW _optimizer;
    readonly LoraModel? _lora;
    readonly TrainingMemory _memory;

    /// <summary>The adapters being trained (use_peft), or null for full fine-tuning.</summary>
    public LoraModel? Adapters => _lora;
    readonly LrSchedule _schedule;
    readonly string? _tokenizerDir;

    /// <param name="train">tokenized samples (<see cref="SftTokenizer"/>); longer than max_length are truncated</param>
    /// <param name="eval">held-out samples for eval_loss every eval_steps (optional)</param>
    /// <param name="source">the recipe's path, named in errors</param>
    public SftTrainer(SftConfig config, CausalLM policy, IReadOnlyList<TokenizedSample> train, IReadOnlyList<TokenizedSample>? eval = null,
        string? tokenizerDir = null, string source = "config")
    {
        config.Validate(source);
        Config = config; Policy = policy; _tokenizerDir = tokenizerDir;
        Rows = MakeRows(train, config);
        if (Rows.Count == 0) throw new R1SharpException("the SFT dataset has no sample with a token to train on");
        _evalRows = eval is null ? [] : MakeRows(eval, config);
        config.CheckMicroBatchFits(Rows.Concat(_evalRows).Max(r => r.Sum(s => s.Length)), policy.Config.VocabSize, source);
        if (config.NumThreads > 0) set_num_threads(config.NumThreads);
        Directory.CreateDirectory(config.OutputDir);
        Metrics = new MetricsLog(Path.Combine(config.OutputDir, "metrics.jsonl"));
        File.WriteAllText(Metrics.Path, "");
        _lora = PeftOptions.Apply(policy, config, "config"); // use_peft: adapters train, the base is frozen
        _memory = PeftOptions.Memory(config);
        _optimizer = new AdamW(PeftOptions.Trainable(policy, _lora))
        {
            Beta1 = config.AdamBeta1, Beta2 = config.AdamBeta2, Eps = config.AdamEpsilon, WeightDecay = config.WeightDecay,
        };
        TotalSteps = config.TotalSteps(Rows.Count);
        _schedule = new LrSchedule(config.LearningRate, config.TotalWarmup(TotalSteps), TotalSteps, config.LrSchedulerType);
        policy.AuxiliaryTraining = config.AuxiliaryTraining; // the family's own terms (Policy.Training)
    }

    /// <summary>Truncated to max_length, without samples that train nothing, packed when asked.</summary>
    public static List<IReadOnlyList<TokenizedSample>> MakeRows(IReadOnlyList<TokenizedSample> samples, SftConfig config)
    {
        var kept = samples.Select(s => s.Truncate(config.MaxLength)).Where(s => s.LossTokens > 0).ToList();
        if (!config.Packing) return kept.Select(s => (IReadOnlyList<TokenizedSample>)[s]).ToList();
        return Packing.BestFitDecreasing(kept.Select(s => s.Length).ToList(), config.MaxLength)
            .Select(row => (IReadOnlyList<TokenizedSample>)row.Select(i => kept[i]).ToList()).ToList();
    }

    public bool Done => State.Step >= TotalSteps;

    public int MaxSteps => TotalSteps;
    public int SaveSteps => Config.SaveSteps;

    /// <summary>Trains to the last step (from a checkpoint after <see cref="Resume"/>), saving every save_steps and at
    /// the end: <see cref="TrainingLoop.Run"/>.</summary>
    public void Train(Action<Dictionary<string, double>>? onStep = null, Func<int, bool>? shouldStop = null) => TrainingLoop.Run(this, onStep, shouldStop);

    /// <summary>One optimizer step over per_device_train_batch_size × gradient_accumulation_steps rows.</summary>
    public Dictionary<string, double> Step()
    {
        var clock = Stopwatch.StartNew();
        Memory.PeakMemory.Reset();
        var rows = NextRows(Config.RowsPerStep);
        int lossTokens = rows.Sum(r => r.Sum(s => s.LossTokens));
        double lr = _schedule.At(State.OptimizerStep);
        _optimizer.ZeroGrad();
        double loss = 0;
        long correct = 0, tokens = 0;
        bool finite = true;
        using (PeftOptions.DropoutScope(_lora, Config, State.OptimizerStep)) // LoRA dropout, its masks a function of the step
        foreach (var micro in rows.Chunk(Config.PerDeviceTrainBatchSize))
        {
            using var scope = NewDisposeScope();
            using var batch = new SftBatch(micro, Policy.Device);
            tokens += batch.Tokens;
            var (sum, right, pass) = batch.Loss(Policy, _memory);
            // The mean over every trained token of the step, not of the micro-batch: accumulation then equals one big batch.
            using var stepTokens = lossTokens.ToScalar(); // held for the calls (HeldScalars)
            using var share = ((double)micro.Length / rows.Count).ToScalar();
            var part = sum.div(stepTokens);
            if (Policy.Training.TakeLoss() is { } aux) part = Ops.Add(part, aux.mul(share));
            part = LossTransform?.Invoke(part) ?? part;
            double value = part.item<float>();
            if (!double.IsFinite(value)) { finite = false; break; }
            pass.Backward(part);
            loss += value; correct += right;
        }
        double norm = finite ? _optimizer.GradNorm() : double.NaN;
        bool skipped = !double.IsFinite(norm);
        if (skipped)
        {
            // A NaN/∞ loss or gradient: keep the weights, go on (the run must survive it).
            OnLog?.Invoke($"step {State.Step + 1}: non-finite {(finite ? "gradient" : "loss")}, update skipped");
        }
        else
        {
            _optimizer.ClipGradients(norm, Config.MaxGradNorm);
            _optimizer.Step(lr);
            Policy.Training.AfterOptimizerStep();
            State.OptimizerStep++;
        }
        _optimizer.ZeroGrad();
        State.Step++;
        double seconds = clock.Elapsed.TotalSeconds;
        double before = Metrics.Rows.Count > 0 && Metrics.Rows[^1].TryGetValue("num_tokens", out var n) ? n : 0;
        // Names as TRL's SFTTrainer logs them (loss, mean_token_accuracy, num_tokens, learning_rate, grad_norm, epoch).
        var row = new Dictionary<string, double>
        {
            ["step"] = State.Step,
            ["loss"] = skipped ? double.NaN : loss,
            ["mean_token_accuracy"] = skipped ? double.NaN : (double)correct / lossTokens,
            ["num_tokens"] = before + tokens,
            ["loss_tokens"] = lossTokens,
            ["learning_rate"] = lr,
            ["grad_norm"] = norm,
            ["epoch"] = State.Epoch + (double)State.Cursor / Rows.Count,
            ["skipped"] = skipped ? 1 : 0,
            ["tokens_per_second"] = tokens / seconds,
            ["update_seconds"] = seconds,
            ["memory/step_peak_gb"] = Memory.PeakMemory.PeakGb(),
        };
        if (_evalRows.Count > 0 && Config.EvalSteps > 0 && (State.Step % Config.EvalSteps == 0 || Done))
        {
            var (evalLoss, evalAccuracy) = Evaluate();
            row["eval_loss"] = evalLoss;
            row["eval_mean_token_accuracy"] = evalAccuracy;
        }
        foreach (var (key, value) in Policy.Training.TakeMetrics()) row[key] = value;
        Metrics.Append(row);
        return row;
    }

    /// <summary>Mean cross-entropy and token accuracy over the held-out rows (no gradient).</summary>
    public (double Loss, double Accuracy) Evaluate()
    {
        using var _ = no_grad();
        double sum = 0;
        long correct = 0, count = 0;
        foreach (var micro in _evalRows.Chunk(Config.PerDeviceEvalBatchSize))
        {
            using var scope = NewDisposeScope();
            using var batch = new SftBatch(micro, Policy.Device);
            var (s, right) = batch.Loss(Policy);
            sum += s.item<float>(); correct += right; count += batch.LossTokens;
        }
        return count == 0 ? (double.NaN, double.NaN) : (sum / count, (double)correct / count);
    }

    List<IReadOnlyList<TokenizedSample>> NextRows(int count) => DataOrder.Take(Rows, Config.Seed, State, count);

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
