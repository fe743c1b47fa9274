using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// Q4_K · q8_K in 512-bit registers (AVX-512 F/BW), the arithmetic of <see cref="Q4KAvx2"/> with half the
/// instructions: the 32 bytes holding sub-blocks 2k (low nibbles) and 2k+1 (high) are broadcast to both halves of a
/// register and shifted by 0 in the low half, 4 in the high half (vpsrlvw), so one register holds values
/// 64k..64k+63 in order and meets one 64-byte load of x; the two sub-blocks' scales come from one vpermw.
/// </summary>
internal readonly unsafe struct Q4KAvx512 : IQuantDot
{
    public static int ActBlock => 256;

    /// <summary>Values 64k..64k+63 of the block as bytes 0-15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<byte> Nibbles(byte* qs, int k, Vector512<ushort> shifts)
    {
        // Not Avx512F.BroadcastVector256ToVector512((ulong*)(qs + 32 * k)): .NET 10's JIT folded that address as
        // qs + 64k (the byte offset scaled again), reading the wrong blocks.
        var v = Avx.LoadVector256(qs + 32 * k);
        var q = Avx512F.InsertVector256(v.ToVector512Unsafe(), v, 1).AsUInt16(); // one vinserti64x4 (Vector512.Create(v, v) took two)
        return Avx512F.And(Avx512BW.ShiftRightLogicalVariable(q, shifts).AsByte(), Vector512.Create((byte)0x0F));
    }

    /// <summary>The vpsrlvw counts of <see cref="Nibbles"/>: 0 for the low half, 4 for the high half.</summary>
    internal static Vector512<ushort> NibbleShifts => Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));

    /// <summary>vpermw indices selecting scale 2k for int16 lanes 0-15 and 2k+1 for lanes 16-31. Built once per call
    /// and kept in registers: the JIT rebuilt such constants (two inserts each) on every use inside the loop.</summary>
    internal static Vector512<short> PairIndex(int k) => Vector512.Create(Vector256.Create((short)(2 * k)), Vector256.Create((short)(2 * k + 1)));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot1(byte* w, int nb, in Q8Rows a, int r)
    {
        sbyte* xq = a.RowQ(r);
        float* xd = a.RowD(r);
        short* xbs = a.RowBSums32(r);
        var acc = Vector512<float>.Zero;
        var accm = Vector128<float>.Zero;
        var shifts = NibbleShifts;
        Vector512<short> p0 = PairIndex(0), p1 = PairIndex(1), p2 = PairIndex(2), p3 = PairIndex(3);
        int pf = QuantKernels.PrefetchBytes;
        for (int b = 0; b < nb; b++, w += Q4KAvx2.BlockBytes, xq += 256, xbs += 8)
        {
            if (pf > 0) QuantBits.Prefetch(w + pf, 3);
            var dd = QuantBits.HalfPair(w) * xd[b]; // d·dx, dmin·dx
            var u = QuantBits.K4Scales(w + 4);
            var mins = Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(u, 8));
            accm = Fma.MultiplyAddNegated(Sse.Shuffle(dd, dd, 0b01_01_01_01), Sse2.ConvertToVector128Single(Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(xbs))), accm);
            var sc = Sse41.ConvertToVector128Int16(u).ToVector256Unsafe().ToVector512Unsafe();
            byte* qs = w + 16;
            var sumi = Step(qs, xq, sc, shifts, p0, 0) + Step(qs, xq, sc, shifts, p1, 1) + Step(qs, xq, sc, shifts, p2, 2) + Step(qs, xq, sc, shifts, p3, 3);
            acc = Avx512F.FusedMultiplyAdd(Avx512F.BroadcastScalarToVector512(dd), Avx512F.ConvertToVector512Single(sumi), acc);
        }
        return Vector512.Sum(acc) + Vector128.Sum(accm);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<int> Step(byte* qs, sbyte* xq, Vector512<short> sc, Vector512<ushort> shifts, Vector512<short> pair, int k) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Nibbles(qs, k, shifts), Avx512BW.LoadVector512(xq + 64 * k)), Avx512BW.PermuteVar32x16(sc, pair));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4(byte* w, int nb, in Q8Rows a, int r, float* y)
    {
        int k = a.K;
        sbyte* x0 = a.RowQ(r), x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        float* d0 = a.RowD(r), d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        short* s0 = a.RowBSums32(r), s1 = s0 + 8 * nb, s2 = s1 + 8 * nb, s3 = s2 + 8 * nb;
        var acc0 = Vector512<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        var accm = Vector128<float>.Zero;
        var shifts = NibbleShifts;
        Vector512<short> p0 = PairIndex(0), p1 = PairIndex(1), p2 = PairIndex(2), p3 = PairIndex(3);
        for (int b = 0; b < nb; b++, w += Q4KAvx2.BlockBytes)
        {
            var u = QuantBits.K4Scales(w + 4);
            var mins = Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(u, 8));
            var m0 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s0 + 8 * b));
            var m1 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s1 + 8 * b));
            var m2 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s2 + 8 * b));
            var m3 = Sse2.MultiplyAddAdjacent(mins, Sse2.LoadVector128(s3 + 8 * b));
            var msum = Ssse3.HorizontalAdd(Ssse3.HorizontalAdd(m0, m1), Ssse3.HorizontalAdd(m2, m3));
            var dxs = Vector128.Create(d0[b], d1[b], d2[b], d3[b]);
            accm = Fma.MultiplyAdd(dxs * -QuantBits.Half(w + 2), Sse2.ConvertToVector128Single(msum), accm);

            var sc = Sse41.ConvertToVector128Int16(u).ToVector256Unsafe().ToVector512Unsafe();
            byte* qs = w + 16;
            long o = 256L * b;
            var i0 = Vector512<int>.Zero; var i1 = i0; var i2 = i0; var i3 = i0;
            Step4(qs, sc, shifts, p0, 0, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Step4(qs, sc, shifts, p1, 1, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Step4(qs, sc, shifts, p2, 2, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            Step4(qs, sc, shifts, p3, 3, x0 + o, x1 + o, x2 + o, x3 + o, ref i0, ref i1, ref i2, ref i3);
            var ds = dxs * QuantBits.Half(w);
            acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[0]), Avx512F.ConvertToVector512Single(i0), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[1]), Avx512F.ConvertToVector512Single(i1), acc1);
            acc2 = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2]), Avx512F.ConvertToVector512Single(i2), acc2);
            acc3 = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[3]), Avx512F.ConvertToVector512Single(i3), acc3);
        }
        y[0] = Vector512.Sum(acc0) + accm[0];
        y[1] = Vector512.Sum(acc1) + accm[1];
        y[2] = Vector512.Sum(acc2) + accm[2];
        y[3] = Vector512.Sum(acc3) + accm[3];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Step4(byte* qs, Vector512<short> sc, Vector512<ushort> shifts, Vector512<short> pair, int k, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3,
        ref Vector512<int> i0, ref Vector512<int> i1, ref Vector512<int> i2, ref Vector512<int> i3)
    {
        var q = Nibbles(qs, k, shifts);
        var s = Avx512BW.PermuteVar32x16(sc, pair);
        int at = 64 * k;
        i0 = Avx512F.Add(i0, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Avx512BW.LoadVector512(x0 + at)), s));
        i1 = Avx512F.Add(i1, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Avx512BW.LoadVector512(x1 + at)), s));
        i2 = Avx512F.Add(i2, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Avx512BW.LoadVector512(x2 + at)), s));
        i3 = Avx512F.Add(i3, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Avx512BW.LoadVector512(x3 + at)), s));
    }
}
