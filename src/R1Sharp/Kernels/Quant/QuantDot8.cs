using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// One weight row against 8·G activation rows at once (<see cref="Q8Groups"/>), AVX2: each weight block is unpacked
/// once into bytes on the stack, and 4 of its values at a time are broadcast (a load, no shuffle) against the same 4
/// positions of 8 rows, so a vector's lanes are the 8 rows. What this buys over <see cref="IQuantDot.Dot4"/>: the
/// int16 products of one sub-block (one scale) add up in int16 before the one vpmaddwd with the scale, where the
/// row-major kernels need a vpmaddwd per 32 values and row (the trick of llama.cpp's repacked q4_K 8×8 GEMM, there
/// with the weights interleaved); and the float scaling per block serves 8 rows with one instruction.
/// </summary>
internal unsafe interface IQuantDot8
{
    /// <summary>y[8g + i] = weight row w · activation row 8g + i, for every group g of <paramref name="a"/>.</summary>
    static abstract void Dot8(byte* w, int nb, in Q8Groups a, float* y);
}

/// <summary>Q4_K (<see cref="Q4KAvx2"/>'s block) for 8-row groups. A sub-block's eight vpmaddubsw results add in
/// int16 (at most 8·2·15·127 = 30480) before one vpmaddwd with its scale.</summary>
internal readonly unsafe struct Q4KAvx2x8 : IQuantDot8
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8(byte* w, int nb, in Q8Groups a, float* y)
    {
        byte* q = stackalloc byte[256 + 32];
        q = (byte*)(((nint)q + 31) & ~(nint)31);
        short* sm = stackalloc short[16]; // 8 scales, 8 mins
        int groups = a.Groups;
        var acc = stackalloc Vector256<float>[2 * groups]; // per group: scaled sums, mins term
        for (int g = 0; g < 2 * groups; g++) acc[g] = Vector256<float>.Zero;
        var m4 = Vector256.Create((byte)0x0F);
        for (int b = 0; b < nb; b++, w += Q4KAvx2.BlockBytes)
        {
            Unpack(w, q, sm, m4);
            float d = QuantBits.Half(w), dmin = QuantBits.Half(w + 2);
            int g = 0;
            for (; g + 2 <= groups; g += 2)
            {
                // two groups at once: each broadcast of weights meets 16 rows
                sbyte* x0 = a.GroupQ(g) + 2048L * b, x1 = a.GroupQ(g + 1) + 2048L * b; // 256 values × 8 rows each
                var sumi0 = Vector256<int>.Zero; var sumi1 = sumi0;
                for (int s = 0; s < 8; s++)
                {
                    byte* qq = q + 32 * s;
                    sbyte* xa = x0 + 256 * s, xb = x1 + 256 * s;
                    var wv = Vector256.Create(*(int*)qq).AsByte();
                    var p0 = Avx2.MultiplyAddAdjacent(wv, Avx.LoadVector256(xa));
                    var p1 = Avx2.MultiplyAddAdjacent(wv, Avx.LoadVector256(xb));
                    for (int c = 1; c < 8; c++)
                    {
                        wv = Vector256.Create(*(int*)(qq + 4 * c)).AsByte();
                        p0 = Avx2.Add(p0, Avx2.MultiplyAddAdjacent(wv, Avx.LoadVector256(xa + 32 * c)));
                        p1 = Avx2.Add(p1, Avx2.MultiplyAddAdjacent(wv, Avx.LoadVector256(xb + 32 * c)));
                    }
                    var scale = Vector256.Create(sm[s]);
                    sumi0 = Avx2.Add(sumi0, Avx2.MultiplyAddAdjacent(p0, scale));
                    sumi1 = Avx2.Add(sumi1, Avx2.MultiplyAddAdjacent(p1, scale));
                }
                Finish(a, g, b, sm, d, dmin, sumi0, acc);
                Finish(a, g + 1, b, sm, d, dmin, sumi1, acc);
            }
            for (; g < groups; g++)
            {
                sbyte* x = a.GroupQ(g) + 2048L * b; // 256 values × 8 rows
                var sumi = Vector256<int>.Zero;
                for (int s = 0; s < 8; s++)
                {
                    byte* qq = q + 32 * s;
                    sbyte* xx = x + 256 * s;
                    var p = Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)qq).AsByte(), Avx.LoadVector256(xx));
                    for (int c = 1; c < 8; c++)
                        p = Avx2.Add(p, Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)(qq + 4 * c)).AsByte(), Avx.LoadVector256(xx + 32 * c)));
                    sumi = Avx2.Add(sumi, Avx2.MultiplyAddAdjacent(p, Vector256.Create(sm[s])));
                }
                Finish(a, g, b, sm, d, dmin, sumi, acc);
            }
        }
        for (int g = 0; g < groups; g++) (acc[2 * g] - acc[2 * g + 1]).Store(y + 8 * g);
    }

    /// <summary>A block's 256 values as bytes at q (sub-block j at 32j) and its scales and mins at sm (8 + 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Unpack(byte* w, byte* q, short* sm, Vector256<byte> m4)
    {
        var u = QuantBits.K4Scales(w + 4);
        Sse2.Store(sm, Sse41.ConvertToVector128Int16(u));
        Sse2.Store(sm + 8, Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(u, 8)));
        byte* qs = w + 16;
        for (int k = 0; k < 4; k++)
        {
            var v = Avx.LoadVector256(qs + 32 * k);
            Avx.Store(q + 64 * k, Avx2.And(v, m4));
            Avx.Store(q + 64 * k + 32, Avx2.And(Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte(), m4));
        }
    }

    /// <summary>Group g's block b: its scaled sums, and Σ_j m_j · bsum32_j per row (the block's 4 pairs of sub-blocks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Finish(in Q8Groups a, int g, int b, short* sm, float d, float dmin, Vector256<int> sumi, Vector256<float>* acc)
    {
        short* bs = a.GroupBSums32(g) + 64L * b;
        var mi = Avx2.MultiplyAddAdjacent(Avx.LoadVector256(bs), Vector256.Create(*(int*)(sm + 8)).AsInt16());
        mi = Avx2.Add(mi, Avx2.MultiplyAddAdjacent(Avx.LoadVector256(bs + 16), Vector256.Create(*(int*)(sm + 10)).AsInt16()));
        mi = Avx2.Add(mi, Avx2.MultiplyAddAdjacent(Avx.LoadVector256(bs + 32), Vector256.Create(*(int*)(sm + 12)).AsInt16()));
        mi = Avx2.Add(mi, Avx2.MultiplyAddAdjacent(Avx.LoadVector256(bs + 48), Vector256.Create(*(int*)(sm + 14)).AsInt16()));
        var dx = Avx.LoadVector256(a.GroupD(g) + 8L * b);
        acc[2 * g] = Fma.MultiplyAdd(dx * d, Avx.ConvertToVector256Single(sumi), acc[2 * g]);
        acc[2 * g + 1] = Fma.MultiplyAdd(dx * dmin, Avx.ConvertToVector256Single(mi), acc[2 * g + 1]);
    }
}

