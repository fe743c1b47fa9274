using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(nint p, long i, bool bf16) => bf16 ? Bf16.Scalar(p, (int)i) : ((float*)p)[i];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(nint p, long i, float v, bool bf16)
    {
        if (bf16) Bf16.Store(p, i, v); else ((float*)p)[i] = v;
    }

    /// <summary>v rounded to the dtype and back (identity for float32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float v, bool bf16) => bf16 ? BitConverter.Int32BitsToSingle(Bf16.FromFloat(v) << 16) : v;
}

/// <summary>RMSNorm and RoPE for a decode step's few rows, in one pass each (eight and seven libtorch operators there
/// cost ~45 µs a call, dozens of calls a step). Each value is rounded where libtorch's operators round it.</summary>
internal static unsafe class SmallOps
{
    /// <summary>x·rsqrt(mean(x²) + eps) in float32, cast to the model dtype, times the weight rounded again. Only the
    /// variance's summation order differs from libtorch's (a float32 sum either way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps)
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
        GC.KeepAlive(x); GC.KeepAlive(weight); // read only through their addresses above
        return output;
    }

    /// <summary>h = x + y rounded to the dtype (libtorch's add), and <see cref="RmsNorm"/> of h: a pre-norm layer's
    /// residual add and its next norm in one pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor y, Tensor weight, double eps)
    {
        int d = (int)x.size(-1);
        long rows = x.numel() / d;
        var sum = empty_like(x);
        var output = empty_like(x);
        bool bf16 = x.dtype == ScalarType.BFloat16;
        long rowBytes = (long)d * (bf16 ? 2 : 4);
        nint xp = TensorMemory.Address(x), yp = TensorMemory.Address(y), sp = TensorMemory.Address(sum), dst = TensorMemory.Address(output), w = TensorMemory.Address(weight);
        for (long r = 0; r < rows; r++)
        {
            nint xr = xp + (nint)(r * rowBytes), yr = yp + (nint)(r * rowBytes), sr = sp + (nint)(r * rowBytes), or = dst + (nint)(r * rowBytes);
            float squares = 0;
            for (int i = 0; i < d; i++)
            {
                float v = SmallInference.Round(SmallInference.Load(xr, i, bf16) + SmallInference.Load(yr, i, bf16), bf16);
                SmallInference.Store(sr, i, v, bf16);
                squares += v * v;
            }
            float inv = 1f / MathF.Sqrt(squares / d + (float)eps);
            for (int i = 0; i < d; i++)
            {
                float h = SmallInference.Round(SmallInference.Load(sr, i, bf16) * inv, bf16);
                SmallInference.Store(or, i, SmallInference.Load(w, i, bf16) * h, bf16);
            }
        }
        GC.KeepAlive(x); GC.KeepAlive(y); GC.KeepAlive(weight); // read only through their addresses above
        return (sum, output);
    }

    /// <summary>Whether <see cref="Rope"/> applies: x [B, H, T, D] contiguous, cos and sin [B, 1, T, D].</summary>
    public static bool AppliesToRope(Tensor x, Tensor cos, Tensor sin) =>
        SmallInference.Applies(x, cos, sin) && cos.dim() == 4 && x.dim() == 4 && cos.size(1) == 1
        && cos.size(0) == x.size(0) && cos.size(2) == x.size(2) && cos.size(3) == x.size(3);

    /// <summary>x·cos + rotate_half(x)·sin for x [B, H, T, D]: each product rounded to the dtype, then their sum
    /// rounded, as libtorch's three operators round.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public static Tensor Rope(Tensor x, Tensor cos, Tensor sin)
    {
        long b = x.size(0), heads = x.size(1), t = x.size(2);
        int d = (int)x.size(3), half = d / 2;
        bool bf16 = x.dtype == ScalarType.BFloat16;
        var output = empty_like(x);
        nint xp = TensorMemory.Address(x), yp = TensorMemory.Address(output);
        nint cp = TensorMemory.Address(cos), sp = TensorMemory.Address(sin);
        for (long bi = 0; bi < b; bi++)
            for (long h = 0; h < heads; h++)
                for (long ti = 0; ti < t; ti++)
                {
                    long row = ((bi * heads + h) * t + ti) * d, table = (bi * t + ti) * d;
                    for (int i = 0; i < d; i++)
                    {
                        float v = SmallInference.Load(xp, row + i, bf16);
                        float rotated = i < half ? -SmallInference.Load(xp, row + i + half, bf16) : SmallInference.Load(xp, row + i - half, bf16);
                        float a = SmallInference.Round(v * SmallInference.Load(cp, table + i, bf16), bf16);
                        float c = SmallInference.Round(rotated * SmallInference.Load(sp, table + i, bf16), bf16);
                        SmallInference.Store(yp, row + i, a + c, bf16);
                    }
                }
        GC.KeepAlive(x); GC.KeepAlive(cos); GC.KeepAlive(sin); // read only through their addresses above
        return output;
    }
}
