using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// Q5_0 · q8_0 on AVX2 (ggml's ggml_vec_dot_q5_0_q8_0): block_q5_0 { f16 d; u32 qh; u8 qs[16] }, x = d·(q − 16) with
/// q = nibble | (bit j of qh) · 16, values 0-15 in the low nibbles and 16-31 in the high ones. llama-quantize falls back
/// to it for Q4_K tensors whose rows are not whole 256-value blocks (small hidden sizes). As in <see cref="Q4_0Avx2"/>
/// the 5-bit values stay unsigned for vpmaddubsw and the −16 comes out of the activations' block sums.
/// </summary>
internal readonly unsafe struct Q5_0Avx2 : IQuantDot
{
    public const int BlockBytes = 22;
    public static int ActBlock => 32;

    /// <summary>The 32 values 0-31 of a block, in value order (ggml's bytes_from_bits_32 for the fifth bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> Values(byte* w)
    {
        var q = Sse2.LoadVector128(w + 6);
        var nibbles = Avx2.And(Vector256.Create(q, Sse2.ShiftRightLogical(q.AsUInt16(), 4).AsByte()), Vector256.Create((byte)0x0F));
        // Byte i of the 32-bit qh to lanes 8i..8i+7, then bit (lane mod 8) of it tested: 0xFF where set.
        var bytes = Avx2.Shuffle(Vector256.Create(*(uint*)(w + 2)).AsByte(),
            Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
        var bit = Vector256.Create(0x8040201008040201UL).AsByte();
        var high = Avx2.And(Avx2.CompareEqual(Avx2.And(bytes, bit), bit), Vector256.Create((byte)0x10));
        return Avx2.Or(nibbles, high);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot1(byte* w, int nb, in Q8Rows a, int r)
    {
        sbyte* xq = a.RowQ(r);
        float* xd = a.RowD(r), xs = a.RowSums(r);
        var ones = Vector256.Create((short)1);
        var acc = Vector256<float>.Zero;
        float off = 0;
        for (int b = 0; b < nb; b++, w += BlockBytes, xq += 32)
        {
            float d = QuantBits.Half(w);
            var p = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Values(w), Avx.LoadVector256(xq)), ones);
            acc = Fma.MultiplyAdd(Vector256.Create(d * xd[b]), Avx.ConvertToVector256Single(p), acc);
            off += d * xs[b];
        }
        return Vector256.Sum(acc) - 16 * off;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4(byte* w, int nb, in Q8Rows a, int r, float* y)
    {
        int k = a.K;
        sbyte* x0 = a.RowQ(r), x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        float* d0 = a.RowD(r), d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb;
        float* s0 = a.RowSums(r), s1 = s0 + nb, s2 = s1 + nb, s3 = s2 + nb;
        var ones = Vector256.Create((short)1);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        var off = Vector128<float>.Zero;
        for (int b = 0; b < nb; b++, w += BlockBytes)
        {
            float d = QuantBits.Half(w);
            var q = Values(w);
            int at = 32 * b;
            acc0 = Fma.MultiplyAdd(Vector256.Create(d * d0[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x0 + at)), ones)), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d * d1[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x1 + at)), ones)), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.Create(d * d2[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x2 + at)), ones)), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.Create(d * d3[b]), Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Avx.LoadVector256(x3 + at)), ones)), acc3);
            off = Fma.MultiplyAdd(Vector128.Create(d), Vector128.Create(s0[b], s1[b], s2[b], s3[b]), off);
        }
        y[0] = Vector256.Sum(acc0) - 16 * off[0]; y[1] = Vector256.Sum(acc1) - 16 * off[1];
        y[2] = Vector256.Sum(acc2) - 16 * off[2]; y[3] = Vector256.Sum(acc3) - 16 * off[3];
    }
}
