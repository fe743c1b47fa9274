using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Models;

/// <summary>
/// nn.Linear with the same parameter names (weight [out, in], bias [out]), plus a decode fast path: a float32 or
/// bfloat16 weight on the CPU multiplied by a few rows without autograd goes through <see cref="Gemv"/>, which reads
/// the weight at memory speed. Everything else (training, prefill, GPUs) is libtorch's F.linear.
/// Weights start at zero: a model is either loaded from a checkpoint or initialised with CausalLM.InitializeRandom,
/// so a random init here would only cost time.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    /// <summary>Above this many rows the matmul is compute-bound and libtorch's GEMM is the better choice.</summary>
    public const int FastPathMaxRows = 16;

    public readonly TorchSharp.Modules.Parameter weight;
    public readonly TorchSharp.Modules.Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias) : base("Linear")
    {
        weight = new TorchSharp.Modules.Parameter(zeros(outFeatures, inFeatures));
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new TorchSharp.Modules.Parameter(zeros(outFeatures));
            register_parameter("bias", bias);
        }
    }

    public override Tensor forward(Tensor x) => Apply(x, weight, bias);

    /// <summary>x · weightᵀ + bias, through the bfloat16 decode kernel when it applies (also used for a tied lm_head).</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null)
    {
        long k = x.shape[^1];
        long rows = k == 0 ? 0 : x.numel() / k;
        bool fast = (weight.dtype == ScalarType.BFloat16 || weight.dtype == ScalarType.Float32) && x.dtype == weight.dtype
                    && weight.device_type == DeviceType.CPU && weight.is_contiguous() && Gemv.Supported
                    && rows > 0 && rows <= FastPathMaxRows && !(is_grad_enabled() && (weight.requires_grad || x.requires_grad))
                    // measured (bench notes in Gemv): for one bf16 row libtorch's own kernel reads faster than ours
                    && !(rows == 1 && weight.dtype == ScalarType.BFloat16);
        return fast ? ForwardGemv(x, weight, bias, rows, k) : F.linear(x, weight, bias);
    }

    static unsafe Tensor ForwardGemv(Tensor x, Tensor weight, Tensor? bias, long rows, long k)
    {
        long n = weight.shape[0];
        using var scope = NewDisposeScope();
        var xf = x.reshape(rows, k).to(ScalarType.Float32).contiguous();
        var yf = empty(rows, n, dtype: ScalarType.Float32);
        fixed (byte* wp = weight.bytes)
        fixed (byte* xp = xf.bytes)
        fixed (byte* yp = yf.bytes)
        {
            if (weight.dtype == ScalarType.BFloat16) Gemv.RunBf16((ushort*)wp, (float*)xp, (float*)yp, (int)rows, (int)n, (int)k, get_num_threads());
            else Gemv.RunF32((float*)wp, (float*)xp, (float*)yp, (int)rows, (int)n, (int)k, get_num_threads());
        }
        if (bias is not null) yf.add_(bias);       // added in float32 and rounded once, as addmm does
        long[] shape = [.. x.shape[..^1], n];
        return yf.to(x.dtype).reshape(shape).MoveToOuterDisposeScope();
    }
}
