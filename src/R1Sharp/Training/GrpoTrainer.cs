using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Rewards;
using R1Sharp.Text;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>
/// Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath §4; DeepSeek-R1 §2.2.1) with verifiable
/// rewards. By default in one process: the policy that the optimizer updates is the model the rollouts sample from, so
/// no weight sync is needed; with an <see cref="EndpointRolloutSource"/> the rollouts come from inference servers that
/// load each update from shared storage. <see cref="Step"/> is the whole algorithm on one screen.
/// </summary>
public sealed class GrpoTrainer : ITrainer, IDisposable
{
    public GrpoConfig Config { get; }
    public CausalLM Policy { get; }
    public HfTokenizer Tokenizer { get; }
    public RewardSet Rewards { get; }
    public MetricsLog Metrics { get; }
    public TrainerState State { get; private set; } = new();
    /// <summary>Messages for the user: skipped steps, failing rewards, checkpoints.</summary>
    public Action<string>? OnLog { get; set; }
    /// <summary>Fault injection for tests: transforms each micro-batch loss before backward (e.g. into NaN).</summary>
    public Func<Tensor, Tensor>? LossTransform { get; set; }

    readonly IReadOnlyList<PromptExample> _data;
    readonly LossOptions _loss;
    readonly Func<string, string> _template;
    readonly CausalLM? _reference;
    readonly LoraModel? _lora;
    readonly TrainingMemory _memory;
    readonly AdamW _optimizer;
    readonly LrSchedule _schedule;
    readonly IRolloutSource _rollouts;
    readonly bool _ownsRollouts;
    readonly RolloutLog _rolloutLog;
    bool _started;
    readonly int[] _eos;
    readonly string? _tokenizerDir;

    public GrpoTrainer(GrpoConfig config, CausalLM policy, HfTokenizer tokenizer, RewardSet rewards,
        IReadOnlyList<PromptExample> data, Func<string, string> template, string? tokenizerDir = null, IRolloutSource? rollouts = null)
    {
        config.Validate();
        if (data.Count == 0) throw new R1SharpException("the GRPO dataset is empty");
        Config = config; Policy = policy; Tokenizer = tokenizer; Rewards = rewards; _data = data; _template = template;
        _loss = config.Loss;
        _tokenizerDir = tokenizerDir;
        if (config.NumThreads > 0) set_num_threads(config.NumThreads);
        Directory.CreateDirectory(config.OutputDir);
        Metrics = new MetricsLog(Path.Combine(config.OutputDir, "metrics.jsonl"));
        File.WriteAllText(Metrics.Path, "");
        _eos = TextGenerator.CollectEosIds(policy.Config, tokenizer, generationConfig: null).ToArray();
        if (_eos.Length == 0) throw new R1SharpException("the model has no end-of-sequence token: completions could never stop");
        _ownsRollouts = rollouts is null;
        _rollouts = rollouts ?? new LocalRolloutSource(policy);
        _rolloutLog = new RolloutLog(Path.Combine(config.OutputDir, "rollouts.jsonl"));
        // use_peft: adapters on the policy, the base frozen (QLoRA: quantized first); only the adapters train.
        _lora = PeftOptions.Apply(policy, config, "config");
        _memory = PeftOptions.Memory(config);
        // The frozen reference π_ref of the KL term is the policy as it was at the start (DeepSeekMath eq. 3). With
        // adapters that is the base with the adapters switched off, as TRL does with PEFT: no second copy.
        if (config.Beta > 0 && _lora is null) _reference = policy.FrozenCopy();
        _optimizer = new AdamW(PeftOptions.Trainable(policy, _lora))
        {
            Beta1 = config.AdamBeta1, Beta2 = config.AdamBeta2, Eps = config.AdamEpsilon, WeightDecay = config.WeightDecay,
        };
        _schedule = new LrSchedule(config.LearningRate, config.TotalWarmup, config.MaxSteps * config.NumIterations, config.LrSchedulerType);
        policy.AuxiliaryTraining = config.AuxiliaryTraining; // the family's own terms (Policy.Training)
        rewards.OnFailure ??= m => OnLog?.Invoke(m);
    }

    public bool Done => State.Step >= Config.MaxSteps;

    public int MaxSteps => Config.MaxSteps;
    public int SaveSteps => Config.SaveSteps;

    /// <summary>Trains to max_steps (from a checkpoint after <see cref="Resume"/>), saving every save_steps and at
    /// the end: <see cref="TrainingLoop.Run"/>.</summary>
    public void Train(Action<Dictionary<string, double>>? onStep = null, Func<int, bool>? shouldStop = null) => TrainingLoop.Run(this, onStep, shouldStop);

