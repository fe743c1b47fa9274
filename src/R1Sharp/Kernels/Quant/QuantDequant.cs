using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.IO;

namespace R1Sharp.Kernels;

/// <summary>
/// Quantized rows → float32 with exactly the values of ggml's dequantize_row_* (the same float32 multiply and subtract,
/// no FMA), eight at a time on AVX2 for Q4_K, Q6_K and Q8_0 (the formats of Q4_K_M and Q8_0 files), through
/// <see cref="GgufQuant"/> otherwise. Feeds prefill's dequantised tiles (<see cref="QuantPrefill"/>) and tests.
/// </summary>
public static unsafe class QuantDequant
{
    public static void Rows(QuantMatrix m, int first, int count, float* dst) => Rows(m, first, count, dst, 0, m.Blocks);

    /// <summary>Blocks [block0, block0 + blocks) of rows [first, first + count): columns [block0·BlockSize, …) of the
    /// matrix, blocks·BlockSize values per row of dst (a column slice: each block dequantises on its own).</summary>
    public static void Rows(QuantMatrix m, int first, int count, float* dst, int block0, int blocks)
    {
        bool simd = QuantKernels.Isa != QuantIsa.Scalar;
        int bs = m.BlockSize, bb = m.BlockBytes, width = blocks * bs;
        for (int i = 0; i < count; i++)
        {
            byte* w = m.Row(first + i) + (long)block0 * bb;
            float* y = dst + (long)i * width;
            switch (simd ? m.Type : GgmlType.F32)
            {
                case GgmlType.Q4_K: for (int b = 0; b < blocks; b++) Q4K(w + b * 144, y + b * 256); break;
                case GgmlType.Q6_K: for (int b = 0; b < blocks; b++) Q6K(w + b * 210, y + b * 256); break;
                case GgmlType.Q8_0: for (int b = 0; b < blocks; b++) Q8_0(w + b * 34, y + b * 32); break;
                default:
                    GgufQuant.Dequantize(m.Type, new ReadOnlySpan<byte>(w, blocks * bb), new Span<float>(y, width));
                    break;
            }
        }
    }

    // dequantize_row_q4_K: y = d·sc·q − dmin·m per sub-block of 32 (the product d·sc rounded first, as ggml does).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4K(byte* w, float* y)
    {
        float d = QuantBits.Half(w), dmin = QuantBits.Half(w + 2);
        var u = QuantBits.K4Scales(w + 4);
        byte* qs = w + 16;
        var m4 = Vector256.Create(15);
        for (int j = 0; j < 4; j++)
        {
            var d1 = Vector256.Create(d * u.GetElement(2 * j)); var m1 = Vector256.Create(dmin * u.GetElement(8 + 2 * j));
            var d2 = Vector256.Create(d * u.GetElement(2 * j + 1)); var m2 = Vector256.Create(dmin * u.GetElement(9 + 2 * j));
            for (int l = 0; l < 32; l += 8)
            {
                var q = Avx2.ConvertToVector256Int32(qs + 32 * j + l);
                Avx.Store(y + 64 * j + l, Avx.Subtract(Avx.Multiply(d1, Avx.ConvertToVector256Single(Avx2.And(q, m4))), m1));
                Avx.Store(y + 64 * j + 32 + l, Avx.Subtract(Avx.Multiply(d2, Avx.ConvertToVector256Single(Avx2.ShiftRightLogical(q, 4))), m2));
            }
        }
    }

    // dequantize_row_q6_K: y = (d·sc)·(q − 32) per sub-block of 16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q6K(byte* w, float* y)
    {
        float d = QuantBits.Half(w + 208);
        sbyte* sc = (sbyte*)w + 192;
        var m4 = Vector256.Create(15);
        var three = Vector256.Create(3);
        var off = Vector256.Create(32);
        for (int n = 0; n < 2; n++)
        {
            byte* ql = w + 64 * n, qh = w + 128 + 32 * n;
            float* o = y + 128 * n;
            for (int l = 0; l < 32; l += 8)
            {
                int s = 8 * n + l / 16;
                var a = Avx2.ConvertToVector256Int32(ql + l);
                var b = Avx2.ConvertToVector256Int32(ql + 32 + l);
                var h = Avx2.ConvertToVector256Int32(qh + l);
                var q1 = Avx2.Subtract(Avx2.Or(Avx2.And(a, m4), Avx2.ShiftLeftLogical(Avx2.And(h, three), 4)), off);
                var q2 = Avx2.Subtract(Avx2.Or(Avx2.And(b, m4), Avx2.ShiftLeftLogical(Avx2.And(Avx2.ShiftRightLogical(h, 2), three), 4)), off);
                var q3 = Avx2.Subtract(Avx2.Or(Avx2.ShiftRightLogical(a, 4), Avx2.ShiftLeftLogical(Avx2.And(Avx2.ShiftRightLogical(h, 4), three), 4)), off);
                var q4 = Avx2.Subtract(Avx2.Or(Avx2.ShiftRightLogical(b, 4), Avx2.ShiftLeftLogical(Avx2.ShiftRightLogical(h, 6), 4)), off);
                Avx.Store(o + l, Avx.Multiply(Vector256.Create(d * sc[s]), Avx.ConvertToVector256Single(q1)));
                Avx.Store(o + l + 32, Avx.Multiply(Vector256.Create(d * sc[s + 2]), Avx.ConvertToVector256Single(q2)));
                Avx.Store(o + l + 64, Avx.Multiply(Vector256.Create(d * sc[s + 4]), Avx.ConvertToVector256Single(q3)));
                Avx.Store(o + l + 96, Avx.Multiply(Vector256.Create(d * sc[s + 6]), Avx.ConvertToVector256Single(q4)));
            }
        }
    }

    // dequantize_row_q8_0: y = q·d.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8_0(byte* w, float* y)
    {
        var d = Vector256.Create(QuantBits.Half(w));
        sbyte* q = (sbyte*)w + 2;
        for (int l = 0; l < 32; l += 8) Avx.Store(y + l, Avx.Multiply(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + l)), d));
    }
}
