using TorchSharp;
using R1Sharp.Models;
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
}

/// <summary>
/// Next-token prediction from scratch on a stream of (prompt, continuation) documents: how the CPU demo makes its own
/// base model. The loss counts continuation tokens only — the prompts are random operands with nothing to learn.
/// </summary>
public static class Pretrainer
{
    /// <param name="documents">the step's batch of (prompt ids, continuation ids), a function of the step (deterministic)</param>
    /// <param name="onStep">(step, loss) after each step</param>
    public static void Train(CausalLM model, PretrainOptions o, Func<int, IReadOnlyList<(int[] Prompt, int[] Continuation)>> documents,
        Action<int, double>? onStep = null)
    {
        var optimizer = new AdamW(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)))
        {
            Beta1 = 0.9, Beta2 = 0.98, WeightDecay = o.WeightDecay,
        };
        var schedule = new LrSchedule(o.LearningRate, o.WarmupSteps, o.Steps, "cosine", MinRatio: 0.1);
        for (int step = 0; step < o.Steps; step++)
        {
            var docs = documents(step);
            double lossValue = 0;
            optimizer.ZeroGrad();
            // Documents of equal length form one sub-batch each: no padding is computed, and the summed token loss
            // over the sub-batches, divided by all tokens, is exactly the loss of the whole batch.
            double tokens = docs.Sum(d => d.Continuation.Length);
            foreach (var group in docs.GroupBy(d => d.Prompt.Length + d.Continuation.Length))
            {
                using var scope = NewDisposeScope();
                using var batch = new SequenceBatch(group.Select(d => (IReadOnlyList<int>)d.Prompt).ToList(), group.Select(d => (IReadOnlyList<int>)d.Continuation).ToList(), model.Device);
                var (logp, _) = batch.TokenLogProbs(model);
                var loss = -(logp * batch.CompletionMask).sum() / tokens;
                // The family's own terms (DeepSeek-V3: balance and MTP losses), weighted by this sub-batch's share.
                if (model.Training.TakeLoss() is { } aux) loss = loss + aux * ((double)batch.Rows / docs.Count);
                loss.backward();
                lossValue += loss.item<float>();
            }
            double norm = optimizer.GradNorm();
            if (double.IsFinite(norm))
            {
                optimizer.ClipGradients(norm, o.MaxGradNorm);
                optimizer.Step(schedule.At(step));
                model.Training.AfterOptimizerStep();
            }
            model.Training.TakeMetrics(); // one step's statistics; pre-training logs only its loss
            onStep?.Invoke(step + 1, lossValue);
        }
        optimizer.ZeroGrad();
        foreach (var t in optimizer.ExpAvg.Values.Concat(optimizer.ExpAvgSq.Values)) t.Dispose();
    }
}
