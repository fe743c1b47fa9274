using System.Diagnostics;
using TorchSharp;
using R1Sharp.Models;
using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>Options of next-token pre-training.</summary>
public sealed record PretrainOptions
{
    public int Steps { get; init; } = 300;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 20;
    public double WeightDecay { get; init; } = 0.01;
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Checkpoint every this many steps (0: only at the end).</summary>
    public int SaveSteps { get; init; }
}

/// <summary>
/// Next-token prediction from scratch on a stream of (prompt, continuation) documents: how the CPU demo makes its own
/// base model. The loss counts continuation tokens only — the prompts are random operands with nothing to learn.
/// An <see cref="ITrainer"/>: the batch of step s is a function of s, so with its checkpoints (model, AdamW, step) a
/// resumed pre-training is bit-identical to an uninterrupted one.
/// </summary>
public sealed class Pretrainer : ITrainer
{
    readonly CausalLM _model;
    readonly PretrainOptions _o;
    readonly Func<int, IReadOnlyList<(int[] Prompt, int[] Continuation)>> _documents;
    readonly AdamW _optimizer;
    readonly LrSchedule _schedule;
    readonly string _outputDir;
    readonly string? _tokenizerDir;

    /// <param name="documents">the step's batch of (prompt ids, continuation ids), a function of the step (deterministic)</param>
    /// <param name="outputDir">where metrics.jsonl and the checkpoints go</param>
    public Pretrainer(CausalLM model, PretrainOptions o, Func<int, IReadOnlyList<(int[] Prompt, int[] Continuation)>> documents,
        string outputDir, string? tokenizerDir = null)
    {
        _model = model; _o = o; _documents = documents; _outputDir = outputDir; _tokenizerDir = tokenizerDir;
        _optimizer = new AdamW(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)))
        {
            Beta1 = 0.9, Beta2 = 0.98, WeightDecay = o.WeightDecay,
        };
        _schedule = new LrSchedule(o.LearningRate, o.WarmupSteps, o.Steps, "cosine", MinRatio: 0.1);
        Directory.CreateDirectory(outputDir);
        Metrics = new MetricsLog(Path.Combine(outputDir, "metrics.jsonl"));
        File.WriteAllText(Metrics.Path, "");
    }

    public TrainerState State { get; private set; } = new();
    public MetricsLog Metrics { get; }
    public int MaxSteps => _o.Steps;
    public int SaveSteps => _o.SaveSteps;
    public bool Done => State.Step >= _o.Steps;

    public Dictionary<string, double> Step()
    {
        var clock = Stopwatch.StartNew();
        int step = State.Step;
        var docs = _documents(step);
        double lossValue = 0;
        _optimizer.ZeroGrad();
        // Documents of equal length form one sub-batch each: no padding is computed, and the summed token loss
        // over the sub-batches, divided by all tokens, is exactly the loss of the whole batch.
        double tokens = docs.Sum(d => d.Continuation.Length);
        foreach (var group in docs.GroupBy(d => d.Prompt.Length + d.Continuation.Length))
        {
            using var scope = NewDisposeScope();
            using var batch = new SequenceBatch(group.Select(d => (IReadOnlyList<int>)d.Prompt).ToList(), group.Select(d => (IReadOnlyList<int>)d.Continuation).ToList(), _model.Device);
            var (logp, _) = batch.TokenLogProbs(_model);
            using var tokenCount = tokens.ToScalar(); // held for the calls (HeldScalars)
            using var share = ((double)batch.Rows / docs.Count).ToScalar();
            var loss = (-(logp * batch.CompletionMask).sum()).div(tokenCount);
            // The family's own terms (DeepSeek-V3: balance and MTP losses), weighted by this sub-batch's share.
            if (_model.Training.TakeLoss() is { } aux) loss = Ops.Add(loss, aux.mul(share));
            loss.backward();
            lossValue += loss.item<float>();
        }
        double norm = _optimizer.GradNorm();
        double lr = _schedule.At(step);
        if (double.IsFinite(norm))
        {
            _optimizer.ClipGradients(norm, _o.MaxGradNorm);
            _optimizer.Step(lr);
            _model.Training.AfterOptimizerStep();
            State.OptimizerStep++;
        }
        _model.Training.TakeMetrics(); // one step's statistics; pre-training logs only its loss
        _optimizer.ZeroGrad();
        State.Step++;
        var row = new Dictionary<string, double>
        {
            ["step"] = State.Step, ["loss"] = lossValue, ["learning_rate"] = lr, ["grad_norm"] = norm, ["update_seconds"] = clock.Elapsed.TotalSeconds,
        };
        Metrics.Append(row);
        return row;
    }

    public void SaveCheckpoint() => TrainerCheckpoint.Save(_outputDir, State, _model, _optimizer, Metrics, _tokenizerDir);

    /// <summary>Continues from the newest checkpoint in the output folder; false when there is none.</summary>
    public bool Resume()
    {
        var state = TrainerCheckpoint.LoadLatest(_outputDir, _model, _optimizer, Metrics);
        if (state is null) return false;
        State = state;
        return true;
    }
}
