using System.Runtime.Intrinsics;
using R1Sharp.Models;
using R1Sharp.Kernels;
using TorchSharp;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
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

    /// <summary>PyTorch's AdamW checks, as one recipe error naming the key: 0 ≤ beta &lt; 1 (a beta of 1 never forgets,
    /// above 1 the moments grow without bound), epsilon ≥ 0, weight_decay ≥ 0 (negative decay pushes weights outward).
    /// The learning rate is checked by each recipe (it must be positive there).</summary>
    public static void CheckOptions(string source, double beta1, double beta2, double epsilon, double weightDecay)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new R1SharpException($"{source}: adam_beta1 must be in [0, 1), got {beta1}");
        if (!(beta2 >= 0 && beta2 < 1)) throw new R1SharpException($"{source}: adam_beta2 must be in [0, 1), got {beta2}");
        if (!(epsilon >= 0)) throw new R1SharpException($"{source}: adam_epsilon must be ≥ 0, got {epsilon}");
        if (!(weightDecay >= 0)) throw new R1SharpException($"{source}: weight_decay must be ≥ 0, got {weightDecay}");
    }

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

    /// <summary>Drops the gradients (PyTorch's zero_grad(set_to_none=True), its default): a parameter that gets no
    /// gradient in a step (an expert no token was routed to) is then skipped by the update instead of being moved by
    /// its momentum alone, as in PyTorch, and a resumed run (whose parameters start without gradient tensors) updates
    /// exactly as an uninterrupted one.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in _params)
            if (p.grad is { } g) { p.grad = null; g.Dispose(); }
    }

    /// <summary>L2 norm of all gradients together (NaN or ∞ when any gradient is).</summary>
    public double GradNorm()
    {
        if (Direct)
        {
            // Each gradient's sum of squares in float32, as libtorch's sum, added in double in a fixed order.
            double total = 0;
            foreach (var (_, p) in _params)
                if (p.grad is { } g) total += TensorPrimitives.SumOfSquares<float>(Floats(g));
            return Math.Sqrt(total);
        }
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var (_, p) in _params)
            if (p.grad is { } g) sum = sum is null ? g.pow(HeldScalars.Two).sum() : Ops.Add(sum, g.pow(HeldScalars.Two).sum());
        return sum is null ? 0 : Math.Sqrt(sum.item<float>());
    }

    /// <summary>Scales gradients so their joint norm is at most maxNorm (torch.nn.utils.clip_grad_norm_).</summary>
    public void ClipGradients(double norm, double maxNorm)
    {
        if (maxNorm <= 0 || norm <= maxNorm) return;
        using var _ = no_grad();
        using var scale = (maxNorm / (norm + 1e-6)).ToScalar(); // held for the calls (HeldScalars)
        foreach (var (_, p) in _params) p.grad?.mul_(scale);
    }

    public void Step(double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount), bc2 = 1 - Math.Pow(Beta2, StepCount);
        if (Direct)
        {
            foreach (var (name, p) in _params)
                if (p.grad is { } g) StepDirect(p, g, ExpAvg[name], ExpAvgSq[name], lr, bc1, bc2);
            return;
        }
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        // Every Scalar held for the whole loop (HeldScalars): a temporary could be freed while libtorch reads it.
        using var decay = (1 - lr * WeightDecay).ToScalar();
        using var beta1 = Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var sqrtBc2 = Math.Sqrt(bc2).ToScalar();
        using var eps = Eps.ToScalar();
        using var stepSize = (-lr / bc1).ToScalar();
        foreach (var (name, p) in _params)
        {
            if (p.grad is not { } g) continue;
            if (WeightDecay > 0 && p.dim() >= 2) p.mul_(decay); // decoupled decay (Alg. 2, line 12)
            var m = ExpAvg[name].mul_(beta1).add_(g, alpha: oneMinusBeta1);
            var v = ExpAvgSq[name].mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
            var denom = v.sqrt().div(sqrtBc2).add_(eps, HeldScalars.One);
            p.addcdiv_(m, denom, value: stepSize);
        }
    }

    /// <summary>Float32 CPU parameters, gradients and moments, all contiguous: the update runs as one pass over each
    /// parameter's memory instead of ~8 libtorch operators per parameter (for the 40 small tensors of the r1 zero
    /// model those operators' dispatch cost more than their arithmetic: ~8 ms a step).</summary>
    bool Direct => _params.All(x => x.Param.device_type == DeviceType.CPU && x.Param.dtype == ScalarType.Float32
        && x.Param.is_contiguous() && (x.Param.grad is not { } g || (g.dtype == ScalarType.Float32 && g.is_contiguous())));

    static unsafe Span<float> Floats(Tensor t) => new((void*)TensorMemory.Address(t), checked((int)t.numel()));

    /// <summary>The same formulas as the operator path: decay, m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
    /// p ← p − lr/bc1 · m / (√v/√bc2 + ε).</summary>
    unsafe void StepDirect(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, double lr, double bc1, double bc2)
    {
        float* p = (float*)TensorMemory.Address(param), g = (float*)TensorMemory.Address(grad);
        float* m = (float*)TensorMemory.Address(expAvg), v = (float*)TensorMemory.Address(expAvgSq);
        long n = param.numel();
        float decay = WeightDecay > 0 && param.dim() >= 2 ? (float)(1 - lr * WeightDecay) : 1f;
        float b1 = (float)Beta1, b2 = (float)Beta2, c1 = (float)(1 - Beta1), c2 = (float)(1 - Beta2);
        float rsqrtBc2 = (float)(1 / Math.Sqrt(bc2)), eps = (float)Eps, step = (float)(-lr / bc1);
        const int V = 8;
        long i = 0;
        for (; i + V <= n; i += V)
        {
            var gv = Vector256.Load(g + i);
            var mv = Vector256.Load(m + i) * b1 + gv * c1;
            var vv = Vector256.Load(v + i) * b2 + gv * gv * c2;
            mv.Store(m + i);
            vv.Store(v + i);
            var denom = Vector256.Sqrt(vv) * rsqrtBc2 + Vector256.Create(eps);
            (Vector256.Load(p + i) * decay + mv / denom * step).Store(p + i);
        }
        for (; i < n; i++)
        {
            m[i] = m[i] * b1 + g[i] * c1;
            v[i] = v[i] * b2 + g[i] * g[i] * c2;
            p[i] = p[i] * decay + m[i] / (MathF.Sqrt(v[i]) * rsqrtBc2 + eps) * step;
        }
    }
}
