using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>RMSNorm as Qwen2RMSNorm/LlamaRMSNorm: normalise in float32, cast back, then scale by weight.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double eps;
    public readonly TorchSharp.Modules.Parameter weight;

    public RmsNorm(long dim, double eps) : base("RMSNorm")
    {
        this.eps = eps;
        weight = new TorchSharp.Modules.Parameter(ones(dim));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var dtype = x.dtype;
        var h = x.to(ScalarType.Float32);
        var variance = h.pow(2).mean([-1L], keepdim: true);
        h = h * (variance + eps).rsqrt();
        return (weight * h.to(dtype)).MoveToOuterDisposeScope();
    }
}
