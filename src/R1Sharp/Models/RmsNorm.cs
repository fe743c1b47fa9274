using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>RMSNorm with HF's parameter name (weight), as Qwen2RMSNorm/LlamaRMSNorm: <see cref="Ops.RmsNorm"/>.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly double eps;
    public readonly TorchSharp.Modules.Parameter weight;

    public RmsNorm(long dim, double eps, ScalarType dtype = ScalarType.Float32) : base("RMSNorm")
    {
        this.eps = eps;
        weight = new TorchSharp.Modules.Parameter(ones(dim, dtype: dtype));
        register_parameter("weight", weight);
    }

    public double Eps => eps;

    public override Tensor forward(Tensor x) => Ops.RmsNorm(x, weight, eps);
}
