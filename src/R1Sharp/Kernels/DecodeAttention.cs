using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// Attention of one new token per row over the KV cache, on the CPU without autograd: the decode step's attention in
/// one pass over the cached keys and values instead of a dozen libtorch operators (two batched matmuls, casts,
/// scale, mask, softmax, reshapes), whose dispatch cost more than the arithmetic at this size (bench: profile
/// --parts). Same formula and rounding points as the libtorch path of <see cref="Ops.Attention"/>: scores = q·k rounded to
/// the model dtype, then in float32 scaled, masked and softmaxed, probabilities rounded to the model dtype, output
/// accumulated in float32 and rounded once.
/// </summary>
public static unsafe class DecodeAttention
{
    /// <summary>Whether <see cref="Run"/> applies: one query per row, float32 or bfloat16 on the CPU, keys and values
    /// laid out as a cache's rows (each position's head_dim values contiguous, positions one after another), no autograd.</summary>
    public static bool Applies(Tensor q, Tensor keys, Tensor values)
    {
        long hd = q.size(3);
        return q.size(2) == 1 && (q.dtype == ScalarType.Float32 || q.dtype == ScalarType.BFloat16) && keys.dtype == q.dtype
            && values.dtype == q.dtype && q.device_type == DeviceType.CPU && keys.device_type == DeviceType.CPU
            && hd % 8 == 0 && keys.size(3) == hd && values.size(3) % 8 == 0 && CacheLayout(keys) && CacheLayout(values)
            && Avx2.IsSupported && Fma.IsSupported && !(is_grad_enabled() && q.requires_grad);
    }

    // [B, KV, L, D] with each position's D values contiguous and positions at a fixed stride of at least D: a cache's
    // rows narrowed to their first L positions (rows and heads strided), or MLA's latent, whose values are the first
    // kv_lora_rank of each cached [latent; k_pe] entry.
    static bool CacheLayout(Tensor t) => t.dim() == 4 && t.stride(3) == 1 && t.stride(2) >= t.size(3);