    /// <summary>One GRPO step: rollout → reward → advantage → loss → update.</summary>
    public Dictionary<string, double> Step()
    {
        StartOnce();
        var clock = Stopwatch.StartNew();
        Memory.PeakMemory.Reset();
        var (rollout, rounds) = SampleScoredRollout();                                       // rollout + reward
        double rolloutSeconds = clock.Elapsed.TotalSeconds;
        double rolloutPeak = Memory.PeakMemory.PeakGb();
        Memory.PeakMemory.Reset();
        var advantages = Advantages.Compute(rollout.Rewards, rollout.GroupSize, _loss.ScaleRewards);         // advantage
        using var batches = new MicroBatches(rollout, Config.PerDeviceTrainBatchSize, _loss.MaskTruncatedCompletions, Policy.Config, Policy.Device);
        batches.ScoreFixedPolicies(Policy, _reference, Config.NumIterations > 1,             // π_θold, π_ref
            Config.Beta > 0 && _lora is not null ? _lora : null);
        var update = Update(batches, advantages);                                            // loss + update
        State.Step++;
        double updateSeconds = clock.Elapsed.TotalSeconds - rolloutSeconds;
        _rollouts.PublishWeights(Policy, State.Step);                                        // rollouts see the update
        var row = StepMetrics.Collect(State.Step, rollout, update, rounds, rolloutSeconds, updateSeconds);
        row["sync_seconds"] = clock.Elapsed.TotalSeconds - rolloutSeconds - updateSeconds;
        row["memory/rollout_peak_gb"] = rolloutPeak;                                         // peak resident memory per phase
        row["memory/update_peak_gb"] = Memory.PeakMemory.PeakGb();
        foreach (var (key, value) in Policy.Training.TakeMetrics()) row[key] = value;
        Metrics.Append(row);
        _rolloutLog.Append(State.Step, rollout, advantages);
        return row;
    }

    /// <summary>G completions for each prompt of the next batch, scored. With dynamic sampling (DAPO §3.2, eq. 11)
    /// groups whose rewards are all equal are dropped and more prompts are drawn until the batch is full.</summary>
    (Rollout Rollout, int Rounds) SampleScoredRollout()
    {
        int g = Config.NumGenerations, want = Config.PromptsPerStep;
        var kept = new List<RolloutCompletion>();
        Rollout last = null!;
        int round = 0;
        while (round < (Config.DynamicSampling ? Config.MaxDynamicSamplingRounds : 1))
        {
            last = Generate(NextPrompts(want), round++);
            for (int grp = 0; grp < want && kept.Count < want * g; grp++)
                if (!Config.DynamicSampling || !Advantages.ZeroVariance(last.Rewards, grp * g, g)) kept.AddRange(last.Group(grp));
            if (kept.Count >= want * g) break;
        }
        // Every round gave only zero-variance groups: train on the last round (advantages 0; only the KL term acts).
        if (kept.Count == 0) return (last, round);
        if (Config.DynamicSampling && kept.Count < want * g)
            OnLog?.Invoke($"step {State.Step + 1}: dynamic sampling filled {kept.Count / g} of {want} groups in {round} rounds");
        return (new Rollout(kept, g), round);
    }

    /// <summary>Before the first rollout of this process (fresh or resumed): the rollout log is cut back to the step
    /// the run starts from, and the generator gets the policy's weights.</summary>
    void StartOnce()
    {
        if (_started) return;
        _rolloutLog.Open(State.Step);
        _rollouts.PublishWeights(Policy, State.Step);
        _started = true;
    }

    List<PromptExample> NextPrompts(int count) => DataOrder.Take(_data, Config.Seed, State, count);

    Rollout Generate(List<PromptExample> prompts, int round)
    {
        int g = Config.NumGenerations;
        var promptIds = new List<int[]>(prompts.Count);
        foreach (var p in prompts)
        {
            var ids = Tokenizer.Encode(_template(p.Prompt)).ToArray();
            if (ids.Length > Config.MaxPromptLength) ids = ids[^Config.MaxPromptLength..]; // keep the end, as TRL (left truncation)
            promptIds.Add(ids);
        }
        var options = new SamplingOptions
        {
            Temperature = (float)Config.Temperature, TopP = (float)Config.TopP, TopK = Config.TopK,
            MaxTokens = Config.MaxCompletionLength,
            // Row i samples with Seed + i: a function of (seed, step, round) only, so a resumed run samples the same.
            Seed = RolloutSeed(Config.Seed, State.Step, round),
        };
        var samples = _rollouts.Generate(promptIds, g, options, _eos);
        var completions = samples.Select((o, i) => new RolloutCompletion(prompts[i / g].Prompt, promptIds[i / g], prompts[i / g].Answer,
            o.TokenIds, Tokenizer.Decode(o.TokenIds.Where(t => !_eos.Contains(t))), o.Truncated, o.WeightVersion, o.Source)).ToArray();
        var scores = Rewards.Score(completions.Select(c => c.Prompt).ToList(), completions.Select(c => c.Text).ToList(), completions.Select(c => c.Reference).ToList());
        return new Rollout(Rollout.Scored(completions, scores), g);
    }

