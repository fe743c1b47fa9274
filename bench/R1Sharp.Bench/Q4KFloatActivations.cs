using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Kernels;
using R1Sharp.Models;

namespace R1Sharp.Bench;

/// <summary>
/// The alternative the library's int8 Q4_K kernel was measured against: float32 activations, the 4-bit values widened
/// to float32 in registers (vpmovzxbd, mask or shift, vcvtdq2ps) and multiplied by x with FMAs, one row of x. Per block
/// y += Σ_j d·sc_j·Σ_i q·x − dmin·m_j·Σ_i x, with Σx per 32 values computed once per call. Kept in the bench only.
/// </summary>
public static unsafe class Q4KFloatActivations
{
    public static void Run(QuantMatrix w, float* x, float* y, int threads)
    {
        int k = w.Cols, nb = w.Blocks;
        var sums = new float[k / 32];
        for (int s = 0; s < sums.Length; s++) { float t = 0; for (int i = 0; i < 32; i++) t += x[32 * s + i]; sums[s] = t; }
        int chunks = Math.Max(1, Math.Min(threads * 8, w.Rows / 16)), per = (w.Rows + chunks - 1) / chunks;
        nint xp = (nint)x, yp = (nint)y;
        KernelThreads.For(chunks, threads, c =>
        {
            fixed (float* sp = sums)
                for (int j = c * per; j < Math.Min(w.Rows, (c + 1) * per); j++) ((float*)yp)[j] = Dot(w.Row(j), nb, (float*)xp, sp);
        });
        GC.KeepAlive(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Dot(byte* w, int nb, float* x, float* xsum)
    {
        var acc = Vector256<float>.Zero;
        float accm = 0;
        var m4 = Vector256.Create(15);
        for (int b = 0; b < nb; b++, w += 144, x += 256, xsum += 8)
        {
            float d = (float)*(Half*)w, dmin = (float)*(Half*)(w + 2);
            var u = QuantBitsCopy.K4Scales(w + 4);
            byte* qs = w + 16;
            for (int j = 0; j < 4; j++)
            {
                var lo = Vector256<float>.Zero; var hi = lo;
                for (int l = 0; l < 32; l += 8)
                {
                    var q = Avx2.ConvertToVector256Int32(qs + 32 * j + l);
                    lo = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.And(q, m4)), Avx.LoadVector256(x + 64 * j + l), lo);
                    hi = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ShiftRightLogical(q, 4)), Avx.LoadVector256(x + 64 * j + 32 + l), hi);
                }
                acc = Fma.MultiplyAdd(Vector256.Create(d * u.GetElement(2 * j)), lo, acc);
                acc = Fma.MultiplyAdd(Vector256.Create(d * u.GetElement(2 * j + 1)), hi, acc);
                accm += dmin * (u.GetElement(8 + 2 * j) * xsum[2 * j] + u.GetElement(9 + 2 * j) * xsum[2 * j + 1]);
            }
        }
        return Vector256.Sum(acc) - accm;
    }

    /// <summary>The library's scale unpacking (internal there).</summary>
    static class QuantBitsCopy
    {
        public static Vector128<byte> K4Scales(byte* s)
        {
            var v = Sse2.LoadVector128((uint*)s);
            var lowParts = Avx2.ShiftRightLogicalVariable(Sse2.Shuffle(v, 0b10_01_10_00), Vector128.Create(0u, 0, 0, 4));
            var topBits = Sse2.ShiftRightLogical(Sse2.Shuffle(v, 0b01_01_00_00), 2);
            return Sse2.Or(Sse2.And(lowParts, Vector128.Create(0x3f3f3f3fu, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)),
                           Sse2.And(topBits, Vector128.Create(0u, 0x30303030, 0, 0x30303030))).AsByte();
        }
    }
}
