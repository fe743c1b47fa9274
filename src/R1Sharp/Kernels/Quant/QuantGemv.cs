using System.Runtime.CompilerServices;
using R1Sharp.IO;
using R1Sharp.Models; // KernelThreads (moves to R1Sharp.Kernels with issue 13)

namespace R1Sharp.Kernels;

/// <summary>
/// y[r, n] = Σ_k x[r, k] · W[n, k] (+ bias[n]) for quantized weights W (<see cref="QuantMatrix"/>) and float32 rows x:
/// the products of decoding, reading every weight block once per call and unpacking it in registers. x is quantised
/// per block to int8 first (<see cref="Q8Rows"/>, as llama.cpp does), and the blocks' dot products are integer
/// (vpmaddubsw/vpmaddwd) with one float scaling per block; the result differs from the float32 product of the
/// dequantised weights by that activation rounding only (relative error ~ 1/254 per block, averaging out over K).
/// Several weights that read the same x (q/k/v, gate/up; their formats may differ, as Q4_K_M mixes Q4_K and Q6_K)
/// go in one call: x is quantised once per block size and the threads' shares are balanced over all outputs.
/// The path (AVX-512, AVX2, scalar) is <see cref="QuantKernels.Isa"/>; each weight row meets the x rows four at a
/// time while it stays in L1.
/// </summary>
public static unsafe class QuantGemv
{
    /// <summary>One weight of a call, where its output y [rows, Rows] goes (float32) and its float32 bias [Rows] (0 if none).</summary>
    public readonly record struct Target(QuantMatrix Weight, nint Y, nint Bias = 0);

    public static void Run(Target[] targets, float* x, int rows, int threads)
    {
        if (targets.Length == 0 || rows <= 0) return;
        int k = targets[0].Weight.Cols;
        foreach (var t in targets)
            if (t.Weight.Cols != k) throw new ArgumentException($"{t.Weight.Name} has {t.Weight.Cols} columns; the call's x rows have {k}");
        var isa = QuantKernels.Isa;
        Q8Rows a256 = default, a32 = default;
        if (isa != QuantIsa.Scalar)
        {
            if (targets.Any(t => ActBlock(t.Weight.Type) == 256)) a256 = Q8Rows.Quantize(x, rows, k, 256);
            if (targets.Any(t => ActBlock(t.Weight.Type) == 32)) a32 = Q8Rows.Quantize(x, rows, k, 32);
        }
        long total = 0;
        foreach (var t in targets) total += t.Weight.Rows;
        int chunks = (int)Math.Max(1, Math.Min(threads * 8, total / 16));
        int per = (int)((total + chunks - 1) / chunks);
        var work = new List<(int target, int start, int end)>(chunks + targets.Length);
        for (int m = 0; m < targets.Length; m++)
            for (int s = 0; s < targets[m].Weight.Rows; s += per) work.Add((m, s, Math.Min(targets[m].Weight.Rows, s + per)));
        // From 8 rows on, the formats with an 8-row kernel take the rows 8 at a time (QuantDot8), the rest 4 and 1.
        int groups = isa != QuantIsa.Scalar && QuantKernels.EightRows ? rows / 8 : 0;
        Q8Groups g256 = default, g32 = default;
        if (groups > 0)
        {
            if (targets.Any(t => Has8(t.Weight.Type) && ActBlock(t.Weight.Type) == 256)) g256 = Q8Groups.From(a256, groups);
            if (targets.Any(t => Has8(t.Weight.Type) && ActBlock(t.Weight.Type) == 32)) g32 = Q8Groups.From(a32, groups);
        }
        nint xp = (nint)x;
        var q256 = a256; var q32 = a32;
        KernelThreads.For(work.Count, threads, c =>
        {
            var (m, start, end) = work[c];
            var t = targets[m];
            bool k256 = ActBlock(t.Weight.Type) == 256;
            Range(isa, t, (float*)xp, k256 ? q256 : q32, k256 ? g256 : g32, rows, start, end);
        });
        GC.KeepAlive(targets);
    }

