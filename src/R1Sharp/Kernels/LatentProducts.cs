using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// The two small products of absorbed MLA decode (DeepSeek-V2 §2.1.3), read straight from kv_b_proj's weight
/// [heads·(nope + v), rank] without widening it: q_nope·W_UK per head (W_UK = the head's first nope rows, so a sum of
/// rows scaled by q) and the attended latent·W_UVᵀ per head (the head's last v rows, so one dot product per row). The
/// libtorch path widens the whole weight to float32 twice per layer and step, because its bfloat16 matmul is slow at
/// these shapes; at batch 1 that widening cost more than the rest of the layer's attention. Accumulation in float32,
/// rounded once to the input's dtype, as that path does.
/// </summary>
public static unsafe class LatentProducts
{
    /// <summary>Whether the kernels apply: one query per row, float32 or bfloat16 on the CPU with AVX2, sizes in
    /// multiples of 8, no autograd.</summary>
    public static bool Applies(Tensor qNope, Tensor kvB, long rank)
    {
        long nope = qNope.size(3);
        return qNope.size(2) == 1 && (qNope.dtype == ScalarType.Float32 || qNope.dtype == ScalarType.BFloat16) && kvB.dtype == qNope.dtype
            && qNope.device_type == DeviceType.CPU && kvB.device_type == DeviceType.CPU && kvB.is_contiguous()
            && rank % 8 == 0 && nope % 8 == 0 && Avx2.IsSupported && Fma.IsSupported
            && !(is_grad_enabled() && (qNope.requires_grad || kvB.requires_grad));
    }

    /// <summary>q_nope·W_UK: [B, H, 1, nope] → [B, H, 1, rank] in q's dtype.</summary>
    public static Tensor Absorb(Tensor qNope, Tensor kvB, int rank, int dv)
    {
        int b = (int)qNope.size(0), heads = (int)qNope.size(1), nope = (int)qNope.size(3);
        bool bf16 = qNope.dtype == ScalarType.BFloat16;
        using var scope = NewDisposeScope();
        var q = qNope.contiguous();
        var o = empty([b, heads, 1, rank], dtype: qNope.dtype);
        nint qp = TensorMemory.Address(q), wp = TensorMemory.Address(kvB), op = TensorMemory.Address(o);
        int es = bf16 ? 2 : 4;
        void Head(int bh)
        {
            int h = bh % heads;
            nint w = wp + (nint)((long)h * (nope + dv) * rank * es);
            nint qh = qp + (nint)((long)bh * nope * es), oh = op + (nint)((long)bh * rank * es);
            if (bf16) AbsorbOne<Bf16>(qh, w, oh, nope, rank);
            else AbsorbOne<F32>(qh, w, oh, nope, rank);
        }
        Run(b * heads, (long)b * heads * nope * rank, Head);
        GC.KeepAlive(kvB);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>The attended latents [B, 1, H·rank] times each head's W_UVᵀ: [B, 1, H·v] in their dtype.</summary>
    public static Tensor Expand(Tensor attended, Tensor kvB, int heads, int nope, int rank, int dv)
    {
        int b = (int)attended.size(0);
        bool bf16 = attended.dtype == ScalarType.BFloat16;
        using var scope = NewDisposeScope();
        var a = attended.contiguous();
        var o = empty([b, 1, heads * dv], dtype: attended.dtype);
        nint ap = TensorMemory.Address(a), wp = TensorMemory.Address(kvB), op = TensorMemory.Address(o);
        int es = bf16 ? 2 : 4;
        void Head(int bh)
        {
            int h = bh % heads;
            nint w = wp + (nint)(((long)h * (nope + dv) + nope) * rank * es);
            nint ah = ap + (nint)((long)bh * rank * es), oh = op + (nint)((long)bh * dv * es);
            if (bf16) ExpandOne<Bf16>(ah, w, oh, rank, dv);
            else ExpandOne<F32>(ah, w, oh, rank, dv);
        }
        Run(b * heads, (long)b * heads * dv * rank, Head);
        GC.KeepAlive(kvB);
        return o.MoveToOuterDisposeScope();
    }

    static void Run(int tasks, long multiplyAdds, Action<int> head)
    {
        // Threads pay off only past a few hundred thousand multiply-adds (the scaled bench model's 4 heads × 128 × 128
        // at batch 1 is done sooner alone than the workers wake).
        if (multiplyAdds >= 1 << 18 && get_num_threads() > 1) KernelThreads.For(tasks, get_num_threads(), head);
        else for (int i = 0; i < tasks; i++) head(i);
    }

    /// <summary>out[0..rank) = Σ_n q[n]·W[n, 0..rank): the rows of W_UK scaled and summed, read once, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AbsorbOne<TW>(nint q, nint w, nint o, int nope, int rank) where TW : struct, IWeights
    {
        float* acc = stackalloc float[rank];
        new Span<float>(acc, rank).Clear();
        for (int n = 0; n < nope; n++)
        {
            var s = Vector256.Create(TW.Scalar(q, n));
            nint row = w + (nint)((long)n * rank * TW.ElementSize);
            for (int r = 0; r < rank; r += 8)
                Avx.Store(acc + r, Fma.MultiplyAdd(s, TW.Load(row, r), Avx.LoadVector256(acc + r)));
        }
        for (int r = 0; r < rank; r++) TW.Store(o, r, acc[r]);
    }

    /// <summary>out[j] = a·W[j, 0..rank) for j &lt; v: one dot product per row of W_UV.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ExpandOne<TW>(nint a, nint w, nint o, int rank, int dv) where TW : struct, IWeights
    {
        float* x = stackalloc float[rank];
        for (int r = 0; r < rank; r += 8) Avx.Store(x + r, TW.Load(a, r));
        for (int j = 0; j < dv; j++)
        {
            nint row = w + (nint)((long)j * rank * TW.ElementSize);
            var sum = Vector256<float>.Zero;
            for (int r = 0; r < rank; r += 8) sum = Fma.MultiplyAdd(Avx.LoadVector256(x + r), TW.Load(row, r), sum);
            TW.Store(o, j, Vector256.Sum(sum));
        }
    }
}