/// <summary>Q6_K (<see cref="Q6KAvx2"/>'s block) for 8-row groups. Values are 0..63 (the −32 comes out of the
/// per-16 sums, as in Q6KAvx2), so only two vpmaddubsw results add in int16 (2·2·63·127 = 32004) before the
/// vpmaddwd with their sub-block's scale.</summary>
internal readonly unsafe struct Q6KAvx2x8 : IQuantDot8
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8(byte* w, int nb, in Q8Groups a, float* y)
    {
        byte* q = stackalloc byte[256 + 32];
        q = (byte*)(((nint)q + 31) & ~(nint)31);
        short* sc = stackalloc short[16];
        int groups = a.Groups;
        var acc = stackalloc Vector256<float>[groups];
        for (int g = 0; g < groups; g++) acc[g] = Vector256<float>.Zero;
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        for (int b = 0; b < nb; b++, w += Q6KAvx2.BlockBytes)
        {
            Avx.Store(sc, Avx2.ConvertToVector256Int16((sbyte*)w + 192));
            for (int h = 0; h < 2; h++)
            {
                var ql0 = Avx.LoadVector256(w + 64 * h);
                var ql1 = Avx.LoadVector256(w + 64 * h + 32);
                var qh = Avx.LoadVector256(w + 128 + 32 * h).AsUInt16();
                Avx.Store(q + 128 * h, Avx2.Or(Avx2.And(ql0, m4), Avx2.And(Avx2.ShiftLeftLogical(qh, 4).AsByte(), m30)));
                Avx.Store(q + 128 * h + 32, Avx2.Or(Avx2.And(ql1, m4), Avx2.And(Avx2.ShiftLeftLogical(qh, 2).AsByte(), m30)));
                Avx.Store(q + 128 * h + 64, Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte(), m4), Avx2.And(qh.AsByte(), m30)));
                Avx.Store(q + 128 * h + 96, Avx2.Or(Avx2.And(Avx2.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte(), m4), Avx2.And(Avx2.ShiftRightLogical(qh, 2).AsByte(), m30)));
            }
            float d = QuantBits.Half(w + 208);
            int g = 0;
            for (; g + 2 <= groups; g += 2)
            {
                // two groups at once: each broadcast of weights meets 16 rows
                sbyte* xa = a.GroupQ(g) + 2048L * b, xb = a.GroupQ(g + 1) + 2048L * b;
                var sa = Offset(a, g, b, sc); var sb = Offset(a, g + 1, b, sc);
                for (int s = 0; s < 16; s++)
                {
                    byte* qq = q + 16 * s;
                    sbyte* x0 = xa + 128 * s, x1 = xb + 128 * s;
                    var scale = Vector256.Create(sc[s]);
                    var w0 = Vector256.Create(*(int*)qq).AsByte(); var w1 = Vector256.Create(*(int*)(qq + 4)).AsByte();
                    var w2 = Vector256.Create(*(int*)(qq + 8)).AsByte(); var w3 = Vector256.Create(*(int*)(qq + 12)).AsByte();
                    var p0 = Avx2.Add(Avx2.MultiplyAddAdjacent(w0, Avx.LoadVector256(x0)), Avx2.MultiplyAddAdjacent(w1, Avx.LoadVector256(x0 + 32)));
                    var p1 = Avx2.Add(Avx2.MultiplyAddAdjacent(w2, Avx.LoadVector256(x0 + 64)), Avx2.MultiplyAddAdjacent(w3, Avx.LoadVector256(x0 + 96)));
                    sa = Avx2.Add(sa, Avx2.Add(Avx2.MultiplyAddAdjacent(p0, scale), Avx2.MultiplyAddAdjacent(p1, scale)));
                    p0 = Avx2.Add(Avx2.MultiplyAddAdjacent(w0, Avx.LoadVector256(x1)), Avx2.MultiplyAddAdjacent(w1, Avx.LoadVector256(x1 + 32)));
                    p1 = Avx2.Add(Avx2.MultiplyAddAdjacent(w2, Avx.LoadVector256(x1 + 64)), Avx2.MultiplyAddAdjacent(w3, Avx.LoadVector256(x1 + 96)));
                    sb = Avx2.Add(sb, Avx2.Add(Avx2.MultiplyAddAdjacent(p0, scale), Avx2.MultiplyAddAdjacent(p1, scale)));
                }
                acc[g] = Fma.MultiplyAdd(Avx.LoadVector256(a.GroupD(g) + 8L * b) * d, Avx.ConvertToVector256Single(sa), acc[g]);
                acc[g + 1] = Fma.MultiplyAdd(Avx.LoadVector256(a.GroupD(g + 1) + 8L * b) * d, Avx.ConvertToVector256Single(sb), acc[g + 1]);
            }
            for (; g < groups; g++)
            {
                sbyte* x = a.GroupQ(g) + 2048L * b;
                var sumi = Offset(a, g, b, sc);
                for (int s = 0; s < 16; s++)
                {
                    byte* qq = q + 16 * s;
                    sbyte* xx = x + 128 * s;
                    var scale = Vector256.Create(sc[s]);
                    var p0 = Avx2.Add(Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)qq).AsByte(), Avx.LoadVector256(xx)),
                                      Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)(qq + 4)).AsByte(), Avx.LoadVector256(xx + 32)));
                    var p1 = Avx2.Add(Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)(qq + 8)).AsByte(), Avx.LoadVector256(xx + 64)),
                                      Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)(qq + 12)).AsByte(), Avx.LoadVector256(xx + 96)));
                    sumi = Avx2.Add(sumi, Avx2.Add(Avx2.MultiplyAddAdjacent(p0, scale), Avx2.MultiplyAddAdjacent(p1, scale)));
                }
                acc[g] = Fma.MultiplyAdd(Avx.LoadVector256(a.GroupD(g) + 8L * b) * d, Avx.ConvertToVector256Single(sumi), acc[g]);
            }
        }
        for (int g = 0; g < groups; g++) acc[g].Store(y + 8 * g);
    }

    /// <summary>−32 · Σ_j sc_j · bsum16_j per row of group g in block b (its 8 pairs of sub-blocks): the values'
    /// offset, taken out of the activations' sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Offset(in Q8Groups a, int g, int b, short* sc)
    {
        short* bs = a.GroupBSums16(g) + 128L * b;
        var off = Vector256<int>.Zero;
        for (int p = 0; p < 8; p++)
            off = Avx2.Add(off, Avx2.MultiplyAddAdjacent(Avx.LoadVector256(bs + 16 * p), Vector256.Create(*(int*)(sc + 2 * p)).AsInt16()));
        return Avx2.Subtract(Vector256<int>.Zero, Avx2.ShiftLeftLogical(off, 5));
    }
}

