using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// y[r, n] = Σ_k x[r, k] · W[n, k] for a weight W [N, K] (bfloat16 or float32) and a few float32 rows x [R, K]: the
/// matrix-vector products of decoding. libtorch's kernels for this shape reach under half of this machine's read
/// bandwidth in float32 and are several times slower still in bfloat16 (no native bf16 instructions), while a decode
/// step is nothing but reading every weight once. Weights are widened to float32 in registers when they are bfloat16
/// (a bfloat16 is the top half of a float32); accumulation is float32, as in libtorch. Under 4 rows each thread reads
/// its share as two streams (rows from the two halves of its range, sharing the x loads), which keeps more reads in
/// flight than one stream; 4 to 7 rows read each weight row once per block of four x rows; from 8 rows up, four
/// weight rows at a time meet pairs of x rows (register blocking, so that loads from cache no longer bound the
/// 16-row case); with AVX-512 (and K a multiple of 16), from 4 rows up, four weight rows meet four x rows at a time in
/// 512-bit registers. One call may cover several weights that read the same x (q/k/v, gate/up), and the kernel writes the
/// final outputs (bias added, rounded once to the weight's type), so no tensor operation surrounds it.
/// Why each blocking: bench/README.md, "Kernel choices".
/// </summary>
public static unsafe class Gemv
{
    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>One weight [N, K] of a call, where its output y [rows, N] goes and its bias [N] if any (0 if none).
    /// y and the bias have the weight's element type: the bias is added in float32 and the sum rounded once, as
    /// libtorch's addmm does, so a caller needs no tensor operations around the kernel.</summary>
    /// <remarks>X and Rows, when X is set, give the target its own float32 input [Rows, K] instead of the call's: the
    /// experts of a MoE layer, each over the few tokens routed to it, in one dispatch.</remarks>
    /// <remarks>K, when set, gives the target its own inner size (the shared experts' down product, wider than the
    /// routed experts', in the same dispatch); 0: the call's.</remarks>
    /// <remarks>Float32Output: y is float32 whatever the weight's type, holding the value rounded to the weight's type
    /// (what a cast of the usual output gives): the output head's logits without a cast afterwards.</remarks>
    public readonly record struct Target(nint Weight, nint Y, int N, nint Bias = 0, nint X = 0, int Rows = 0, int K = 0, bool Float32Output = false);

    /// <summary>Several weights that read the same x in one parallel pass (q/k/v, gate/up): one dispatch instead of
    /// one per matrix, and the threads' shares balanced over all of them together.</summary>
    public static void Run(bool bf16, Target[] targets, float* x, int rows, int k, int threads)
    {
        if (bf16) Run<Bf16>(targets, x, rows, k, threads);
        else Run<F32>(targets, x, rows, k, threads);
    }

