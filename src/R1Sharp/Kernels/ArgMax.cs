using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// Greedy decoding's argmax over one row of float32 logits read in place: libtorch's argmax over a 129k vocabulary,
/// its copy to the CPU and the item read cost ~0.2 ms a step here, more than one layer of the scaled DeepSeek model.
/// Two vector passes, the maximum then its first position: the same index libtorch returns (the first maximal value).
/// </summary>
public static unsafe class ArgMax
{
    /// <summary>float32 [B, V] on the CPU, contiguous, AVX available.</summary>
    public static bool Applies(Tensor logits) =>
        Avx.IsSupported && logits.device_type == DeviceType.CPU && logits.dtype == ScalarType.Float32 && logits.dim() == 2
        && logits.is_contiguous() && logits.size(1) > 0;

    /// <summary>The first index of row's largest value; false when the row holds a NaN (libtorch ranks NaN above
    /// everything: the caller takes its path).</summary>
    public static bool Row(Tensor logits, int row, out int index)
    {
        int v = (int)logits.size(1);
        float* p = (float*)TensorMemory.Address(logits) + (long)row * v;
        index = Find(p, v);
        GC.KeepAlive(logits);
        return index >= 0;
    }

    /// <returns>the index, or −1 when a NaN is present</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    static int Find(float* p, int n)
    {
        var max = Vector256.Create(float.NegativeInfinity);
        var nan = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var x = Avx.LoadVector256(p + i);
            nan = Avx.Or(nan, Avx.CompareUnordered(x, x));
            max = Avx.Max(max, x);
        }
        if (Avx.MoveMask(nan) != 0) return -1;
        float best = float.NegativeInfinity;
        for (int j = 0; j < 8; j++) best = Math.Max(best, max.GetElement(j));
        for (int j = i; j < n; j++)
        {
            if (float.IsNaN(p[j])) return -1;
            best = Math.Max(best, p[j]);
        }
        var target = Vector256.Create(best);
        for (i = 0; i + 8 <= n; i += 8)
        {
            int mask = Avx.MoveMask(Avx.CompareEqual(Avx.LoadVector256(p + i), target));
            if (mask != 0) return i + System.Numerics.BitOperations.TrailingZeroCount(mask);
        }
        for (; i < n; i++) if (p[i] == best) return i;
        return 0; // every value −∞: libtorch's answer is index 0 too
    }
}
