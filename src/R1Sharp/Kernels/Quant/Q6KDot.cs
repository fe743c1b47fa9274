using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// Q6_K · q8_K on AVX2 (ggml's ggml_vec_dot_q6_K_q8_K): block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }
/// holds 16 sub-blocks of 16 with x = d·sc·(q − 32), q 6 bits: 4 in ql, 2 in qh. Per half of 128 values, bytes
/// ql[0..31] carry values 0..31 (low nibbles) and 64..95 (high), ql[32..63] values 32..63 and 96..127, and qh[l]'s
/// bit pairs 0-1, 2-3, 4-5, 6-7 the top bits of values l, l+32, l+64, l+96. The −32 offset comes out of the
/// activations' per-16 sums: Σ_j sc_j·Σ_i (q−32)·q8 = Σ_j sc_j·Σ_i q·q8 − 32·Σ_j sc_j·bsum_j, one vpmaddwd per block and
/// row instead of llama.cpp's extra vpmaddubsw per 32 values. Products fit: 2·63·127 per int16 pair.
/// </summary>
internal readonly unsafe struct Q6KAvx2 : IQuantDot
{
    public const int BlockBytes = 210;
    public static int ActBlock => 256;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot1(byte* w, int nb, in Q8Rows a, int r)
    {
        sbyte* xq = a.RowQ(r);
        float* xd = a.RowD(r);
        short* xbs = a.RowBSums(r);
        var acc = Vector256<float>.Zero;
        int pf = QuantKernels.PrefetchBytes;
        for (int b = 0; b < nb; b++, w += BlockBytes, xq += 256, xbs += 16)
        {
            if (pf > 0) QuantBits.Prefetch(w + pf, 4);
            var sc16 = Avx2.ConvertToVector256Int16((sbyte*)w + 192);
            // −32 · Σ_j sc_j · bsum_j, as eight int32 partial sums
            var sumi = Avx2.Subtract(Vector256<int>.Zero, Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(sc16, Avx.LoadVector256(xbs)), 5));
            sumi = Avx2.Add(sumi, Half(w, sc16, xq, 0));
            sumi = Avx2.Add(sumi, Half(w, sc16, xq, 1));
            acc = Fma.MultiplyAdd(Vector256.Create(xd[b] * QuantBits.Half(w + 208)), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>The four 32-value groups of half h (values 128h..128h+127) as unsigned 6-bit bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Unpack(byte* w, int h, out Vector256<byte> q1, out Vector256<byte> q2, out Vector256<byte> q3, out Vector256<byte> q4)
    {
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        var ql0 = Avx.LoadVector256(w + 64 * h);
        var ql1 = Avx.LoadVector256(w + 64 * h + 32);
        var qh = Avx.LoadVector256(w + 128 + 32 * h).AsUInt16();
        q1 = Avx2.Or(Avx2.And(ql0, m4), Avx2.And(Avx2.ShiftLeftLogical(qh, 4).AsByte(), m30));
        q2 = Avx2.Or(Avx2.And(ql1, m4), Avx2.And(Avx2.ShiftLeftLogical(qh, 2).AsByte(), m30));
        q3 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte(), m4), Avx2.And(qh.AsByte(), m30));
        q4 = Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte(), m4), Avx2.And(Avx2.ShiftRightLogical(qh, 2).AsByte(), m30));
    }

    /// <summary>Scales for group g of half h: sub-blocks 8h+2g (int16 lanes 0-7) and 8h+2g+1 (lanes 8-15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> Scales(Vector256<short> sc16, int h, int g)
    {
        var half = h == 0 ? sc16.GetLower() : sc16.GetUpper();
        var both = Vector256.Create(half, half).AsByte();
        // low lane takes element 2g, high lane element 2g+1
        var pattern = Vector256.Create(Vector128.Create((ushort)((4 * g) | ((4 * g + 1) << 8))), Vector128.Create((ushort)((4 * g + 2) | ((4 * g + 3) << 8)))).AsByte();
        return Avx2.Shuffle(both, pattern).AsInt16();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Half(byte* w, Vector256<short> sc16, sbyte* xq, int h)
    {
        Unpack(w, h, out var q1, out var q2, out var q3, out var q4);
        sbyte* x = xq + 128 * h;
        var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1, Avx.LoadVector256(x)), Scales(sc16, h, 0));
        var p2 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q2, Avx.LoadVector256(x + 32)), Scales(sc16, h, 1));
        var p3 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3, Avx.LoadVector256(x + 64)), Scales(sc16, h, 2));
        var p4 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q4, Avx.LoadVector256(x + 96)), Scales(sc16, h, 3));
        return Avx2.Add(Avx2.Add(p1, p2), Avx2.Add(p3, p4));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4(byte* w, int nb, in Q8Rows a, int r, float* y)
    {
        int k = a.K;
        sbyte* x0 = a.RowQ(r), x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        float* d0 = a.RowD(r), d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        short* s0 = a.RowBSums(r), s1 = s0 + 16 * nb, s2 = s1 + 16 * nb, s3 = s2 + 16 * nb;
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        for (int b = 0; b < nb; b++, w += BlockBytes)
        {
            var sc16 = Avx2.ConvertToVector256Int16((sbyte*)w + 192);
            long o = 256L * b;
            var i0 = Avx2.Subtract(Vector256<int>.Zero, Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(sc16, Avx.LoadVector256(s0 + 16 * b)), 5));
            var i1 = Avx2.Subtract(Vector256<int>.Zero, Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(sc16, Avx.LoadVector256(s1 + 16 * b)), 5));
            var i2 = Avx2.Subtract(Vector256<int>.Zero, Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(sc16, Avx.LoadVector256(s2 + 16 * b)), 5));
            var i3 = Avx2.Subtract(Vector256<int>.Zero, Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(sc16, Avx.LoadVector256(s3 + 16 * b)), 5));
            Half4(w, sc16, 0, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Half4(w, sc16, 1, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            float d = QuantBits.Half(w + 208);
            acc0 = Fma.MultiplyAdd(Vector256.Create(d * d0[b]), Avx.ConvertToVector256Single(i0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d * d1[b]), Avx.ConvertToVector256Single(i1), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.Create(d * d2[b]), Avx.ConvertToVector256Single(i2), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.Create(d * d3[b]), Avx.ConvertToVector256Single(i3), acc3);
        }
        y[0] = Vector256.Sum(acc0); y[1] = Vector256.Sum(acc1); y[2] = Vector256.Sum(acc2); y[3] = Vector256.Sum(acc3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Half4(byte* w, Vector256<short> sc16, int h, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3,
        ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
    {
        Unpack(w, h, out var q1, out var q2, out var q3, out var q4);
        Group4(q1, Scales(sc16, h, 0), 128 * h, x0, x1, x2, x3, ref i0, ref i1, ref i2, ref i3);
        Group4(q2, Scales(sc16, h, 1), 128 * h + 32, x0, x1, x2, x3, ref i0, ref i1, ref i2, ref i3);
        Group4(q3, Scales(sc16, h, 2), 128 * h + 64, x0, x1, x2, x3, ref i0, ref i1, ref i2, ref i3);
        Group4(q4, Scales(sc16, h, 3), 128 * h + 96, x0, x1, x2, x3, ref i0, ref i1, ref i2, ref i3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Group4(Vector256<byte> q, Vector256<short> s, int at, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3,
        ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
    {
        i0 = Avx2.Add(i0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x0 + at)), s));
        i1 = Avx2.Add(i1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x1 + at)), s));
        i2 = Avx2.Add(i2, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x2 + at)), s));
        i3 = Avx2.Add(i3, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x3 + at)), s));
    }
}
