using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>One micro-batch of a rollout, with the log-probs of the fixed policies (π_θold, π_ref) it is scored against.</summary>
public sealed class MicroBatch(SequenceBatch batch, int[] rows, Tensor lossMask)
{
    public SequenceBatch Batch { get; } = batch;
    /// <summary>The rollout rows in this micro-batch, in batch order.</summary>
    public int[] Rows { get; } = rows;
    /// <summary>The completion mask, with truncated rows zeroed when mask_truncated_completions is on.</summary>
    public Tensor LossMask { get; } = lossMask;
    public Tensor? OldLogProbs { get; set; }
    public Tensor? RefLogProbs { get; set; }
}

/// <summary>A rollout cut into micro-batches of per_device_train_batch_size rows, so memory stays bounded whatever the
/// generation batch; gradients accumulate across them. Rows are ordered by length first, so each micro-batch pads
/// little. grpo, dapo and dr_grpo normalise per row or by batch-wide constants, so the order does not change their
/// gradient; bnpo normalises per micro-batch, as TRL's does.</summary>
public sealed class MicroBatches : IDisposable
{
    public List<MicroBatch> Items { get; } = new();
    public int Rows { get; }
    /// <summary>Completion tokens that count in the loss, over the whole rollout (DAPO's normaliser).</summary>
    public double LossTokens { get; }
    public int TotalTokens { get; }
    /// <summary>Matmul FLOPs of one forward pass over every micro-batch (see <see cref="ModelFlops"/>).</summary>
    public double ForwardFlops { get; }

    public MicroBatches(Rollout rollout, int microBatchRows, bool maskTruncated, ModelConfig model, Device device)
    {
        Rows = rollout.Count;
        int size = microBatchRows;
        var order = Enumerable.Range(0, Rows).OrderBy(i => rollout[i].PromptIds.Length + rollout[i].CompletionIds.Length).ToArray();
        for (int o = 0; o < Rows; o += size)
        {
            var rows = order[o..Math.Min(Rows, o + size)];
            var batch = new SequenceBatch(rows.Select(i => (IReadOnlyList<int>)rollout[i].PromptIds).ToList(),
                rows.Select(i => (IReadOnlyList<int>)rollout[i].CompletionIds).ToList(), device);
            var mask = batch.CompletionMask;
            if (maskTruncated && rows.Any(i => rollout[i].Truncated))
            {
                // DAPO §3.4 overlong filtering: a truncated completion has no verdict, so it gets no gradient.
                var keep = tensor(rows.Select(i => rollout[i].Truncated ? 0f : 1f).ToArray(), device: device).unsqueeze(-1);
                mask = (mask * keep).DetachFromDisposeScope();
            }
            Items.Add(new MicroBatch(batch, rows, mask));
            LossTokens += mask.sum().item<float>();
            TotalTokens += batch.Rows * batch.Length;
            ForwardFlops += model.ForwardFlops(batch.Rows, batch.Length, batch.Length - 1 - batch.Start);
        }
    }

    /// <summary>Log-probs under the policy before the update (needed when num_iterations > 1: later iterations ratio
    /// against it) and under the frozen reference (when β > 0).</summary>
    /// <param name="adaptersOff">when set, π_ref is the policy with these adapters switched off (the base model)</param>
    public void ScoreFixedPolicies(CausalLM policy, CausalLM? reference, bool needOld, Models.Lora.LoraModel? adaptersOff = null)
    {
        using var _ = no_grad();
        foreach (var mb in Items)
        {
            if (needOld) mb.OldLogProbs = Score(policy, mb.Batch);
            if (reference != null) mb.RefLogProbs = Score(reference, mb.Batch);
            else if (adaptersOff != null)
                using (adaptersOff.Disabled()) mb.RefLogProbs = Score(policy, mb.Batch);
        }
    }

    static Tensor Score(CausalLM model, SequenceBatch batch)
    {
        using var scope = NewDisposeScope();
        return batch.TokenLogProbs(model).LogProbs.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var mb in Items)
        {
            if (!ReferenceEquals(mb.LossMask, mb.Batch.CompletionMask)) mb.LossMask.Dispose();
            mb.OldLogProbs?.Dispose(); mb.RefLogProbs?.Dispose();
            mb.Batch.Dispose();
        }
    }
}
