using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>RMSNorm as Qwen2RMSNorm/LlamaRMSNorm: normalise in float32, cast back, then scale by weight.</summary>
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

    public override Tensor forward(Tensor x)
    {
        if (SmallInference.Applies(x, weight)) return Direct(x);
        if (TrainingKernels.Applies(x, weight)) return TrainingKernels.RmsNorm(x, weight, eps);
        using var scope = NewDisposeScope();
        var dtype = x.dtype;
        var h = x.to(ScalarType.Float32);
        var variance = h.pow(2).mean([-1L], keepdim: true);
        h = h * (variance + eps).rsqrt();
        return (weight * h.to(dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>The same formula in one pass per row, for the few rows of a decode step (eight libtorch operators
    /// there cost ~45 µs a call, 49 calls a step). Each value is rounded where libtorch rounds it: x·rsqrt(var + eps)
    /// in float32, cast to the model dtype, times the weight rounded again. Only the variance's summation order
    /// differs (a float32 sum either way).</summary>
    unsafe Tensor Direct(Tensor x)
    {
        int d = (int)x.size(-1);
        long rows = x.numel() / d;
        var output = empty_like(x);
        bool bf16 = x.dtype == ScalarType.BFloat16;
        long rowBytes = (long)d * (bf16 ? 2 : 4);
        nint src = TensorMemory.Address(x), dst = TensorMemory.Address(output), w = TensorMemory.Address(weight);
        for (long r = 0; r < rows; r++)
        {
            nint xr = src + (nint)(r * rowBytes), yr = dst + (nint)(r * rowBytes);
            float sum = 0;
            for (int i = 0; i < d; i++) { float v = SmallInference.Load(xr, i, bf16); sum += v * v; }
            float inv = 1f / MathF.Sqrt(sum / d + (float)eps);
            for (int i = 0; i < d; i++)
            {
                float h = SmallInference.Round(SmallInference.Load(xr, i, bf16) * inv, bf16);
                SmallInference.Store(yr, i, SmallInference.Load(w, i, bf16) * h, bf16);
            }
        }
        GC.KeepAlive(x); // read only through its address above
        return output;
    }
}
