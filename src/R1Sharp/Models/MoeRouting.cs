using System.Runtime.CompilerServices;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;


namespace R1Sharp.Models;

/// <summary>
/// DeepSeekMoE's router as a function of the router logits: which experts each token goes to and with what weight.
/// <list type="bullet">
/// <item>scores s = sigmoid(logits) (V3) or softmax(logits) (V2), in float32;</item>
/// <item>selection on s, plus e_score_correction_bias for noaux_tc (V3 §2.1.2, auxiliary-loss-free balancing: the
///   bias steers which experts win, never how much their output counts);</item>
/// <item>greedy: the top-k over all experts (V2-Lite); group_limited_greedy (V2 §2.2.3): only the topk_group groups
///   with the highest best score compete; noaux_tc (V3): groups ranked by the sum of their two best biased scores;
///   experts outside the chosen groups are masked with −∞ (DeepSeek-V3's model.py Gate; transformers fills 0.0,
///   which can let a masked expert win when the biased scores of the allowed ones are negative);</item>
/// <item>weights: the unbiased scores of the chosen experts, normalised to sum 1 when norm_topk_prob (and k &gt; 1),
///   times routed_scaling_factor (V3 always; V2 only when it does not normalise: each release's MoEGate).</item>
/// </list>
/// </summary>
public static class MoeRouting
{
    /// <summary>The 1e-20 added to the weights' sum before normalising (transformers' denominator), held (HeldScalars).</summary>
    static readonly Scalar Tiny = 1e-20.ToScalar();

    /// <param name="logits">router logits [N, experts] (float32)</param>
    /// <param name="bias">e_score_correction_bias [experts], used by noaux_tc only</param>
    /// <returns>expert indices [N, k] (int64) and their weights [N, k] (float32, with gradient through the scores)
    /// and the scores themselves [N, experts]</returns>
    public static (Tensor Indices, Tensor Weights, Tensor Scores) Route(Tensor logits, DeepseekV3Config c, Tensor? bias)
    {
        var scores = c.ScoringFunc == "sigmoid" ? logits.sigmoid() : logits.softmax(-1);
        int k = c.NumExpertsPerTok!.Value;
        Tensor indices;
        using (no_grad())
        {
            var choice = scores.detach();
            if (c.UsesScoreCorrectionBias && bias is not null) choice = Ops.Add(choice, bias.to(choice.dtype));
            if (c.TopkMethod != "greedy" && c.NGroup is > 1 && c.TopkGroup < c.NGroup)
                choice = LimitToGroups(choice, c.NGroup.Value, c.TopkGroup!.Value, sumOfTopTwo: c.TopkMethod == "noaux_tc");
            indices = choice.topk(k, dim: -1).indexes;
        }
        var weights = scores.gather(1, indices);
        bool normalise = k > 1 && c.NormTopkProb;
        if (normalise) weights = weights / weights.sum(-1, keepdim: true).add(Tiny, HeldScalars.One);
        using var scaling = c.RoutedScalingFactor.ToScalar(); // held for the call (HeldScalars)
        if (!normalise || c.ScalesNormalizedWeights) weights = weights.mul(scaling);
        return (indices, weights, scores);
    }

    /// <summary>Masks with −∞ every expert outside the topk_group best groups, a group scored by its best expert
    /// (group_limited_greedy) or the sum of its two best (noaux_tc).</summary>
    static Tensor LimitToGroups(Tensor choice, int groups, int keep, bool sumOfTopTwo)
    {
        long n = choice.size(0), experts = choice.size(1);
        var grouped = choice.view(n, groups, experts / groups);
        var groupScores = sumOfTopTwo ? grouped.topk(2, dim: -1).values.sum(-1) : grouped.amax([-1L]);
        var chosen = groupScores.topk(keep, dim: -1).indexes;
        var allowed = zeros([n, groups], dtype: ScalarType.Bool, device: choice.device).scatter_(1, chosen, ones_like(chosen, dtype: ScalarType.Bool));
        return grouped.masked_fill(allowed.logical_not().unsqueeze(-1), HeldScalars.NegativeInfinity).view(n, experts);
    }
    /// <summary>
    /// <see cref="Route"/> for one token on the CPU without tensors: a batch-1 decode step, where the dozen libtorch
    /// operators of <see cref="Route"/> cost more than the arithmetic. Same steps, float32 throughout: scores, biased
    /// choice, groups, top-k, then the chosen experts' unbiased scores normalised (summed in top-k order) and scaled.
    /// </summary>
    /// <param name="logits">router logits of the token [experts]</param>
    /// <param name="bias">e_score_correction_bias [experts] (used by noaux_tc only), or empty</param>
    /// <returns>the k chosen experts, best first, and their weights</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public static (int[] Experts, float[] Weights) RouteOne(ReadOnlySpan<float> logits, DeepseekV3Config c, ReadOnlySpan<float> bias)
    {
        int n = logits.Length, k = c.NumExpertsPerTok!.Value;
        var scores = new float[n];
        if (c.ScoringFunc == "sigmoid")
            for (int i = 0; i < n; i++) scores[i] = 1f / (1f + MathF.Exp(-logits[i]));
        else
        {
            float max = float.NegativeInfinity, sum = 0;
            for (int i = 0; i < n; i++) max = Math.Max(max, logits[i]);
            for (int i = 0; i < n; i++) sum += scores[i] = MathF.Exp(logits[i] - max);
            for (int i = 0; i < n; i++) scores[i] /= sum;
        }
        var choice = (float[])scores.Clone();
        if (c.UsesScoreCorrectionBias && bias.Length == n)
            for (int i = 0; i < n; i++) choice[i] += bias[i];
        if (c.TopkMethod != "greedy" && c.NGroup is > 1 && c.TopkGroup < c.NGroup)
        {
            int groups = c.NGroup.Value, size = n / groups;
            var groupScores = new float[groups];
            for (int g = 0; g < groups; g++)
            {
                var members = choice.AsSpan(g * size, size);
                if (c.TopkMethod == "noaux_tc") { var two = TopK(members, 2); groupScores[g] = members[two[0]] + members[two[1]]; }
                else groupScores[g] = members[TopK(members, 1)[0]];
            }
            var allowed = new bool[groups];
            foreach (int g in TopK(groupScores, c.TopkGroup!.Value)) allowed[g] = true;
            for (int g = 0; g < groups; g++)
                if (!allowed[g]) choice.AsSpan(g * size, size).Fill(float.NegativeInfinity);
        }
        var experts = TopK(choice, k);
        var weights = new float[k];
        for (int j = 0; j < k; j++) weights[j] = scores[experts[j]];
        bool normalise = k > 1 && c.NormTopkProb;
        if (normalise)
        {
            float sum = 0;
            foreach (var w in weights) sum += w;
            sum += 1e-20f;
            for (int j = 0; j < k; j++) weights[j] /= sum;
        }
        if (!normalise || c.ScalesNormalizedWeights)
            for (int j = 0; j < k; j++) weights[j] *= (float)c.RoutedScalingFactor;
        return (experts, weights);
    }

    /// <summary>Indices of the k largest values, largest first (the lower index first among equals).</summary>
    static int[] TopK(ReadOnlySpan<float> values, int k)
    {
        var best = new int[k];
        int count = 0;
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (count == k && !(v > values[best[k - 1]])) continue;
            int j = count < k ? count++ : k - 1;
            while (j > 0 && v > values[best[j - 1]]) { best[j] = best[j - 1]; j--; }
            best[j] = i;
        }
        return best;
    }
}
