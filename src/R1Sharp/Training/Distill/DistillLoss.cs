using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training.Distill;

/// <summary>
/// The per-token divergence of on-policy distillation between the student's and the teacher's next-token
/// distributions at the same position (both logits divided by the temperature first), as TRL's
/// GKDTrainer.generalized_jsd_loss (Agarwal et al. 2024, "On-Policy Distillation of Language Models", eq. 1 and §3):
/// β = 1: reverse KL(π_s ‖ π_t) = Σ_v π_s(v) (log π_s(v) − log π_t(v)), the loss of on-policy distillation, which
/// penalises the student for putting mass where the teacher would not; β = 0: forward KL(π_t ‖ π_s); in between the
/// generalised JSD: β KL(π_t ‖ m) + (1 − β) KL(π_s ‖ m) with m = β π_t + (1 − β) π_s.
/// </summary>
public static class DistillLoss
{
    /// <param name="student">student logits [..., V] (differentiable)</param>
    /// <param name="teacher">teacher logits [..., V'] (no gradient needed); when V ≠ V' both are cut to the smaller
    /// vocabulary (checkpoints pad their embedding matrices differently; the tokenizer uses neither's padding rows)</param>
    /// <returns>[...] the divergence at each position</returns>
    public static Tensor PerToken(Tensor student, Tensor teacher, double beta = 1.0, double temperature = 1.0)
    {
        long v = Math.Min(student.size(-1), teacher.size(-1));
        var s = (student.narrow(-1, 0, v) / temperature).log_softmax(-1);
        var t = (teacher.narrow(-1, 0, v) / temperature).log_softmax(-1).detach();
        if (beta == 1.0) return KlDiv(s, t);
        if (beta == 0.0) return KlDiv(t, s);
        var m = logsumexp(stack([s + Math.Log(1 - beta), t + Math.Log(beta)]), 0);
        return beta * KlDiv(t, m) + (1 - beta) * KlDiv(s, m);
    }

    /// <summary>KL(p ‖ q) = Σ_v p(v) (log p(v) − log q(v)) over the last axis, from log-probabilities.</summary>
    static Tensor KlDiv(Tensor logP, Tensor logQ) => (logP.exp() * (logP - logQ)).sum(-1);
}
