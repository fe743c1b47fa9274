using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter 2019, Algorithm 2) with its moments kept as named tensors, so a checkpoint saves and
/// restores them exactly (resume must be bit-identical). Weight decay is explicit (TorchSharp's default is 0) and applies
/// to matrices only: norms, biases and embeddings-as-vectors are not decayed, as is usual for transformers.
/// </summary>
public sealed class AdamW
{
    readonly List<(string Name, Tensor Param)> _params;
    public Dictionary<string, Tensor> ExpAvg { get; } = new();
    public Dictionary<string, Tensor> ExpAvgSq { get; } = new();
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    public double WeightDecay { get; init; }
    public long StepCount { get; set; }

    public AdamW(IEnumerable<(string Name, Tensor Param)> parameters)
    {
        _params = parameters.ToList();
        foreach (var (name, p) in _params)
        {
            ExpAvg[name] = zeros_like(p).DetachFromDisposeScope();
            ExpAvgSq[name] = zeros_like(p).DetachFromDisposeScope();
        }
    }

    public IEnumerable<Tensor> Parameters => _params.Select(p => p.Param);

    public void ZeroGrad()
    {
        foreach (var (_, p) in _params) p.grad?.zero_();
    }

    /// <summary>L2 norm of all gradients together (NaN or ∞ when any gradient is).</summary>
    public double GradNorm()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var (_, p) in _params)
            if (p.grad is { } g) sum = sum is null ? g.pow(2).sum() : sum + g.pow(2).sum();
        return sum is null ? 0 : Math.Sqrt(sum.item<float>());
    }

    /// <summary>Scales gradients so their joint norm is at most maxNorm (torch.nn.utils.clip_grad_norm_).</summary>
    public void ClipGradients(double norm, double maxNorm)
    {
        if (maxNorm <= 0 || norm <= maxNorm) return;
        using var _ = no_grad();
        double scale = maxNorm / (norm + 1e-6);
        foreach (var (_, p) in _params) p.grad?.mul_(scale);
    }

    public void Step(double lr)
    {
        StepCount++;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        double bc1 = 1 - Math.Pow(Beta1, StepCount), bc2 = 1 - Math.Pow(Beta2, StepCount);
        foreach (var (name, p) in _params)
        {
            if (p.grad is not { } g) continue;
            if (WeightDecay > 0 && p.dim() >= 2) p.mul_(1 - lr * WeightDecay); // decoupled decay (Alg. 2, line 12)
            var m = ExpAvg[name].mul_(Beta1).add_(g, alpha: 1 - Beta1);
            var v = ExpAvgSq[name].mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
            var denom = (v.sqrt() / Math.Sqrt(bc2)).add_(Eps);
            p.addcdiv_(m, denom, value: -lr / bc1);
        }
    }
}
