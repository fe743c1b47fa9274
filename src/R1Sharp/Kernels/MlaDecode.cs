using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// A decode step of absorbed multi-head latent attention (DeepSeek-V2 §2.1.2–2.1.3) in one call, from the projections
/// to what o_proj reads: kv_a_layernorm of the new latent and RoPE of its k_pe written straight into the cache, then per
/// row and head RoPE of q_pe, q_nope·W_UK, attention over the cached [c; k_pe] and the attended latent·W_UVᵀ. The
/// unfused path (<see cref="Ops.LatentAttention"/> with its RoPE, norm, cat and cache append around it) is about thirty
/// libtorch operators per layer, whose dispatch costs more than the arithmetic of a batch-1 step. Every value is rounded
/// where that path rounds it (<see cref="SmallOps"/>, <see cref="LatentProducts"/>, <see cref="DecodeAttention"/>,
/// whose loops this reuses), so the two agree to the summation order of the norm's variance.
/// </summary>
public static unsafe class MlaDecode
{
    /// <summary>Multiply-adds of a step from which its (row, head) tasks are shared with the kernel threads: below it
    /// waking them costs more than it saves (bench/README.md, issue 16).</summary>
    public static long MinParallelWork { get; set; } = 1 << 16;

    static readonly AsyncLocal<bool> disabled = new();

    /// <summary>Off: the unfused path, for A/B in tests and the bench. Per async flow, so turning it off changes
    /// nothing for other threads.</summary>
    public static bool Enabled { get => !disabled.Value; set => disabled.Value = !value; }

    /// <summary>Whether <see cref="Run"/> applies: one token per row, float32 or bfloat16 on the CPU with AVX2, contiguous
    /// tensors of one dtype, head sizes in multiples of 8, a float32 mask, no autograd.</summary>
    public static bool Applies(Tensor q, Tensor compressed, Tensor cos, Tensor sin, Tensor kvNorm, Tensor kvB, Tensor cacheLayer, Tensor mask,
        int nope, int rope, int rank)
    {
        var dt = q.dtype;
        if (!Enabled || q.dim() != 3 || q.size(1) != 1 || (dt != ScalarType.Float32 && dt != ScalarType.BFloat16)) return false;
        if (!Avx2.IsSupported || !Fma.IsSupported || rank % 8 != 0 || nope % 8 != 0 || rope % 8 != 0) return false;
        foreach (var t in new[] { compressed, cos, sin, kvNorm, kvB, cacheLayer })
            if (t.dtype != dt || t.device_type != DeviceType.CPU || !t.is_contiguous()) return false;
        return q.device_type == DeviceType.CPU && q.is_contiguous() && mask.dtype == ScalarType.Float32 && mask.is_contiguous()
            && cos.numel() == q.size(0) * rope
            && !(is_grad_enabled() && (q.requires_grad || compressed.requires_grad || kvB.requires_grad || kvNorm.requires_grad));
    }

