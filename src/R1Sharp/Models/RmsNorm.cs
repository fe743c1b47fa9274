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
        if (SmallInference.Applies(x, weight)) return Direct(x);
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
        nint src = SmallInference.Pointer(x), dst = SmallInference.Pointer(output), w = SmallInference.Pointer(weight);
        for (long r = 0; r < rows; r++)
        {
            nint xr = src + (nint)(r * d * (bf16 ? 2 : 4)), yr = dst + (nint)(r * d * (bf16 ? 2 : 4));
            float sum = 0;
            for (int i = 0; i < d; i++) { float v = SmallInference.Load(xr, i, bf16); sum += v * v; }
            float inv = 1f / MathF.Sqrt(sum / d + (float)eps);
            for (int i = 0; i < d; i++)
            {
                float h = SmallInference.Round(SmallInference.Load(xr, i, bf16) * inv, bf16);
                SmallInference.Store(yr, i, SmallInference.Load(w, i, bf16) * h, bf16);
            }
        }
        return output;
    }
}

/// <summary>
/// Elementwise operators of a decode step computed directly on the tensors' memory: at a few rows, libtorch's
/// per-operator dispatch costs more than the arithmetic. Float32 or bfloat16 on the CPU, contiguous, no autograd;
/// each result rounded to the dtype exactly where libtorch's operator would round it.
/// </summary>
internal static unsafe class SmallInference
{
    /// <summary>Above this many elements libtorch's vectorised, parallel operators win.</summary>
    public const long MaxElements = 1 << 16;

    public static bool Applies(Tensor x, params Tensor[] others)
    {
        if (x.device_type != DeviceType.CPU || (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.BFloat16)
            || x.numel() > MaxElements || !x.is_contiguous() || (is_grad_enabled() && x.requires_grad)) return false;
        foreach (var t in others)
            if (t.dtype != x.dtype || t.device_type != DeviceType.CPU || !t.is_contiguous() || (is_grad_enabled() && t.requires_grad))
                return false;
        return true;
    }

    public static nint Pointer(Tensor t) => (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(
        ref System.Runtime.InteropServices.MemoryMarshal.GetReference(t.bytes));

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float Load(nint p, long i, bool bf16) => bf16 ? Bf16.Scalar(p, (int)i) : ((float*)p)[i];

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static void Store(nint p, long i, float v, bool bf16)
    {
        if (bf16) Bf16.Store(p, i, v); else ((float*)p)[i] = v;
    }

    /// <summary>v rounded to the dtype and back (identity for float32).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float Round(float v, bool bf16) => bf16 ? BitConverter.Int32BitsToSingle(Bf16.FromFloat(v) << 16) : v;
}
