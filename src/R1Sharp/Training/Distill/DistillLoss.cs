using R1Sharp.Kernels;
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
        // Every Scalar held for its call (HeldScalars): a temporary could be freed while libtorch reads it.
        using var tau = temperature.ToScalar();
        var s = student.narrow(-1, 0, v).div(tau).log_softmax(-1);
        var t = teacher.narrow(-1, 0, v).div(tau).log_softmax(-1).detach();
        if (beta == 1.0) return KlDiv(s, t);
        if (beta == 0.0) return KlDiv(t, s);
        using var logStudentShare = Math.Log(1 - beta).ToScalar();
        using var logTeacherShare = Math.Log(beta).ToScalar();
        var m = logsumexp(stack([s.add(logStudentShare, HeldScalars.One), t.add(logTeacherShare, HeldScalars.One)]), 0);
        using var teacherShare = beta.ToScalar();
        using var studentShare = (1 - beta).ToScalar();
        return Ops.Add(KlDiv(t, m).mul(teacherShare), KlDiv(s, m).mul(studentShare));
    }

    /// <summary>KL(p ‖ q) = Σ_v p(v) (log p(v) − log q(v)) over the last axis, from log-probabilities.</summary>
    static Tensor KlDiv(Tensor logP, Tensor logQ) => (logP.exp() * (logP - logQ)).sum(-1);
}
