namespace R1Sharp.Models;

/// <summary>
/// The weights of the training terms a family may add to a trainer's loss (recipe keys of GRPO and SFT alike); a
/// family without such terms ignores them. DeepSeek-V3 §2.1.2 and §2.2: <paramref name="AuxLossAlpha"/> α of the
/// sequence-wise balance loss (DeepSeek's config.json calls it aux_loss_alpha), <paramref name="BiasUpdateSpeed"/> γ of
/// auxiliary-loss-free balancing (each expert's e_score_correction_bias moves by γ after every optimizer step,
/// towards balance), <paramref name="MtpLossWeight"/> λ of the multi-token-prediction loss.
/// </summary>
public sealed record AuxiliaryTrainingOptions(double AuxLossAlpha = 0, double BiasUpdateSpeed = 0, double MtpLossWeight = 0)
{
    public void Validate(string source)
    {
        foreach (var (key, v) in new[] { ("aux_loss_alpha", AuxLossAlpha), ("bias_update_speed", BiasUpdateSpeed), ("mtp_loss_weight", MtpLossWeight) })
            if (!(v >= 0) || !double.IsFinite(v)) throw new R1SharpException($"{source}: {key} must be a non-negative number, found {v}");
    }
}

/// <summary>
/// A family's own training terms, collected while the model runs its training forward passes (gradient enabled):
/// a trainer adds <see cref="TakeLoss"/> to each micro-batch's loss, calls <see cref="AfterOptimizerStep"/> after each
/// optimizer step and logs <see cref="TakeMetrics"/> with each step. The base does nothing: dense families have no
/// such terms. Family-neutral, so trainers never name a family.
/// </summary>
public class TrainingTerms
{
    public static readonly TrainingTerms None = new();

    /// <summary>The weighted loss terms of the training forward passes since the last call, or null.</summary>
    public virtual TorchSharp.torch.Tensor? TakeLoss() => null;

    /// <summary>After each optimizer step (DeepSeek: the balancing bias moves).</summary>
    public virtual void AfterOptimizerStep() { }

    /// <summary>Statistics since the last call, for metrics.jsonl (DeepSeek: expert load per MoE layer, the terms' values).</summary>
    public virtual IReadOnlyDictionary<string, double> TakeMetrics() => new Dictionary<string, double>();
}
