using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// DeepSeek-V3's training terms (§2.1.2, §2.2), collected during the model's training forward passes (gradient
/// enabled; rollouts and reference scoring run without):
/// <list type="bullet">
/// <item>expert loads: tokens routed to each expert of each MoE layer, for metrics and for auxiliary-loss-free
///   balancing, which after each optimizer step moves every e_score_correction_bias by γ towards balance (down for an
///   expert above the mean load, up for one below);</item>
/// <item>the sequence-wise balance loss (eqs. 17–20): α Σᵢ fᵢ Pᵢ per sequence, fᵢ = N_r/(K_r·T) × tokens sent to
///   expert i, Pᵢ the mean over tokens of its normalised score; a row of the batch is the sequence (packed rows and
///   padding take part as they are); summed over MoE layers, averaged over rows;</item>
/// <item>the MTP loss (eqs. 24–25): λ/D Σₖ of depth k's mean cross-entropy predicting token i + k + 1, over the
///   positions whose target is in the same sequence (the attention mask says: its row sees position i).</item>
/// </list>
/// </summary>
public sealed class DeepseekTrainingTerms : TrainingTerms
{
    readonly DeepseekV3ForCausalLM model;
    readonly DeepseekV3Config config;
    readonly Dictionary<int, long[]> stepLoads = new(), updateLoads = new();
    readonly List<Tensor> pending = [];
    double balanceSum, mtpSum;
    int balanceCount, mtpCount;

    public DeepseekTrainingTerms(DeepseekV3ForCausalLM model, DeepseekV3Config config)
    {
        this.model = model; this.config = config;
    }

    AuxiliaryTrainingOptions? Options => model.AuxiliaryTraining;

    /// <summary>One MoE layer's routing, inside its dispose scope.</summary>
    internal void Observe(MoeRoutingRecord r)
    {
        if (!is_grad_enabled()) return;
        int experts = config.NRoutedExperts!.Value;
        long[] counts;
        using (no_grad()) counts = r.Indices.reshape(-1).bincount(null, experts).cpu().data<long>().ToArray();
        foreach (var loads in new[] { stepLoads, updateLoads })
        {
            if (!loads.TryGetValue(r.Layer, out var sum)) loads[r.Layer] = sum = new long[experts];
            for (int e = 0; e < experts; e++) sum[e] += counts[e];
        }
        if (Options is { AuxLossAlpha: > 0 } o)
        {
            using var alpha = o.AuxLossAlpha.ToScalar(); // held for the call (HeldScalars); α·L is L.mul(α)
            var loss = SequenceBalanceLoss(r, experts, config.NumExpertsPerTok!.Value).mul(alpha);
            balanceSum += loss.item<float>(); balanceCount++;
            pending.Add(loss.MoveToOuterDisposeScope()); // out of the layer's scope, into the trainer's
        }
    }

    /// <summary>The sequence-wise balance loss of one layer (without α).</summary>
    public static Tensor SequenceBalanceLoss(MoeRoutingRecord r, int experts, int k)
    {
        long b = r.Batch, t = r.Length;
        var scores = r.Scores.view(b, t, experts);
        var p = (scores / scores.sum(-1, keepdim: true)).mean([1L]);                                     // Pᵢ [B, E]
        using var share = (experts / (double)(k * t)).ToScalar();
        var f = zeros([b, experts], dtype: ScalarType.Float32, device: scores.device)
            .scatter_add(1, r.Indices.view(b, t * k), ones([b, t * k], dtype: ScalarType.Float32, device: scores.device))
            .mul_(share);                                                            // fᵢ [B, E]
        return (f * p).sum(-1).mean();
    }

    /// <summary>After the main layers: the MTP modules' loss on the batch's own tokens.</summary>
    internal void ObserveHidden(Tensor hidden, Tensor inputIds, Tensor positions, Tensor mask)
    {
        if (!is_grad_enabled() || Options is not { MtpLossWeight: > 0 } o || config.MtpLayers == 0) return;
        long b = inputIds.size(0), t = inputIds.size(1);
        var depths = model.MtpHidden(hidden, inputIds, positions, mask);
        if (depths.Count == 0) return;
        var rows = mask.view(b, t, t);
        Tensor? total = null;
        for (int k = 1; k <= depths.Count; k++)
        {
            long n = t - k - 1;
            if (n <= 0) break;
            var logits = model.Logits(depths[k - 1].narrow(1, 0, n));                 // position i predicts token i + k + 1
            var targets = inputIds.narrow(1, k + 1, n);
            var nll = -logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
            var valid = rows.diagonal(-(k + 1), 1, 2).eq(HeldScalars.Zero).to(ScalarType.Float32); // row i + k + 1 sees key i
            var loss = (nll * valid).sum() / valid.sum().clamp_min(HeldScalars.One);
            total = total is null ? loss : Ops.Add(total, loss);
        }
        if (total is null) return;
        using var weight = (o.MtpLossWeight / depths.Count).ToScalar();
        var weighted = total.mul(weight);
        mtpSum += weighted.item<float>(); mtpCount++;
        pending.Add(weighted);
    }

    public override Tensor? TakeLoss()
    {
        if (pending.Count == 0) return null;
        var sum = pending.Count == 1 ? pending[0] : stack(pending).sum();
        pending.Clear();
        return sum;
    }

    public override void AfterOptimizerStep()
    {
        if (Options is { BiasUpdateSpeed: > 0 } o)
            using (no_grad())
                foreach (var moe in model.MoeLayers)
                    if (moe.gate.e_score_correction_bias is { } bias && updateLoads.TryGetValue(moe.Layer, out var loads))
                    {
                        double mean = loads.Average();
                        var step = loads.Select(l => (float)(o.BiasUpdateSpeed * Math.Sign(mean - l))).ToArray();
                        Ops.AddInPlace(bias, tensor(step, device: bias.device));
                    }
        updateLoads.Clear();
    }

    /// <summary>Per MoE layer: the least and most loaded expert against the mean load (1 = balanced) and the loads'
    /// entropy over ln(experts) (1 = uniform); the worst of them over layers; the terms' mean values.</summary>
    public override IReadOnlyDictionary<string, double> TakeMetrics()
    {
        var m = new Dictionary<string, double>();
        double worstMax = 0, worstEntropy = 1;
        foreach (var (layer, loads) in stepLoads.OrderBy(kv => kv.Key))
        {
            double total = loads.Sum(), mean = total / loads.Length;
            if (total == 0) continue;
            double entropy = -loads.Where(l => l > 0).Sum(l => l / total * Math.Log(l / total)) / Math.Log(loads.Length);
            m[$"moe/layer_{layer}/load_min"] = loads.Min() / mean;
            m[$"moe/layer_{layer}/load_max"] = loads.Max() / mean;
            m[$"moe/layer_{layer}/load_entropy"] = entropy;
            worstMax = Math.Max(worstMax, loads.Max() / mean);
            worstEntropy = Math.Min(worstEntropy, entropy);
        }
        if (stepLoads.Count > 0) { m["moe/load_max"] = worstMax; m["moe/load_entropy_min"] = worstEntropy; }
        if (balanceCount > 0) m["aux/balance_loss"] = balanceSum / balanceCount;
        if (mtpCount > 0) m["aux/mtp_loss"] = mtpSum / mtpCount;
        stepLoads.Clear();
        balanceSum = mtpSum = 0; balanceCount = mtpCount = 0;
        return m;
    }
}
