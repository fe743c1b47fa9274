using R1Sharp.Models;
using R1Sharp.Training.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>
/// Prompt + completion pairs as one left-padded batch for a training forward pass. Every row ends at the last column,
/// so the engine's masks (<see cref="AttentionMask"/>) apply unchanged. Only columns from <see cref="Start"/> on can
/// predict a completion token, so only they go through the vocabulary projection and the log-softmax (for a 150k
/// vocabulary the largest tensors of the step, and with long prompts most of them would be wasted). Predictions are
/// aligned to targets: column j of <see cref="Targets"/> is the token that the hidden state at column Start + j
/// predicts; <see cref="CompletionMask"/> marks the completion tokens (the only ones a policy-gradient or SFT loss counts).
/// </summary>
public sealed class SequenceBatch : IDisposable
{
    public Tensor Ids { get; }
    public Tensor Positions { get; }
    public Tensor Mask { get; }
    /// <summary>[B, T-1-Start] long: ids shifted left by one, from the first column that predicts a completion token.</summary>
    public Tensor Targets { get; }
    /// <summary>[B, T-1-Start] float32: 1 where the target is a completion token.</summary>
    public Tensor CompletionMask { get; }
    /// <summary>The first column whose next token is a completion token in some row.</summary>
    public int Start { get; }
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
        var pad = new int[Rows];
        for (int r = 0; r < Rows; r++) pad[r] = t - prompts[r].Count - completions[r].Count;
        // A row's first completion token sits at column pad + prompt length and is predicted from the column before.
        Start = Math.Max(0, Enumerable.Range(0, Rows).Min(r => pad[r] + prompts[r].Count) - 1);
        int width = t - 1 - Start;
        var targetMask = new float[Rows * width];
        for (int r = 0; r < Rows; r++)
        {
            int lp = prompts[r].Count, lc = completions[r].Count;
            for (int j = 0; j < lp; j++) ids[r * t + pad[r] + j] = prompts[r][j];
            for (int j = 0; j < lc; j++)
            {
                int col = pad[r] + lp + j;
                ids[r * t + col] = completions[r][j];
                targetMask[r * width + col - 1 - Start] = 1f; // predicted from the column before
            }
            CompletionTokens += lc;
        }
        Ids = tensor(ids, [Rows, t], device: device);
        Positions = AttentionMask.Positions(pad, 0, t, device);
        Mask = AttentionMask.Build(pad, 0, t, t, device);
        Targets = Ids.narrow(1, 1 + Start, width);
        CompletionMask = tensor(targetMask, [Rows, width], device: device);
    }

    /// <summary>Per-token log-probabilities [B, T-1-Start] of the targets under the model, with the logits they came
    /// from (float32 [B, T-1-Start, V]; the caller's dispose scope owns both).</summary>
    public (Tensor LogProbs, Tensor Logits) TokenLogProbs(CausalLM model)
    {
        var hidden = model.Hidden(Ids, Positions, Mask, cache: null);
        var logits = model.Logits(hidden.narrow(1, Start, Length - 1 - Start));
        var logp = logits.log_softmax(-1).gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
        return (logp, logits);
    }

    /// <summary>As <see cref="TokenLogProbs(CausalLM)"/>, through a training forward pass with a trainer's activation
    /// checkpointing (<see cref="TrainingForward"/>): back-propagate a loss built from them with the pass's
    /// <see cref="TrainingForward.Backward"/>. The logits are whole (a loss over the full next-token distribution).</summary>
    public (Tensor LogProbs, Tensor Logits, TrainingForward Pass) TokenLogProbs(CausalLM model, TrainingMemory memory)
    {
        var pass = TrainingForward.Run(model, Ids, Positions, Mask, memory);
        var logits = model.Logits(pass.Hidden.narrow(1, Start, Length - 1 - Start));
        var logp = logits.log_softmax(-1).gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
        return (logp, logits, pass);
    }

    /// <summary>
    /// Per-token log-probabilities [B, T-1-Start] of the targets with the memory settings of a trainer, their entropies
    /// (no gradient) and the forward pass whose <see cref="TrainingForward.Backward"/> back-propagates a loss built from
    /// them. With a chunk size the [B, T, V] logits never exist at once (<see cref="ChunkedLogProbs"/>).
    /// </summary>
    public TokenScores Score(CausalLM model, TrainingMemory memory)
    {
        var pass = TrainingForward.Run(model, Ids, Positions, Mask, memory);
        var h = pass.Hidden.narrow(1, Start, Length - 1 - Start);
        if (memory.LogprobChunkSize <= 0)
        {
            var logits = model.Logits(h);
            var logp = logits.log_softmax(-1).gather(-1, Targets.unsqueeze(-1)).squeeze(-1);
            Tensor entropy;
            using (no_grad())
            {
                var lp = logits.log_softmax(-1);
                entropy = -(lp.exp() * lp).sum(-1);
            }
            return new TokenScores(logp, entropy, pass);
        }
        long b = h.size(0), w = h.size(1);
        var (chunked, ent, _) = ChunkedLogProbs.Compute(h.reshape(b * w, h.size(2)), model.OutputWeight, Targets.reshape(b * w), memory.LogprobChunkSize);
        return new TokenScores(chunked.view(b, w), ent.view(b, w), pass);
    }

    /// <summary>Mean of per-token entropies [B, T-1-Start] over completion positions.</summary>
    public double MeanOver(Tensor entropy)
    {
        using var _ = no_grad();
        return (entropy * CompletionMask).sum().item<float>() / Math.Max(1, CompletionTokens);
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

/// <summary>Log-probs of a batch's targets, their entropies (no gradient), and the pass that back-propagates a loss.</summary>
public sealed record TokenScores(Tensor LogProbs, Tensor Entropy, TrainingForward Pass);
