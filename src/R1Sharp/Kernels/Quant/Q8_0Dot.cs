using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// Q8_0 · q8_0 on AVX2 (ggml's ggml_vec_dot_q8_0_q8_0): block_q8_0 { f16 d; i8 qs[32] }, x = d·q. vpmaddubsw wants one
/// unsigned operand, so the weight's sign moves onto the activation (|w| · sign(x, w) = w · x; pairs at most
/// 2·128·127); vpmaddwd with ones sums the pairs into int32; one float scaling per 32 values.
/// </summary>
internal readonly unsafe struct Q8_0Avx2 : IQuantDot
{
    public const int BlockBytes = 34;
    public static int ActBlock => 32;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot1(byte* w, int nb, in Q8Rows a, int r)
    {
        sbyte* xq = a.RowQ(r);
        float* xd = a.RowD(r);
        var ones = Vector256.Create((short)1);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0;
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, xq += 64)
        {
            acc0 = Fma.MultiplyAdd(Vector256.Create(QuantBits.Half(w) * xd[b]), Block(w, xq, ones), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(QuantBits.Half(w + BlockBytes) * xd[b + 1]), Block(w + BlockBytes, xq + 32, ones), acc1);
        }
        if (b < nb) acc0 = Fma.MultiplyAdd(Vector256.Create(QuantBits.Half(w) * xd[b]), Block(w, xq, ones), acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Block(byte* w, sbyte* x, Vector256<short> ones)
    {
        var q = Avx.LoadVector256((sbyte*)w + 2);
        return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(q), Avx2.Sign(Avx.LoadVector256(x), q)), ones));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4(byte* w, int nb, in Q8Rows a, int r, float* y)
    {
        int k = a.K;
        sbyte* x0 = a.RowQ(r), x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        float* d0 = a.RowD(r), d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        var ones = Vector256.Create((short)1);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        for (int b = 0; b < nb; b++, w += BlockBytes)
        {
            var q = Avx.LoadVector256((sbyte*)w + 2);
            var aq = Avx2.Abs(q);
            float d = QuantBits.Half(w);
            int at = 32 * b;
            acc0 = Fma.MultiplyAdd(Vector256.Create(d * d0[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aq, Avx2.Sign(Avx.LoadVector256(x0 + at), q)), ones)), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d * d1[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aq, Avx2.Sign(Avx.LoadVector256(x1 + at), q)), ones)), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.Create(d * d2[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aq, Avx2.Sign(Avx.LoadVector256(x2 + at), q)), ones)), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.Create(d * d3[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aq, Avx2.Sign(Avx.LoadVector256(x3 + at), q)), ones)), acc3);
        }
        y[0] = Vector256.Sum(acc0); y[1] = Vector256.Sum(acc1); y[2] = Vector256.Sum(acc2); y[3] = Vector256.Sum(acc3);
    }
}
