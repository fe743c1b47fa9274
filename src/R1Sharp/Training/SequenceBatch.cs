using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>
/// Prompt + completion pairs as one left-padded batch for a training forward pass. Every row ends at the last column,
/// so the engine's masks (<see cref="AttentionMask"/>) apply unchanged. Predictions are aligned to targets: column t
/// of <see cref="Targets"/> is the token that logits at column t predict; <see cref="CompletionMask"/> marks the
/// completion tokens (the only ones a policy-gradient or SFT loss counts).
/// </summary>
public sealed class SequenceBatch : IDisposable
{
    public Tensor Ids { get; }
    public Tensor Positions { get; }
    public Tensor Mask { get; }
    /// <summary>[B, T-1] long: ids shifted left by one.</summary>
    public Tensor Targets { get; }
    /// <summary>[B, T-1] float32: 1 where the target is a completion token.</summary>
    public Tensor CompletionMask { get; }
    public int Rows { get; }
    public int Length { get; }
    public int CompletionTokens { get; }

    public SequenceBatch(IReadOnlyList<IReadOnlyList<int>> prompts, IReadOnlyList<IReadOnlyList<int>> completions, Device device)
    {
        if (prompts.Count != completions.Count) throw new ArgumentException("prompts and completions differ in count");
        Rows = prompts.Count;
        Length = Enumerable.Range(0, Rows).Max(r => prompts[r].Count + completions[r].Count);
        int t = Length;
        var ids = new long[Rows * t];
        var targetMask = new float[Rows * (t - 1)];
        var pad = new int[Rows];
        for (int r = 0; r < Rows; r++)
        {
            int lp = prompts[r].Count, lc = completions[r].Count;
            pad[r] = t - lp - lc;
            for (int j = 0; j < lp; j++) ids[r * t + pad[r] + j] = prompts[r][j];
            for (int j = 0; j < lc; j++)
            {
                int col = pad[r] + lp + j;
                ids[r * t + col] = completions[r][j];
                targetMask[r * (t - 1) + col - 1] = 1f; // predicted from the column before
            }
            CompletionTokens += lc;
        }
        Ids = tensor(ids, [Rows, t], device: device);
        Positions = AttentionMask.Positions(pad, 0, t, device);
        Mask = AttentionMask.Build(pad, 0, t, t, device);
        Targets = Ids.narrow(1, 1, t - 1);
        CompletionMask = tensor(targetMask, [Rows, t - 1], device: device);
    }

    /// <summary>Per-token log-probabilities [B, T-1] of the targets under the model, with the logits they came from
    /// (float32 [B, T-1, V]; the caller's dispose scope owns both).</summary>
    public (Tensor LogProbs, Tensor Logits) TokenLogProbs(CausalLM model)
    {
        var logits = model.Forward(Ids, Positions, Mask).narrow(1, 0, Length - 1);
        var logp = logits.log_softmax(-1).gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
        return (logp, logits);
    }

    /// <summary>Mean entropy of the next-token distribution over completion positions (no gradient).</summary>
    public double MeanEntropy(Tensor logits)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var logp = logits.log_softmax(-1);
        var ent = -(logp.exp() * logp).sum(-1);
        return (ent * CompletionMask).sum().item<float>() / Math.Max(1, CompletionTokens);
    }

    public void Dispose()
    {
        Ids.Dispose(); Positions.Dispose(); Mask.Dispose(); Targets.Dispose(); CompletionMask.Dispose();
    }
}