    /// <param name="q">the query projection [B, 1, H·(nope + rope)], each head's q_nope then q_pe (before RoPE)</param>
    /// <param name="compressed">kv_a_proj_with_mqa's output [B, 1, rank + rope]: the latent before its norm, then k_pe before RoPE</param>
    /// <param name="cos">RoPE tables [B, 1, 1, rope] (rotate_half layout)</param>
    /// <param name="kvNorm">kv_a_layernorm's weight [rank]</param>
    /// <param name="cacheLayer">the layer's cache [maxBatch, 1, capacity, rank + rope]; row r's entry is written at positions[r]</param>
    /// <param name="length">positions attended (the longest row's, this step's included); mask [B, 1, 1, 1, length] hides the rest</param>
    /// <param name="kvB">kv_b_proj's weight [H·(nope + v), rank]</param>
    /// <param name="interleaved">rope_interleave: q_pe and k_pe rotate interleaved pairs, gathered into rotate_half's halves first</param>
    /// <returns>[B, 1, H·v] in q's dtype</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public static Tensor Run(Tensor q, Tensor compressed, Tensor cos, Tensor sin, Tensor kvNorm, double eps, Tensor cacheLayer, int[] positions, int length,
        Tensor kvB, Tensor mask, int heads, int nope, int rope, int dv, bool interleaved, double scale)
    {
        int b = (int)q.size(0), rank = (int)kvB.size(1), width = rank + rope;
        long capacity = cacheLayer.size(2);
        if (mask.numel() != (long)b * length || positions.Length < b || kvB.size(0) != (long)heads * (nope + dv) || q.size(2) != (long)heads * (nope + rope))
            throw new ArgumentException("MLA decode: shapes of the query, mask, positions or kv_b_proj do not agree");
        bool bf16 = q.dtype == ScalarType.BFloat16;
        int es = bf16 ? 2 : 4;
        var o = empty([b, 1, heads * dv], dtype: q.dtype);
        var p = new Pointers(TensorMemory.Address(q), TensorMemory.Address(cos), TensorMemory.Address(sin), TensorMemory.Address(cacheLayer),
            TensorMemory.Address(kvB), TensorMemory.Address(mask), TensorMemory.Address(o));
        nint cp = TensorMemory.Address(compressed), np = TensorMemory.Address(kvNorm);
        // The step's cache entries first: every head of the row attends to its own new position.
        for (int r = 0; r < b; r++)
        {
            nint src = cp + (nint)((long)r * width * es);
            nint dst = p.Cache + (nint)(((long)r * capacity + positions[r]) * width * es);
            RmsNormRow(src, np, dst, rank, (float)eps, bf16);
            RopeRow(src + rank * es, p.Cos + (nint)((long)r * rope * es), p.Sin + (nint)((long)r * rope * es), dst + rank * es, rope, interleaved, bf16);
        }
        var shape = new Shape(heads, nope, rope, rank, dv, length, capacity, interleaved, (float)scale);
        void Head(int bh)
        {
            if (bf16) HeadOne<Bf16>(bh, p, shape); else HeadOne<F32>(bh, p, shape);
        }
        long work = (long)b * heads * ((long)length * (width + rank) + (long)(nope + dv) * rank);
        if (work >= MinParallelWork && get_num_threads() > 1) KernelThreads.For(b * heads, get_num_threads(), Head);
        else for (int bh = 0; bh < b * heads; bh++) Head(bh);
        GC.KeepAlive(q); GC.KeepAlive(compressed); GC.KeepAlive(cos); GC.KeepAlive(sin); GC.KeepAlive(kvNorm);
        GC.KeepAlive(cacheLayer); GC.KeepAlive(kvB); GC.KeepAlive(mask); // read only through their addresses above
        return o;
    }

    readonly record struct Pointers(nint Q, nint Cos, nint Sin, nint Cache, nint KvB, nint Mask, nint Output);

    readonly record struct Shape(int Heads, int Nope, int Rope, int Rank, int Dv, int Length, long Capacity, bool Interleaved, float Scale);

    /// <summary>Row r = bh / heads, head h = bh % heads: [q_nope·W_UK; RoPE(q_pe)] against the row's cached [c; k_pe],
    /// the attended latent times W_UVᵀ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void HeadOne<TW>(int bh, Pointers p, Shape s) where TW : struct, IWeights
    {
        int es = TW.ElementSize, r = bh / s.Heads, h = bh % s.Heads, width = s.Rank + s.Rope;
        byte* query = stackalloc byte[width * es];
        byte* attended = stackalloc byte[s.Rank * es];
        nint qh = p.Q + (nint)((long)bh * (s.Nope + s.Rope) * es);
        nint w = p.KvB + (nint)((long)h * (s.Nope + s.Dv) * s.Rank * es);
        LatentProducts.AbsorbOne<TW>(qh, w, (nint)query, s.Nope, s.Rank);
        RopeRow(qh + s.Nope * es, p.Cos + (nint)((long)r * s.Rope * es), p.Sin + (nint)((long)r * s.Rope * es), (nint)query + s.Rank * es,
            s.Rope, s.Interleaved, TW.ElementSize == 2);
        nint keys = p.Cache + (nint)((long)r * s.Capacity * width * es);
        var layout = new DecodeAttention.Layout(width, s.Rank, width, width);
        DecodeAttention.One<TW>((nint)query, keys, keys, (float*)p.Mask + (long)r * s.Length, (nint)attended, s.Length, layout, s.Scale);
        LatentProducts.ExpandOne<TW>((nint)attended, w + (nint)((long)s.Nope * s.Rank * es), p.Output + (nint)((long)bh * s.Dv * es), s.Rank, s.Dv);
    }

    /// <summary>RMSNorm of one row as <see cref="SmallOps.RmsNorm"/>: x·rsqrt(mean(x²) + eps) in float32, rounded, times
    /// the weight, rounded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    static void RmsNormRow(nint x, nint weight, nint y, int d, float eps, bool bf16)
    {
        float sum = 0;
        for (int i = 0; i < d; i++) { float v = SmallInference.Load(x, i, bf16); sum += v * v; }
        float inv = 1f / MathF.Sqrt(sum / d + eps);
        for (int i = 0; i < d; i++)
        {
            float h = SmallInference.Round(SmallInference.Load(x, i, bf16) * inv, bf16);
            SmallInference.Store(y, i, SmallInference.Load(weight, i, bf16) * h, bf16);
        }
    }

    /// <summary>x·cos + rotate_half(x)·sin of one head's d values, each product rounded, then the sum (as
    /// <see cref="SmallOps.Rope"/>). Interleaved: x is first gathered into (x0, x2, …, x1, x3, …), the order the
    /// unfused path's reshape/transpose produces (DeepseekV3Attention.ApplyRope).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    static void RopeRow(nint x, nint cos, nint sin, nint y, int d, bool interleaved, bool bf16)
    {
        int half = d / 2;
        for (int i = 0; i < d; i++)
        {
            int j = i < half ? i + half : i - half;
            float v = SmallInference.Load(x, Source(i, half, interleaved), bf16);
            float other = SmallInference.Load(x, Source(j, half, interleaved), bf16);
            float rotated = i < half ? -other : other;
            float a = SmallInference.Round(v * SmallInference.Load(cos, i, bf16), bf16);
            float c = SmallInference.Round(rotated * SmallInference.Load(sin, i, bf16), bf16);
            SmallInference.Store(y, i, a + c, bf16);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Source(int i, int half, bool interleaved) => !interleaved ? i : i < half ? 2 * i : 2 * (i - half) + 1;
}