    public static long RolloutSeed(int seed, long step, int round) => seed * 1_000_003L + (step * 16 + round) * 100_003L;

    /// <summary>num_iterations optimizer steps on the same rollout, each accumulating gradients over the micro-batches.</summary>
    UpdateStats Update(MicroBatches batches, double[] advantages)
    {
        var stats = new UpdateStats();
        var clock = Stopwatch.StartNew();
        for (int it = 0; it < Config.NumIterations; it++)
        {
            double lr = _schedule.At(State.OptimizerStep);
            _optimizer.ZeroGrad();
            bool finite = true;
            using (PeftOptions.DropoutScope(_lora, Config, State.OptimizerStep)) // LoRA dropout, its masks a function of the step
            foreach (var mb in batches.Items)
            {
                using var scope = NewDisposeScope();
                var (logp, entropy, pass) = mb.Batch.Score(Policy, _memory);
                var old = mb.OldLogProbs ?? logp.detach();
                var adv = tensor(mb.Rows.Select(i => (float)advantages[i]).ToArray(), device: Policy.Device);
                var result = PolicyLoss.Compute(new PolicyLossInput(logp, old, mb.RefLogProbs, adv, mb.LossMask), _loss, batches.LossTokens, batches.Rows);
                var loss = result.Loss;
                using var share = ((double)mb.Batch.Rows / batches.Rows).ToScalar(); // held for the call (HeldScalars)
                if (Policy.Training.TakeLoss() is { } aux) loss = Ops.Add(loss, aux.mul(share));
                loss = LossTransform?.Invoke(loss) ?? loss;
                double lossValue = loss.item<float>();
                if (!double.IsFinite(lossValue)) { finite = false; break; }
                pass.Backward(loss);
                stats.Add(lossValue, result.ClipFraction, result.Kl, mb.Batch.MeanOver(entropy), mb.Batch.Rows);
            }
            double norm = finite ? _optimizer.GradNorm() : double.NaN;
            if (!double.IsFinite(norm))
            {
                // A NaN/∞ loss or gradient: skip this update, keep the weights, go on (the run must survive it).
                stats.Skipped++;
                OnLog?.Invoke($"step {State.Step + 1}: non-finite {(finite ? "gradient" : "loss")}, update skipped");
                _optimizer.ZeroGrad();
                continue;
            }
            _optimizer.ClipGradients(norm, Config.MaxGradNorm);
            _optimizer.Step(lr);
            Policy.Training.AfterOptimizerStep();
            State.OptimizerStep++;
            stats.GradNorm = norm; stats.LearningRate = lr;
        }
        _optimizer.ZeroGrad();
        stats.TrainTokens = (long)batches.TotalTokens * Config.NumIterations;
        // Every forward and backward of the update: the policy's per iteration, plus one forward each for π_θold and π_ref.
        stats.Flops = batches.ForwardFlops * (ModelFlops.TrainingMultiplier * Config.NumIterations
            + (Config.NumIterations > 1 ? 1 : 0) + (Config.Beta > 0 ? 1 : 0));
        stats.Seconds = clock.Elapsed.TotalSeconds;
        return stats;
    }

    /// <summary>The adapters being trained (use_peft), or null for full fine-tuning.</summary>
    public LoraModel? Adapters => _lora;

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

    public void Dispose()
    {
        _reference?.Dispose();
        if (_ownsRollouts) _rollouts.Dispose();
    }
}

/// <summary>Where the trainer is: counted steps and the position in the data order.</summary>
public sealed class TrainerState
{
    public int Step { get; set; }
    public long OptimizerStep { get; set; }
    public int Epoch { get; set; }
    public int Cursor { get; set; }
}

/// <summary>The data order: a fresh permutation per epoch from (seed, epoch), so a position alone restores it.</summary>
public static class DataOrder
{
    static readonly Dictionary<(int, int, int), int[]> Cache = new();

    public static int Index(int seed, int epoch, int position, int count)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue((seed, epoch, count), out var perm))
            {
                perm = Enumerable.Range(0, count).ToArray();
                // Not HashCode.Combine: it is randomised per process, and a resumed run must see the same order.
                new Random((int)((seed * 1_000_003L + epoch) & int.MaxValue)).Shuffle(perm);
                if (Cache.Count > 8) Cache.Clear();
                Cache[(seed, epoch, count)] = perm;
            }
            return perm[position];
        }
    }

    /// <summary>The next <paramref name="count"/> items in this order from the state's (epoch, cursor), advancing it
    /// (a new epoch, with its own permutation, when the data runs out).</summary>
    public static List<T> Take<T>(IReadOnlyList<T> data, int seed, TrainerState state, int count)
    {
        var list = new List<T>(count);
        for (int i = 0; i < count; i++)
        {
            if (state.Cursor >= data.Count) { state.Epoch++; state.Cursor = 0; }
            list.Add(data[Index(seed, state.Epoch, state.Cursor++, data.Count)]);
        }
        return list;
    }
}
