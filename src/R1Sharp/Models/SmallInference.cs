using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>The address of a contiguous CPU tensor's data (native memory: the GC never moves it), for the kernels
/// that work on tensors' memory directly.</summary>
internal static unsafe class TensorMemory
{
    public static nint Address(Tensor t) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
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