    /// <param name="q">[B, heads, 1, headDim] after RoPE</param>
    /// <param name="keys">[B, kvHeads, L, headDim]: every position attended; a view of a cache (strided rows and heads)</param>
    /// <param name="values">the same for values [B, kvHeads, L, valueDim] (valueDim may differ from headDim, as in MLA)</param>
    /// <param name="mask">additive float32 [B, 1, 1, 1, L]</param>
    /// <param name="scale">the softmax scale (1/√headDim for standard attention)</param>
    /// <returns>[B, 1, heads·valueDim] in q's dtype</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public static Tensor Run(Tensor q, Tensor keys, Tensor values, Tensor mask, double scale)
    {
        int b = (int)q.size(0), heads = (int)q.size(1), hd = (int)q.size(3), dv = (int)values.size(3);
        int kvHeads = (int)keys.size(1), length = (int)keys.size(2);
        bool bf16 = q.dtype == ScalarType.BFloat16;
        using var scope = NewDisposeScope();
        var qc = q.contiguous();
        var m = mask.to(ScalarType.Float32).contiguous();
        var o = empty([b, 1, heads * dv], dtype: q.dtype);
        nint qp = TensorMemory.Address(qc), kp = TensorMemory.Address(keys), vp = TensorMemory.Address(values), mp = TensorMemory.Address(m), op = TensorMemory.Address(o);
        int es = bf16 ? 2 : 4, groups = heads / kvHeads;
        var layout = new Layout(hd, dv, keys.stride(2), values.stride(2));
        long kRow = keys.stride(0), kHead = keys.stride(1), vRow = values.stride(0), vHead = values.stride(1);
        float s = (float)scale;
        void Head(int bh)
        {
            int row = bh / heads, h = bh % heads, kvHead = h / groups;
            long kOffset = row * kRow + kvHead * kHead, vOffset = row * vRow + kvHead * vHead;
            nint qh = qp + (nint)((long)bh * hd * es), kh = kp + (nint)(kOffset * es), vh = vp + (nint)(vOffset * es);
            nint oh = op + (nint)((long)bh * dv * es);
            float* mr = (float*)mp + (long)row * length;
            if (bf16) One<Bf16>(qh, kh, vh, mr, oh, length, layout, s);
            else One<F32>(qh, kh, vh, mr, oh, length, layout, s);
        }
        // Threads only pay off once there is real work: a 0.5B shape at batch 1 is 14 heads × a few hundred keys.
        if ((long)b * heads * length * (hd + dv) >= 1 << 18 && get_num_threads() > 1)
            KernelThreads.For(b * heads, get_num_threads(), Head);
        else
            for (int bh = 0; bh < b * heads; bh++) Head(bh);
        GC.KeepAlive(keys); GC.KeepAlive(values); // read only through their addresses above
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>Head sizes and position strides (in elements) of the keys and values.</summary>
    internal readonly record struct Layout(int KeyDim, int ValueDim, long KeyStride, long ValueStride);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void One<TW>(nint q, nint k, nint v, float* mask, nint o, int length, Layout layout, float scale) where TW : struct, IWeights
    {
        int hd = layout.KeyDim, dv = layout.ValueDim;
        nint keyBytes = (nint)(layout.KeyStride * TW.ElementSize), valueBytes = (nint)(layout.ValueStride * TW.ElementSize);
        Span<float> qf = stackalloc float[hd];
        Span<float> acc = stackalloc float[dv];
        float[]? rented = null;
        Span<float> p = length <= 4096 ? stackalloc float[length] : (rented = System.Buffers.ArrayPool<float>.Shared.Rent(length));
        bool bf16 = TW.ElementSize == 2;
        for (int d = 0; d < hd; d++) qf[d] = TW.Scalar(q, d);
        fixed (float* qv = qf, av = acc)
        {
            // q·k rounded to the model dtype (as the dtype's matmul returns it), then scaled and masked in float32.
            float Score(float dot, int key) => (bf16 ? RoundBf16(dot) : dot) * scale + mask[key];
            float max = float.NegativeInfinity;
            int j = 0;
            // Four keys at a time: four accumulators, reduced together (one shuffle tree for four scores).
            for (; j + 4 <= length; j += 4)
            {
                var s0 = Vector256<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
                nint k0 = k + j * keyBytes, rowBytes = keyBytes;
                for (int d = 0; d < hd; d += 8)
                {
                    var qd = Avx.LoadVector256(qv + d);
                    s0 = Fma.MultiplyAdd(qd, TW.Load(k0, d), s0);
                    s1 = Fma.MultiplyAdd(qd, TW.Load(k0 + rowBytes, d), s1);
                    s2 = Fma.MultiplyAdd(qd, TW.Load(k0 + 2 * rowBytes, d), s2);
                    s3 = Fma.MultiplyAdd(qd, TW.Load(k0 + 3 * rowBytes, d), s3);
                }
                var h = Avx.HorizontalAdd(Avx.HorizontalAdd(s0, s1), Avx.HorizontalAdd(s2, s3));
                var four = Sse.Add(h.GetLower(), h.GetUpper()); // scores of keys j..j+3
                for (int i = 0; i < 4; i++) max = Math.Max(max, p[j + i] = Score(four.GetElement(i), j + i));
            }
            for (; j < length; j++)
            {
                var s = Vector256<float>.Zero;
                for (int d = 0; d < hd; d += 8) s = Fma.MultiplyAdd(Avx.LoadVector256(qv + d), TW.Load(k + j * keyBytes, d), s);
                max = Math.Max(max, p[j] = Score(Vector256.Sum(s), j));
            }
            float sum = 0;
            for (j = 0; j < length; j++) { float e = MathF.Exp(p[j] - max); p[j] = e; sum += e; }
            for (int d = 0; d < dv; d += 8) Avx.Store(av + d, Vector256<float>.Zero);
            for (j = 0; j < length; j++)
            {
                float pj = p[j] / sum;
                if (bf16) pj = RoundBf16(pj);
                if (pj == 0) continue;
                var pv = Vector256.Create(pj);
                nint vj = v + j * valueBytes;
                for (int d = 0; d < dv; d += 8) Avx.Store(av + d, Fma.MultiplyAdd(pv, TW.Load(vj, d), Avx.LoadVector256(av + d)));
            }
            for (int d = 0; d < dv; d++)
                if (bf16) ((ushort*)o)[d] = Bf16.FromFloat(av[d]); else ((float*)o)[d] = av[d];
        }
        if (rented != null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
    }

    static float Bf16ToFloat(ushort x) => BitConverter.Int32BitsToSingle(x << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float RoundBf16(float f) => Bf16ToFloat(Bf16.FromFloat(f));

}
