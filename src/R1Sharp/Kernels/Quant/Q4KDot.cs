using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// Q4_K · q8_K on AVX2 (ggml's ggml_vec_dot_q4_K_q8_K): block_q4_K { f16 d, dmin; u8 scales[12]; u8 qs[128] } holds
/// 8 sub-blocks of 32 with x = d·sc·q − dmin·m, so a block's dot with x = dx·q8 is
/// dx·(d·Σ_j sc_j·Σ_i q·q8 − dmin·Σ_j m_j·Σ_i q8). The nibbles of 32 bytes are sub-blocks 2k (low) and 2k+1 (high);
/// vpmaddubsw multiplies them with the int8 activations into int16 pairs (at most 2·15·127), vpmaddwd with the
/// sub-block scale into int32; the mins term uses the activations' per-16 sums (bsums), so it costs one vpmaddwd per
/// block and row.
/// </summary>
internal readonly unsafe struct Q4KAvx2 : IQuantDot
{
    public const int BlockBytes = 144;
    public static int ActBlock => 256;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot1(byte* w, int nb, in Q8Rows a, int r)
    {
        sbyte* xq = a.RowQ(r);
        float* xd = a.RowD(r);
        short* xbs = a.RowBSums32(r);
        var m4 = Vector256.Create((byte)0x0F);
        var acc = Vector256<float>.Zero;
        var accm = Vector128<float>.Zero;
        int pf = QuantKernels.PrefetchBytes;
        for (int b = 0; b < nb; b++, w += BlockBytes, xq += 256, xbs += 8)
        {
            if (pf > 0) QuantBits.Prefetch(w + pf, 3);
            var dd = QuantBits.HalfPair(w) * xd[b]; // d·dx, dmin·dx
            var u = QuantBits.K4Scales(w + 4);
            var mins = Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(u, 8));
            accm = Fma.MultiplyAddNegated(Sse.Shuffle(dd, dd, 0b01_01_01_01), Sse2.ConvertToVector128Single(Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(xbs))), accm);
            var sc128 = Sse41.ConvertToVector128Int16(u);
            var sc = Vector256.Create(sc128, sc128).AsByte();
            byte* qs = w + 16;
            var sumi = Step(qs, xq, sc, m4, 0) + Step(qs, xq, sc, m4, 1) + Step(qs, xq, sc, m4, 2) + Step(qs, xq, sc, m4, 3);
            acc = Fma.MultiplyAdd(Avx2.BroadcastScalarToVector256(dd), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc) + Vector128.Sum(accm);
    }

    /// <summary>Sub-blocks 2k and 2k+1 (values 64k..64k+63) against one x row: 8 int32 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Step(byte* qs, sbyte* xq, Vector256<byte> sc, Vector256<byte> m4, int k)
    {
        var q = Avx.LoadVector256(qs + 32 * k);
        var lo = Avx2.And(q, m4);
        var hi = Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), m4);
        var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(xq + 64 * k)), Avx2.Shuffle(sc, QuantBits.Broadcast16(2 * k)).AsInt16());
        var p2 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(xq + 64 * k + 32)), Avx2.Shuffle(sc, QuantBits.Broadcast16(2 * k + 1)).AsInt16());
        return Avx2.Add(p1, p2);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4(byte* w, int nb, in Q8Rows a, int r, float* y)
    {
        int k = a.K;
        sbyte* x0 = a.RowQ(r), x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        float* d0 = a.RowD(r), d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        short* s0 = a.RowBSums32(r), s1 = s0 + 8 * nb, s2 = s1 + 8 * nb, s3 = s2 + 8 * nb;
        var m4 = Vector256.Create((byte)0x0F);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        var accm = Vector128<float>.Zero; // lane i: row i's mins term
        for (int b = 0; b < nb; b++, w += BlockBytes)
        {
            var u = QuantBits.K4Scales(w + 4);
            var mins = Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(u, 8));
            // Σ_j m_j · bsum_j for each row, as one 4-lane vector
            var m0 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s0 + 8 * b));
            var m1 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s1 + 8 * b));
            var m2 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s2 + 8 * b));
            var m3 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s3 + 8 * b));
            var msum = Ssse3.HorizontalAdd(Ssse3.HorizontalAdd(m0, m1), Ssse3.HorizontalAdd(m2, m3));
            float dmin = -QuantBits.Half(w + 2);
            var dxs = Vector128.Create(d0[b], d1[b], d2[b], d3[b]);
            accm = Fma.MultiplyAdd(dxs * dmin, Sse2.ConvertToVector128Single(msum), accm);

            var sc128 = Sse41.ConvertToVector128Int16(u);
            var sc = Vector256.Create(sc128, sc128).AsByte();
            byte* qs = w + 16;
            var i0 = Vector256<int>.Zero; var i1 = i0; var i2 = i0; var i3 = i0;
            long o = 256L * b;
            Step4(qs, sc, m4, 0, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Step4(qs, sc, m4, 1, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Step4(qs, sc, m4, 2, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Step4(qs, sc, m4, 3, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            float d = QuantBits.Half(w);
            acc0 = Fma.MultiplyAdd(Vector256.Create(d * d0[b]), Avx.ConvertToVector256Single(i0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d * d1[b]), Avx.ConvertToVector256Single(i1), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.Create(d * d2[b]), Avx.ConvertToVector256Single(i2), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.Create(d * d3[b]), Avx.ConvertToVector256Single(i3), acc3);
        }
        y[0] = Vector256.Sum(acc0) + accm[0];
        y[1] = Vector256.Sum(acc1) + accm[1];
        y[2] = Vector256.Sum(acc2) + accm[2];
        y[3] = Vector256.Sum(acc3) + accm[3];
    }

    /// <summary>Sub-blocks 2k and 2k+1, unpacked once, against four x rows (each pointer at the block's start).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Step4(byte* qs, Vector256<byte> sc, Vector256<byte> m4, int k, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3,
        ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
    {
        var q = Avx.LoadVector256(qs + 32 * k);
        var lo = Avx2.And(q, m4);
        var hi = Avx2.And(Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte(), m4);
        var sa = Avx2.Shuffle(sc, QuantBits.Broadcast16(2 * k)).AsInt16();
        var sb = Avx2.Shuffle(sc, QuantBits.Broadcast16(2 * k + 1)).AsInt16();
        int at = 64 * k;
        i0 = Avx2.Add(i0, Avx2.Add(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(x0 + at)), sa), Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(x0 + at + 32)), sb)));
        i1 = Avx2.Add(i1, Avx2.Add(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(x1 + at)), sa), Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(x1 + at + 32)), sb)));
        i2 = Avx2.Add(i2, Avx2.Add(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(x2 + at)), sa), Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(x2 + at + 32)), sb)));
        i3 = Avx2.Add(i3, Avx2.Add(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(x3 + at)), sa), Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(x3 + at + 32)), sb)));
    }
}