/// <summary>Q8_0 (<see cref="Q8_0Avx2"/>'s block) for 8-row groups: the weight's sign moves onto the activations
/// (vpsignb) as in Q8_0Avx2, and int16 pairs (up to 2·128·127) cannot add before widening, so what the 8-row layout
/// saves here is the per-block conversion and scaling: one vcvtdq2ps and one FMA per 32 values for 8 rows instead
/// of one per row.</summary>
internal readonly unsafe struct Q8_0Avx2x8 : IQuantDot8
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8(byte* w, int nb, in Q8Groups a, float* y)
    {
        int groups = a.Groups;
        var acc = stackalloc Vector256<float>[groups];
        for (int g = 0; g < groups; g++) acc[g] = Vector256<float>.Zero;
        byte* aq = stackalloc byte[64];
        aq = (byte*)(((nint)aq + 31) & ~(nint)31);
        var ones = Vector256.Create((short)1);
        for (int b = 0; b < nb; b++, w += Q8_0Avx2.BlockBytes)
        {
            sbyte* qs = (sbyte*)w + 2;
            Avx.Store(aq, Avx2.Abs(Avx.LoadVector256(qs)));
            float d = QuantBits.Half(w);
            var dw = Vector256.Create(d);
            int g = 0;
            for (; g + 2 <= groups; g += 2)
            {
                sbyte* xa = a.GroupQ(g) + 256L * b, xb = a.GroupQ(g + 1) + 256L * b; // 32 values × 8 rows each
                var s0 = Vector256<int>.Zero; var s1 = s0;
                for (int c = 0; c < 8; c++)
                {
                    var wa = Vector256.Create(*(int*)(aq + 4 * c)).AsByte();
                    var ws = Vector256.Create(*(int*)(qs + 4 * c)).AsSByte();
                    s0 = Avx2.Add(s0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(wa, Avx2.Sign(Avx.LoadVector256(xa + 32 * c), ws)), ones));
                    s1 = Avx2.Add(s1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(wa, Avx2.Sign(Avx.LoadVector256(xb + 32 * c), ws)), ones));
                }
                acc[g] = Fma.MultiplyAdd(Avx.LoadVector256(a.GroupD(g) + 8L * b) * dw, Avx.ConvertToVector256Single(s0), acc[g]);
                acc[g + 1] = Fma.MultiplyAdd(Avx.LoadVector256(a.GroupD(g + 1) + 8L * b) * dw, Avx.ConvertToVector256Single(s1), acc[g + 1]);
            }
            for (; g < groups; g++)
            {
                sbyte* x = a.GroupQ(g) + 256L * b;
                var sumi = Vector256<int>.Zero;
                for (int c = 0; c < 8; c++)
                {
                    var p = Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)(aq + 4 * c)).AsByte(), Avx2.Sign(Avx.LoadVector256(x + 32 * c), Vector256.Create(*(int*)(qs + 4 * c)).AsSByte()));
                    sumi = Avx2.Add(sumi, Avx2.MultiplyAddAdjacent(p, ones));
                }
                acc[g] = Fma.MultiplyAdd(Avx.LoadVector256(a.GroupD(g) + 8L * b) * dw, Avx.ConvertToVector256Single(sumi), acc[g]);
            }
        }
        for (int g = 0; g < groups; g++) acc[g].Store(y + 8 * g);
    }
}