    const long MinChunkBytes = 64 << 10;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    static void Run<TW>(Target[] targets, float* x, int rows, int k, int threads) where TW : struct, IWeights
    {
        bool wideEnabled = WideEnabled, wide = wideEnabled && k % 16 == 0;
        long total = 0;
        foreach (var t in targets) total += t.N;
        if (total == 0) return;
        // Up to 8 chunks per thread for balance, but none under MinChunkBytes of weights (one per thread at least): each
        // chunk starts new memory streams, and o_proj's 512 rows in 16 chunks of 32 KB ran ~15 % slower (bench/README.md,
        // issue 16).
        int chunks = (int)Math.Max(1, Math.Min(threads * 8, total / 16));
        chunks = (int)Math.Max(Math.Min(chunks, threads), Math.Min(chunks, total * k * TW.ElementSize / MinChunkBytes));
        // A multiple of 4 so that every chunk but a matrix's last is made of whole 4-output blocks.
        int per = (int)((total + chunks - 1) / chunks + 3) & ~3;
        if (threads <= 1 || chunks == 1)
        {
            foreach (var t in targets)
                Range<TW>(t, t.X != 0 ? (float*)t.X : x, t.X != 0 ? t.Rows : rows, t.K != 0 ? t.K : k, 0, t.N, t.K != 0 ? wideEnabled && t.K % 16 == 0 : wide);
            return;
        }
        var work = new List<(int target, int start, int end)>(chunks + targets.Length);
        for (int m = 0; m < targets.Length; m++)
            for (int s = 0; s < targets[m].N; s += per) work.Add((m, s, Math.Min(targets[m].N, s + per)));
        nint xp = (nint)x;
        KernelThreads.For(work.Count, threads, c =>
        {
            var (m, start, end) = work[c];
            var t = targets[m];
            Range<TW>(t, t.X != 0 ? (float*)t.X : (float*)xp, t.X != 0 ? t.Rows : rows, t.K != 0 ? t.K : k, start, end,
                t.K != 0 ? wideEnabled && t.K % 16 == 0 : wide);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loops: no tier-0 phase
    static void Range<TW>(Target t, float* x, int rows, int k, int start, int end, bool wide) where TW : struct, IWeights
    {
        long stride = (long)k * TW.ElementSize;
        int n = t.N;
        int j = start;
        float* block = stackalloc float[16];
        if (rows >= 8 || (rows >= 4 && wide))
        {
            // Four weight rows at a time against pairs of x rows: each x vector loaded feeds four FMAs and each
            // weight vector two, and the four weight rows stay in L1 while every pair of x rows streams past them.
            // Under 8 rows the one-row path below is as fast and simpler. With AVX-512, blocks of four x rows against
            // the four weight rows in 512-bit registers first (16 accumulators of the 32 registers).
            for (; j + 4 <= end; j += 4)
            {
                nint w0 = t.Weight + (nint)(j * stride);
                int r0 = 0;
                if (wide)
                    for (; r0 + 4 <= rows; r0 += 4)
                    {
                        Dot4x4Wide<TW>(w0, stride, x + (long)r0 * k, k, block);
                        for (int q = 0; q < 4; q++)
                            for (int o = 0; o < 4; o++) Put<TW>(t, (long)(r0 + q) * n + j + o, j + o, block[q * 4 + o]);
                    }
                for (; r0 + 2 <= rows; r0 += 2)
                {
                    Dot4x2<TW>(w0, stride, x + (long)r0 * k, k, block);
                    for (int o = 0; o < 4; o++)
                    {
                        Put<TW>(t, (long)r0 * n + j + o, j + o, block[o]);
                        Put<TW>(t, (long)(r0 + 1) * n + j + o, j + o, block[4 + o]);
                    }
                }
                for (; r0 < rows; r0++)
                    for (int o = 0; o < 4; o++) Put<TW>(t, (long)r0 * n + j + o, j + o, Dot<TW>(w0 + (nint)(o * stride), x + (long)r0 * k, k));
            }
        }
        if (rows < 4)
        {
            // Two weight rows at a time from the two halves of the range: two independent memory streams per thread
            // keep more cache-line reads in flight than one. Each pair of weight rows stays in L1 while every x row
            // uses it.
            int half = (end - j) / 2;
            for (int p = j; p < j + half; p++)
            {
                nint wa = t.Weight + (nint)(p * stride), wb = t.Weight + (nint)((p + half) * stride);
                for (int r = 0; r < rows; r++)
                {
                    Dot2<TW>(wa, wb, x + (long)r * k, k, out var sa, out var sb);
                    Put<TW>(t, (long)r * n + p, p, sa);
                    Put<TW>(t, (long)r * n + p + half, p + half, sb);
                }
            }
            j += 2 * half;
        }
        // Weight row outermost: it is read from memory once and stays in L1 while every x row uses it.
        for (; j < end; j++)
        {
            nint wr = t.Weight + (nint)(j * stride);
            int r0 = 0;
            for (; r0 + 4 <= rows; r0 += 4)
            {
                Dot4<TW>(wr, x + (long)r0 * k, k, out var s0, out var s1, out var s2, out var s3);
                Put<TW>(t, (long)r0 * n + j, j, s0); Put<TW>(t, (long)(r0 + 1) * n + j, j, s1);
                Put<TW>(t, (long)(r0 + 2) * n + j, j, s2); Put<TW>(t, (long)(r0 + 3) * n + j, j, s3);
            }
            for (; r0 < rows; r0++) Put<TW>(t, (long)r0 * n + j, j, Dot<TW>(wr, x + (long)r0 * k, k));
        }
    }

    /// <summary>y[index] = dot (+ bias[column]), rounded once to the weight's element type.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put<TW>(in Target t, long index, int column, float dot) where TW : struct, IWeights
    {
        if (t.Bias != 0) dot += TW.Scalar(t.Bias, column);
        if (t.Float32Output) ((float*)t.Y)[index] = TW.Round(dot);
        else TW.Store(t.Y, index, dot);
    }

    static readonly AsyncLocal<bool> narrowOnly = new();

    /// <summary>Whether 4 rows and more go through the 512-bit kernel (AVX-512 machines). Off: the 256-bit kernels
    /// only, for A/B in the bench. Per async flow (read by the caller of <see cref="Run"/>, not by the workers), so
    /// turning it off changes nothing for other threads.</summary>
    public static bool WideEnabled { get => Avx512F.IsSupported && !narrowOnly.Value; set => narrowOnly.Value = !value; }

    /// <summary>y[4q + o] = x row q · weight row o for q, o = 0..3: sixteen 512-bit accumulators, each weight vector and
    /// each x vector loaded once for four FMAs (k a multiple of 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Dot4x4Wide<TW>(nint w, long stride, float* x, int k, float* y) where TW : struct, IWeights
    {
        float* x1 = x + k, x2 = x1 + k, x3 = x2 + k;
        nint w1 = w + (nint)stride, w2 = w1 + (nint)stride, w3 = w2 + (nint)stride;
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0;
        var d0 = a0; var d1 = a0; var d2 = a0; var d3 = a0;
        for (int i = 0; i < k; i += 16)
        {
            var u0 = Avx512F.LoadVector512(x + i); var u1 = Avx512F.LoadVector512(x1 + i);
            var u2 = Avx512F.LoadVector512(x2 + i); var u3 = Avx512F.LoadVector512(x3 + i);
            var wv = TW.Load512(w, i);
            a0 = Avx512F.FusedMultiplyAdd(wv, u0, a0); b0 = Avx512F.FusedMultiplyAdd(wv, u1, b0);
            c0 = Avx512F.FusedMultiplyAdd(wv, u2, c0); d0 = Avx512F.FusedMultiplyAdd(wv, u3, d0);
            wv = TW.Load512(w1, i);
            a1 = Avx512F.FusedMultiplyAdd(wv, u0, a1); b1 = Avx512F.FusedMultiplyAdd(wv, u1, b1);
            c1 = Avx512F.FusedMultiplyAdd(wv, u2, c1); d1 = Avx512F.FusedMultiplyAdd(wv, u3, d1);
            wv = TW.Load512(w2, i);
            a2 = Avx512F.FusedMultiplyAdd(wv, u0, a2); b2 = Avx512F.FusedMultiplyAdd(wv, u1, b2);
            c2 = Avx512F.FusedMultiplyAdd(wv, u2, c2); d2 = Avx512F.FusedMultiplyAdd(wv, u3, d2);
            wv = TW.Load512(w3, i);
            a3 = Avx512F.FusedMultiplyAdd(wv, u0, a3); b3 = Avx512F.FusedMultiplyAdd(wv, u1, b3);
            c3 = Avx512F.FusedMultiplyAdd(wv, u2, c3); d3 = Avx512F.FusedMultiplyAdd(wv, u3, d3);
        }
        y[0] = Vector512.Sum(a0); y[1] = Vector512.Sum(a1); y[2] = Vector512.Sum(a2); y[3] = Vector512.Sum(a3);
        y[4] = Vector512.Sum(b0); y[5] = Vector512.Sum(b1); y[6] = Vector512.Sum(b2); y[7] = Vector512.Sum(b3);
        y[8] = Vector512.Sum(c0); y[9] = Vector512.Sum(c1); y[10] = Vector512.Sum(c2); y[11] = Vector512.Sum(c3);
        y[12] = Vector512.Sum(d0); y[13] = Vector512.Sum(d1); y[14] = Vector512.Sum(d2); y[15] = Vector512.Sum(d3);
    }

    /// <summary>y[4r + 0..3] = x row r · weight rows w, w+stride, .. for r = 0..1: eight accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Dot4x2<TW>(nint w, long stride, float* x, int k, float* y) where TW : struct, IWeights
    {
        float* x1 = x + k;
        nint w1 = w + (nint)stride, w2 = w1 + (nint)stride, w3 = w2 + (nint)stride;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int i = 0;
        for (; i + 8 <= k; i += 8)
        {
            var u = Avx.LoadVector256(x + i);
            var v = Avx.LoadVector256(x1 + i);
            var wv = TW.Load(w, i);
            a0 = Fma.MultiplyAdd(wv, u, a0); b0 = Fma.MultiplyAdd(wv, v, b0);
            wv = TW.Load(w1, i);
            a1 = Fma.MultiplyAdd(wv, u, a1); b1 = Fma.MultiplyAdd(wv, v, b1);
            wv = TW.Load(w2, i);
            a2 = Fma.MultiplyAdd(wv, u, a2); b2 = Fma.MultiplyAdd(wv, v, b2);
            wv = TW.Load(w3, i);
            a3 = Fma.MultiplyAdd(wv, u, a3); b3 = Fma.MultiplyAdd(wv, v, b3);
        }
        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
        float t0 = Vector256.Sum(b0), t1 = Vector256.Sum(b1), t2 = Vector256.Sum(b2), t3 = Vector256.Sum(b3);
        for (; i < k; i++)
        {
            float u = x[i], v = x1[i];
            float c0 = TW.Scalar(w, i), c1 = TW.Scalar(w1, i), c2 = TW.Scalar(w2, i), c3 = TW.Scalar(w3, i);
            s0 += c0 * u; s1 += c1 * u; s2 += c2 * u; s3 += c3 * u;
            t0 += c0 * v; t1 += c1 * v; t2 += c2 * v; t3 += c3 * v;
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
        y[4] = t0; y[5] = t1; y[6] = t2; y[7] = t3;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loops: no tier-0 phase
    static void Dot4<TW>(nint w, float* x, int k, out float s0, out float s1, out float s2, out float s3) where TW : struct, IWeights
    {
        float* x1 = x + k, x2 = x1 + k, x3 = x2 + k;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var w0 = TW.Load(w, i);
            var w1 = TW.Load(w, i + 8);
            a0 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x1 + i), a1);
            a2 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x2 + i), a2);
            a3 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x3 + i), a3);
            b0 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x + i + 8), b0);
            b1 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x1 + i + 8), b1);
            b2 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x2 + i + 8), b2);
            b3 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x3 + i + 8), b3);
        }
        for (; i + 8 <= k; i += 8)
        {
            var w0 = TW.Load(w, i);
            a0 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x1 + i), a1);
            a2 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x2 + i), a2);
            a3 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x3 + i), a3);
        }
        s0 = Vector256.Sum(Avx.Add(a0, b0)); s1 = Vector256.Sum(Avx.Add(a1, b1));
        s2 = Vector256.Sum(Avx.Add(a2, b2)); s3 = Vector256.Sum(Avx.Add(a3, b3));
        for (; i < k; i++)
        {
            float wi = TW.Scalar(w, i);
            s0 += wi * x[i]; s1 += wi * x1[i]; s2 += wi * x2[i]; s3 += wi * x3[i];
        }
    }

    /// <summary>x · weight row a and x · weight row b, rows far apart in memory (two streams), sharing the x loads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loops: no tier-0 phase
    internal static void Dot2<TW>(nint wa, nint wb, float* x, int k, out float sa, out float sb) where TW : struct, IWeights
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int i = 0;
        for (; i + 32 <= k; i += 32)
        {
            if (TW.ElementSize == 2)
            {
                Sse.Prefetch0((byte*)wa + (long)i * 2 + PrefetchBytes);
                Sse.Prefetch0((byte*)wb + (long)i * 2 + PrefetchBytes);
            }
            var x0 = Avx.LoadVector256(x + i); var x1 = Avx.LoadVector256(x + i + 8);
            var x2 = Avx.LoadVector256(x + i + 16); var x3 = Avx.LoadVector256(x + i + 24);
            a0 = Fma.MultiplyAdd(TW.Load(wa, i), x0, a0); b0 = Fma.MultiplyAdd(TW.Load(wb, i), x0, b0);
            a1 = Fma.MultiplyAdd(TW.Load(wa, i + 8), x1, a1); b1 = Fma.MultiplyAdd(TW.Load(wb, i + 8), x1, b1);
            a2 = Fma.MultiplyAdd(TW.Load(wa, i + 16), x2, a2); b2 = Fma.MultiplyAdd(TW.Load(wb, i + 16), x2, b2);
            a3 = Fma.MultiplyAdd(TW.Load(wa, i + 24), x3, a3); b3 = Fma.MultiplyAdd(TW.Load(wb, i + 24), x3, b3);
        }
        for (; i + 8 <= k; i += 8)
        {
            var x0 = Avx.LoadVector256(x + i);
            a0 = Fma.MultiplyAdd(TW.Load(wa, i), x0, a0); b0 = Fma.MultiplyAdd(TW.Load(wb, i), x0, b0);
        }
        sa = Vector256.Sum(Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3)));
        sb = Vector256.Sum(Avx.Add(Avx.Add(b0, b1), Avx.Add(b2, b3)));
        for (; i < k; i++) { sa += TW.Scalar(wa, i) * x[i]; sb += TW.Scalar(wb, i) * x[i]; }
    }

    /// <summary>How far ahead the one-row bfloat16 loops ask for weights (software prefetch).</summary>
    const int PrefetchBytes = 2048;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loops: no tier-0 phase
    internal static float Dot<TW>(nint w, float* x, int k) where TW : struct, IWeights
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        for (; i + 32 <= k; i += 32)
        {
            // bfloat16: ask for the weights 2 KB ahead (the hardware prefetcher alone was slower; for float32 this
            // cost time).
            if (TW.ElementSize == 2) Sse.Prefetch0((byte*)w + (long)i * 2 + PrefetchBytes);
            a0 = Fma.MultiplyAdd(TW.Load(w, i), Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(TW.Load(w, i + 8), Avx.LoadVector256(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(TW.Load(w, i + 16), Avx.LoadVector256(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(TW.Load(w, i + 24), Avx.LoadVector256(x + i + 24), a3);
        }
        for (; i + 8 <= k; i += 8) a0 = Fma.MultiplyAdd(TW.Load(w, i), Avx.LoadVector256(x + i), a0);
        float sum = Vector256.Sum(Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3)));
        for (; i < k; i++) sum += TW.Scalar(w, i) * x[i];
        return sum;
    }
}
