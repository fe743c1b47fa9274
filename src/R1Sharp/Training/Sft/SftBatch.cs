using R1Sharp.Models;
using R1Sharp.Training.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training.Sft;

/// <summary>
/// Rows of one or more samples each (packed), right-padded to the longest row, as one forward pass. Each sample's
/// positions restart at 0 and its tokens attend only to earlier tokens of the same sample: the additive mask is
/// block-diagonal causal ([B, 1, 1, T, T], the model's mask shape), so a packed row computes what its samples compute
/// alone. Padding attends only to itself (no softmax row is empty) and is never a target.
/// </summary>
public sealed class SftBatch : IDisposable
{
    public Tensor Ids { get; }
    public Tensor Positions { get; }
    public Tensor Mask { get; }
    /// <summary>[N] flat indices (row × T + column) of the positions whose next token the loss counts.</summary>
    public Tensor Sources { get; }
    /// <summary>[N] the tokens those positions predict.</summary>
    public Tensor Targets { get; }
    public int Rows { get; }
    public int Length { get; }
    /// <summary>Real (non-padding) tokens.</summary>
    public int Tokens { get; }
    public int LossTokens { get; }

    public SftBatch(IReadOnlyList<IReadOnlyList<TokenizedSample>> rows, Device device)
    {
        Rows = rows.Count;
        Length = rows.Max(r => r.Sum(s => s.Length));
        int t = Length;
        var ids = new long[Rows * t];
        var pos = new long[Rows * t];
        var segment = new int[Rows * t];
        Array.Fill(segment, -1);
        var sources = new List<long>();
        var targets = new List<long>();
        for (int r = 0; r < Rows; r++)
        {
            int offset = 0;
            for (int s = 0; s < rows[r].Count; s++)
            {
                var sample = rows[r][s];
                for (int j = 0; j < sample.Length; j++)
                {
                    int col = r * t + offset + j;
                    ids[col] = sample.Ids[j];
                    pos[col] = j;
                    segment[col] = s;
                    if (j > 0 && sample.Trained[j]) { sources.Add(col - 1); targets.Add(sample.Ids[j]); }
                }
                offset += sample.Length;
                Tokens += sample.Length;
            }
        }
        LossTokens = targets.Count;
        var mask = new float[Rows * t * t];
        for (int r = 0; r < Rows; r++)
            for (int q = 0; q < t; q++)
            {
                int sq = segment[r * t + q], row = (r * t + q) * t;
                for (int k = 0; k < t; k++)
                    mask[row + k] = k == q || (sq >= 0 && k < q && segment[r * t + k] == sq) ? 0f : float.NegativeInfinity;
            }
        Ids = tensor(ids, [Rows, t], device: device);
        Positions = tensor(pos, [Rows, t], device: device);
        Mask = tensor(mask, [Rows, 1, 1, t, t], device: device);
        Sources = tensor(sources.ToArray(), [sources.Count], device: device);
        Targets = tensor(targets.ToArray(), [targets.Count], device: device);
    }

    /// <summary>Summed cross-entropy over the loss tokens (a differentiable scalar) and the number of them whose
    /// arg-max prediction is the target. Only the loss positions go through the vocabulary projection.</summary>
    public (Tensor LossSum, long Correct) Loss(CausalLM model)
    {
        var hidden = model.Hidden(Ids, Positions, Mask, cache: null);
        var h = hidden.reshape(-1, hidden.size(-1)).index_select(0, Sources);
        var logits = model.Logits(h);
        var nll = -logits.log_softmax(-1).gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
        long correct;
        using (no_grad()) correct = logits.argmax(-1).eq(Targets).sum().item<long>();
        return (nll.sum(), correct);
    }

    /// <summary>As <see cref="Loss(CausalLM)"/> with a trainer's memory settings (activation checkpointing, chunked
    /// log-probs); the pass back-propagates the loss.</summary>
    public (Tensor LossSum, long Correct, TrainingForward Pass) Loss(CausalLM model, TrainingMemory memory)
    {
        var pass = TrainingForward.Run(model, Ids, Positions, Mask, memory);
        var h = pass.Hidden.reshape(-1, pass.Hidden.size(-1)).index_select(0, Sources);
        if (memory.LogprobChunkSize <= 0)
        {
            var logits = model.Logits(h);
            var nll = -logits.log_softmax(-1).gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
            long right;
            using (no_grad()) right = logits.argmax(-1).eq(Targets).sum().item<long>();
            return (nll.sum(), right, pass);
        }
        var (logp, _, correct) = ChunkedLogProbs.Compute(h, model.OutputWeight, Targets, memory.LogprobChunkSize);
        return (-logp.sum(), correct.sum().item<long>(), pass);
    }

    public void Dispose()
    {
        Ids.Dispose(); Positions.Dispose(); Mask.Dispose(); Sources.Dispose(); Targets.Dispose();
    }
}
