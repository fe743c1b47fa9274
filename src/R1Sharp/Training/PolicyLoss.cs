using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>What a loss needs for one micro-batch; per-token tensors are [B, T] aligned with the completion mask.</summary>
public sealed record PolicyLossInput(
    Tensor LogProbs,         // π_θ, with gradient
    Tensor OldLogProbs,      // π_θold (equal to LogProbs.detach() when num_iterations is 1)
    Tensor? RefLogProbs,     // π_ref, when beta > 0
    Tensor Advantages,       // [B]
    Tensor Mask);            // [B, T] float, 1 on completion tokens

/// <summary>The loss and the statistics logged with it.</summary>
public sealed record PolicyLossOutput(Tensor Loss, double ClipFraction, double Kl);

/// <summary>
/// The clipped policy-gradient losses of GRPO and its variants, named as TRL names them (loss_type).
/// Ratio r = π_θ/π_θold per token (PPO, Schulman et al. 2017, eq. 7), or per sequence for GSPO.
/// Per-token objective min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â) (DeepSeekMath eq. 3; asymmetric "clip-higher" from
/// DAPO, Yu et al. 2025, eq. 10), minus β·KL(π_θ‖π_ref) with the k3 estimator
/// π_ref/π_θ − log(π_ref/π_θ) − 1 (DeepSeekMath eq. 4; Schulman 2020, "Approximating KL divergence").
/// Normalisation over tokens is what distinguishes the variants (see <see cref="Aggregate"/>).
/// </summary>
public static class PolicyLoss
{
    /// <param name="o">the loss type, clip bounds, β, and whether the ratio is per sequence: GSPO (Zheng et al. 2025,
    /// eq. 7), the geometric mean of the token ratios, exp(mean_t log r_t), shared by every token of the sequence</param>
    /// <param name="tokensInBatch">dapo: completion tokens in the whole generation batch (all micro-batches), the
    /// normaliser of DAPO eq. 12 so that micro-batching does not change the loss.</param>
    public static PolicyLossOutput Compute(PolicyLossInput x, LossOptions o, double tokensInBatch, double batchRowsInBatch)
    {
        double epsilon = o.Epsilon, epsilonHigh = o.EpsilonHigh, beta = o.Beta;
        bool sequenceLevel = o.SequenceLevel;
        // Every Scalar held for its calls (HeldScalars): a temporary could be freed while libtorch reads it.
        using var low = (1 - epsilon).ToScalar();
        using var high = (1 + epsilonHigh).ToScalar();
        var logRatio = x.LogProbs - x.OldLogProbs;
        Tensor logWeight = sequenceLevel
            ? ((logRatio * x.Mask).sum(-1) / x.Mask.sum(-1).clamp_min(HeldScalars.One)).unsqueeze(-1)
            : logRatio;
        var ratio = logWeight.exp();
        var clipped = ratio.clamp(low, high);
        var adv = x.Advantages.unsqueeze(-1);
        var perToken = -minimum(ratio * adv, clipped * adv);
        if (sequenceLevel) perToken = perToken.expand_as(x.Mask);

        double klMean = 0;
        if (beta > 0 && x.RefLogProbs is { } refLp)
        {
            var d = refLp - x.LogProbs;
            var kl = (d.exp() - d).sub(HeldScalars.One); // k3: unbiased, always ≥ 0
            using var klWeight = beta.ToScalar();
            perToken = Ops.Add(perToken, kl.mul(klWeight));
            using (no_grad()) klMean = ((kl * x.Mask).sum() / x.Mask.sum().clamp_min(HeldScalars.One)).item<float>();
        }

        var loss = Aggregate(perToken, x.Mask, o.Type, tokensInBatch, o.MaxCompletionLength, batchRowsInBatch);
        double clipFraction;
        using (no_grad())
        {
            // A token is clipped when the clip actually changed its objective (TRL's is_region_clipped).
            var isClipped = (ratio.lt(low) & adv.lt(HeldScalars.Zero)) | (ratio.gt(high) & adv.gt(HeldScalars.Zero));
            var clippedTokens = isClipped.to(ScalarType.Float32).expand_as(x.Mask) * x.Mask;
            clipFraction = clippedTokens.sum().item<float>() / Math.Max(1f, x.Mask.sum().item<float>());
        }
        return new PolicyLossOutput(loss, clipFraction, klMean);
    }

    /// <summary>
    /// grpo: mean over tokens of each sequence, then over sequences (DeepSeekMath eq. 3, 1/G Σ 1/|o_i| Σ_t).
    /// bnpo: mean over all completion tokens of the micro-batch.
    /// dapo: sum over tokens / tokens in the whole generation batch (DAPO eq. 12, token-level policy gradient).
    /// dr_grpo: sum over tokens / (sequences × max_completion_length) (Dr. GRPO eq. 3): no length bias.
    /// grpo and bnpo are scaled by this micro-batch's share of the generation batch's rows, so that accumulated
    /// gradients equal the gradient of the whole batch's loss.
    /// </summary>
    /// <param name="maxCompletionLength">dr_grpo: the constant normaliser (Dr. GRPO §3.2, eq. 3: 1/(G·L_max)).</param>
    public static Tensor Aggregate(Tensor perToken, Tensor mask, LossType lossType, double tokensInBatch, int maxCompletionLength, double batchRowsInBatch)
    {
        long rows = mask.shape[0];
        // Each normaliser a Scalar held for the call (HeldScalars)
        using var share = (rows / batchRowsInBatch).ToScalar();
        using var dapoTokens = Math.Max(1, tokensInBatch).ToScalar();
        using var drGrpoTokens = (batchRowsInBatch * maxCompletionLength).ToScalar();
        return lossType switch
        {
            LossType.Grpo => ((perToken * mask).sum(-1) / mask.sum(-1).clamp_min(HeldScalars.One)).mean().mul(share),
            LossType.Bnpo => ((perToken * mask).sum() / mask.sum().clamp_min(HeldScalars.One)).mul(share),
            LossType.Dapo => (perToken * mask).sum().div(dapoTokens),
            LossType.DrGrpo => (perToken * mask).sum().div(drGrpoTokens),
            _ => throw new ArgumentOutOfRangeException(nameof(lossType)),
        };
    }
}