    internal static int ActBlock(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 ? 32 : 256;

    /// <summary>Formats with an 8-row kernel (<see cref="IQuantDot8"/>).</summary>
    internal static bool Has8(GgmlType t) => t is GgmlType.Q4_K or GgmlType.Q6_K or GgmlType.Q8_0;

    static void Range(QuantIsa isa, in Target t, float* x, in Q8Rows a, in Q8Groups g, int rows, int start, int end)
    {
        if (isa == QuantIsa.Scalar) { ScalarRange(t, x, rows, start, end); return; }
        bool wide = isa == QuantIsa.Avx512;
        if (g.Groups > 0)
            switch (t.Weight.Type)
            {
                case GgmlType.Q4_K: if (wide) Range8<Q4KAvx2x8, Q4KAvx512>(t, a, g, rows, start, end); else Range8<Q4KAvx2x8, Q4KAvx2>(t, a, g, rows, start, end); return;
                case GgmlType.Q6_K: Range8<Q6KAvx2x8, Q6KAvx2>(t, a, g, rows, start, end); return;
                case GgmlType.Q8_0: Range8<Q8_0Avx2x8, Q8_0Avx2>(t, a, g, rows, start, end); return;
            }
        switch (t.Weight.Type)
        {
            case GgmlType.Q4_K: if (wide) Range<Q4KAvx512>(t, a, rows, start, end); else Range<Q4KAvx2>(t, a, rows, start, end); break;
            case GgmlType.Q5_K: Range<Q5KAvx2>(t, a, rows, start, end); break;
            case GgmlType.Q6_K: Range<Q6KAvx2>(t, a, rows, start, end); break;
            case GgmlType.Q8_0: Range<Q8_0Avx2>(t, a, rows, start, end); break;
            case GgmlType.Q4_0: Range<Q4_0Avx2>(t, a, rows, start, end); break;
            case GgmlType.Q5_0: Range<Q5_0Avx2>(t, a, rows, start, end); break;
            default: throw new InvalidOperationException($"no kernel for {t.Weight.Type}");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Range<TK>(in Target t, in Q8Rows a, int rows, int start, int end) where TK : struct, IQuantDot
    {
        var m = t.Weight;
        int nb = m.Blocks, n = m.Rows;
        float* y = (float*)t.Y, bias = (float*)t.Bias;
        float* four = stackalloc float[4];
        for (int j = start; j < end; j++)
        {
            byte* w = m.Row(j);
            float bj = bias != null ? bias[j] : 0f;
            int r = 0;
            for (; r + 4 <= rows; r += 4)
            {
                TK.Dot4(w, nb, a, r, four);
                for (int i = 0; i < 4; i++) y[(long)(r + i) * n + j] = four[i] + bj;
            }
            for (; r < rows; r++) y[(long)r * n + j] = TK.Dot1(w, nb, a, r) + bj;
        }
    }

    /// <summary>Rows 0..8G−1 through the 8-row kernel, the rest as <see cref="Range{TK}"/> does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Range8<T8, TK>(in Target t, in Q8Rows a, in Q8Groups g, int rows, int start, int end) where T8 : struct, IQuantDot8 where TK : struct, IQuantDot
    {
        var m = t.Weight;
        int nb = m.Blocks, n = m.Rows;
        float* y = (float*)t.Y, bias = (float*)t.Bias;
        int grouped = 8 * g.Groups;
        float* out8 = stackalloc float[grouped];
        float* four = stackalloc float[4];
        for (int j = start; j < end; j++)
        {
            byte* w = m.Row(j);
            float bj = bias != null ? bias[j] : 0f;
            T8.Dot8(w, nb, g, out8);
            for (int i = 0; i < grouped; i++) y[(long)i * n + j] = out8[i] + bj;
            int r = grouped;
            for (; r + 4 <= rows; r += 4)
            {
                TK.Dot4(w, nb, a, r, four);
                for (int i = 0; i < 4; i++) y[(long)(r + i) * n + j] = four[i] + bj;
            }
            for (; r < rows; r++) y[(long)r * n + j] = TK.Dot1(w, nb, a, r) + bj;
        }
    }

    /// <summary>Any CPU: each weight row dequantised (ggml's values), then float32 dot products with the x rows.</summary>
    static void ScalarRange(in Target t, float* x, int rows, int start, int end)
    {
        var m = t.Weight;
        int k = m.Cols, n = m.Rows;
        float* y = (float*)t.Y, bias = (float*)t.Bias;
        var row = new float[k];
        fixed (float* wr = row)
            for (int j = start; j < end; j++)
            {
                m.Dequantize(j, 1, wr);
                for (int r = 0; r < rows; r++)
                {
                    float* xr = x + (long)r * k;
                    float s = 0;
                    for (int i = 0; i < k; i++) s += wr[i] * xr[i];
                    y[(long)r * n + j] = s + (bias != null ? bias[j] : 0f);
                }
            }
    }
}
