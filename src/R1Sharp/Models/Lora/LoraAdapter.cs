using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Models.Lora;

/// <summary>
/// One low-rank update of one linear layer (Hu et al. 2021, eq. 3): h = W₀x + (α/r)·B·A·x, with A [r, in] and B
/// [out, r] in float32 whatever the base's dtype (PEFT's layout: lora_A.weight, lora_B.weight). B starts at zero, so
/// a fresh adapter leaves the model's output exactly as it was.
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    public Tensor A { get; }
    public Tensor B { get; }
    public double Scaling { get; }
    public double Dropout { get; }

    public LoraAdapter(Tensor a, Tensor b, double scaling, double dropout)
    {
        A = a; B = b; Scaling = scaling; Dropout = dropout;
    }

    /// <summary>A fresh adapter as PEFT initialises one (init_lora_weights=True): A from kaiming_uniform(a=√5), i.e.
    /// uniform(±1/√in), B zero.</summary>
    public static LoraAdapter Fresh(long inFeatures, long outFeatures, LoraConfig config, Generator generator, Device device)
    {
        double bound = 1.0 / Math.Sqrt(inFeatures);
        using var width = (2 * bound).ToScalar(); // held for the calls (HeldScalars)
        using var low = bound.ToScalar();
        var a = rand(config.R, inFeatures, dtype: ScalarType.Float32, generator: generator).mul(width).sub(low).to(device).detach().requires_grad_(true);
        var b = zeros(outFeatures, config.R, dtype: ScalarType.Float32, device: device).requires_grad_(true);
        return new LoraAdapter(a.DetachFromDisposeScope(), b.DetachFromDisposeScope(), config.Scaling, config.LoraDropout);
    }

    /// <summary>(α/r)·B·A·dropout(x) in x's dtype, computed in float32 (PEFT casts x to the adapter's dtype).</summary>
    public Tensor Delta(Tensor x, Generator? dropout)
    {
        var xf = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        if (dropout is not null && Dropout > 0) xf = DropoutFrom(xf, Dropout, dropout);
        using var scaling = Scaling.ToScalar(); // held for the call (HeldScalars)
        var d = F.linear(F.linear(xf, A), B).mul_(scaling);
        return d.dtype == x.dtype ? d : d.to(x.dtype);
    }

    /// <summary>y + (α/r)·B·A·dropout(x) from x already in float32 (<paramref name="xf"/>, shared by the layers that
    /// read the same input), summed in float32 and rounded once to y's dtype, as PEFT does (result + lora_B(lora_A(x))
    /// · scaling promotes to float32, then is cast back). Four operators where <see cref="Delta"/> + add take six.
    /// Without autograd y is updated in place.</summary>
    public Tensor AddTo(Tensor y, Tensor xf, Generator? dropout)
    {
        if (dropout is not null && Dropout > 0) xf = DropoutFrom(xf, Dropout, dropout);
        var d = F.linear(F.linear(xf, A), B);
        // The scaling as a Scalar held until the call returns: an implicit temporary can be finalized while libtorch reads it.
        using var scaling = Scaling.ToScalar();
        if (!is_grad_enabled()) return y.add_(d, scaling);
        var sum = y.add(d, scaling); // float32 by type promotion
        return sum.dtype == y.dtype ? sum : sum.to(y.dtype);
    }

    /// <summary>F.dropout's formula (each value zeroed with probability p, the others scaled by 1/(1 − p)) with the mask
    /// drawn from <paramref name="generator"/>: libtorch's global generator is shared by every thread of the process,
    /// so another job drawing from it mid-step made a resumed run's masks differ from the uninterrupted run's.</summary>
    static Tensor DropoutFrom(Tensor x, double p, Generator generator)
    {
        using var mask = empty_like(x).bernoulli_(1 - p, generator);
        using var scale = (1 / (1 - p)).ToScalar(); // held for the call (see Ops.Add)
        return x.mul(mask).mul_(scale);
    }

    /// <summary>ΔW = scaling·B·A [out, in] in float32.</summary>
    public Tensor DeltaWeight()
    {
        using var _ = no_grad();
        using var scaling = Scaling.ToScalar(); // held for the call (HeldScalars)
        return B.matmul(A).mul_(scaling);
    }

    public void Dispose() { A.Dispose(); B.Dispose(); }
}

/// <summary>
/// The adapters a linear layer carries (one per loaded adapter) and the routing that chooses between them: all rows
/// through one adapter (training; a single --adapter), per-row adapters (a server choosing the adapter per request,
/// as vLLM's multi-LoRA), or none (the base: GRPO's reference policy).
/// </summary>
public sealed class LoraLayer(string moduleName, LoraRouting routing)
{
    public string ModuleName { get; } = moduleName;
    public List<LoraAdapter> Adapters { get; } = [];
    public LoraRouting Routing { get; } = routing;

    /// <summary>y + the routed adapters' updates of x (x [rows, ..., in], y [rows, ..., out]); <paramref name="xf"/>: x
    /// in float32 when the caller has it (layers that share an input convert it once).</summary>
    public Tensor Apply(Tensor x, Tensor y, Tensor? xf = null)
    {
        var r = Routing;
        if (r.PerRow is not { } rows)
            return r.Active is int a && a >= 0 && a < Adapters.Count && Adapters[a] is { } one ? one.AddTo(y, xf ?? ToFloat32(x), r.DropoutSource) : y;
        if (rows.Length != x.size(0)) throw new InvalidOperationException($"{ModuleName}: adapter routing for {rows.Length} rows, the batch has {x.size(0)}");
        Tensor? outp = null;
        foreach (int a in rows.Distinct())
        {
            if (a < 0 || a >= Adapters.Count || Adapters[a] is null) continue;
            var idx = tensor(Enumerable.Range(0, rows.Length).Where(i => rows[i] == a).Select(i => (long)i).ToArray(), device: x.device);
            var d = Adapters[a].Delta(x.index_select(0, idx), r.DropoutSource);
            outp = (outp ?? y.clone()).index_add_(0, idx, d, HeldScalars.One);
        }
        return outp ?? y;
    }

    /// <summary>Whether the layer applies an adapter to every row (the common case: one adapter, training or rollouts).</summary>
    public bool AppliesOne => Routing.PerRow is null && Routing.Active is int a && a >= 0 && a < Adapters.Count && Adapters[a] is not null;

    public static Tensor ToFloat32(Tensor x) => x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
}

/// <summary>Which adapter the layers of one model apply: shared by all of its <see cref="LoraLayer"/>s.</summary>
public sealed class LoraRouting
{
    /// <summary>The adapter every row goes through; null or −1: none (the base model).</summary>
    public int? Active { get; set; }
    /// <summary>An adapter index per batch row (−1: the base), overriding <see cref="Active"/>.</summary>
    public int[]? PerRow { get; set; }
    /// <summary>Dropout on (training forward passes).</summary>
    public bool Training { get; set; }
    /// <summary>Where the dropout masks come from: this model's own generator, seeded per optimizer step by the trainer
    /// (<see cref="Training.PeftOptions.DropoutScope"/>) and replayed by checkpointed recomputation.</summary>
    public Generator DropoutGenerator { get; } = new(0);
    /// <summary>The generator while <see cref="Training"/>, else null (no dropout).</summary>
    public Generator? DropoutSource => Training ? DropoutGenerator : null;
}
