using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// nn.Linear with the same parameter names (weight [out, in], bias [out]); the product is <see cref="Ops.Linear"/>.
/// Weights start at zero: a model is either loaded from a checkpoint or initialised with
/// <see cref="CausalLM.InitializeRandom"/>, so a random init here would only cost time.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    public readonly TorchSharp.Modules.Parameter weight;
    public readonly TorchSharp.Modules.Parameter? bias;

    /// <param name="dtype">the parameters' type, given explicitly: libtorch's default dtype is one setting for the
    /// whole process, so a module built from it takes whatever another thread last set there</param>
    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32) : base("Linear")
    {
        weight = new TorchSharp.Modules.Parameter(zeros(outFeatures, inFeatures, dtype: dtype));
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new TorchSharp.Modules.Parameter(zeros(outFeatures, dtype: dtype));
            register_parameter("bias", bias);
        }
    }

    public override Tensor forward(Tensor x) => Ops.Linear(x, weight, bias);

    /// <summary>Several projections of the same x (q/k/v, gate/up) in one dispatch: <see cref="Ops.Linears"/>.</summary>
    public static Tensor[] ApplyMany(Tensor x, params Linear[] layers) =>
        Ops.Linears(x, layers.Select(l => (Tensor)l.weight).ToArray(), layers.Select(l => (Tensor?)l.bias).ToArray());
}
