using System.Buffers.Binary;

namespace R1Sharp.IO;

/// <summary>
/// Decoding of ggml's storage types into float32, following the block layouts of ggml-common.h and the reference
/// dequantize_row_* functions of ggml-quants.c; and Q8_0 encoding as quantize_row_q8_0_ref does it.
/// </summary>
public static class GgufQuant
{
    static float Half(ReadOnlySpan<byte> b, int at) => (float)BinaryPrimitives.ReadHalfLittleEndian(b.Slice(at, 2));

    /// <summary>Decodes whole blocks of <paramref name="src"/> into <paramref name="dst"/> (dst.Length values).</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        var (bs, bb) = GgmlTypeInfo.Geometry(type);
        if (dst.Length % bs != 0 || src.Length != dst.Length / bs * bb)
            throw new ArgumentException($"{type}: {src.Length} bytes do not hold {dst.Length} values");
        int blocks = dst.Length / bs;
        for (int i = 0; i < blocks; i++)
        {
            var b = src.Slice(i * bb, bb);
            var y = dst.Slice(i * bs, bs);
            switch (type)
            {
                case GgmlType.F32: y[0] = BinaryPrimitives.ReadSingleLittleEndian(b); break;
                case GgmlType.F16: y[0] = Half(b, 0); break;
                case GgmlType.BF16: y[0] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16); break;
                case GgmlType.Q8_0: Q8_0(b, y); break;
                case GgmlType.Q4_0: Q4_0(b, y); break;
                case GgmlType.Q5_0: Q5_0(b, y); break;
                case GgmlType.Q4_K: Q4_K(b, y); break;
                case GgmlType.Q5_K: Q5_K(b, y); break;
                case GgmlType.Q6_K: Q6_K(b, y); break;
                default: GgmlTypeInfo.Geometry(type); break;
            }
        }
    }

    // block_q8_0 { f16 d; int8 qs[32]; }: x = d·q
    static void Q8_0(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0);
        for (int j = 0; j < 32; j++) y[j] = d * (sbyte)b[2 + j];
    }

    // block_q4_0 { f16 d; u8 qs[16]; }: low nibbles are x[0..15], high nibbles x[16..31], both offset by 8
    static void Q4_0(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0);
        for (int j = 0; j < 16; j++)
        {
            y[j] = ((b[2 + j] & 0x0F) - 8) * d;
            y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
        }
    }

    // block_q5_0 { f16 d; u8 qh[4]; u8 qs[16]; }: Q4_0's nibbles plus a fifth bit per value (bit j of the 32-bit qh
    // for value j), offset by 16: x = d·(q − 16) (dequantize_row_q5_0).
    static void Q5_0(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(2, 4));
        for (int j = 0; j < 16; j++)
        {
            int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (((b[6 + j] & 0x0F) | h0) - 16) * d;
            y[j + 16] = (((b[6 + j] >> 4) | h1) - 16) * d;
        }
    }

    // block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }: 8 sub-blocks of 32 with 6-bit scale and min;
    // x = d·sc·q − dmin·m, sub-blocks 2k and 2k+1 sharing bytes qs[32k..] (low and high nibbles).
    static void Q4_K(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0), dmin = Half(b, 2);
        var scales = b.Slice(4, 12);
        var qs = b.Slice(16, 128);
        for (int k = 0; k < 4; k++)
        {
            var (sc1, m1) = ScaleMinK4(2 * k, scales);
            var (sc2, m2) = ScaleMinK4(2 * k + 1, scales);
            float d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
            var q = qs.Slice(32 * k, 32);
            for (int l = 0; l < 32; l++)
            {
                y[64 * k + l] = d1 * (q[l] & 0x0F) - mm1;
                y[64 * k + 32 + l] = d2 * (q[l] >> 4) - mm2;
            }
        }
    }

    // get_scale_min_k4: the first four scales/mins are the low 6 bits of bytes 0..7; the last four are packed
    // into bytes 8..11 (low/high nibbles) with their top two bits in the top bits of bytes 0..7.
    internal static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }: Q4_K's layout plus a fifth bit per value:
    // value l of sub-block j takes bit j of qh[l] (dequantize_row_q5_K).
    static void Q5_K(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 0), dmin = Half(b, 2);
        var scales = b.Slice(4, 12);
        var qh = b.Slice(16, 32);
        var qs = b.Slice(48, 128);
        for (int k = 0; k < 4; k++)
        {
            var (sc1, m1) = ScaleMinK4(2 * k, scales);
            var (sc2, m2) = ScaleMinK4(2 * k + 1, scales);
            float d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
            var q = qs.Slice(32 * k, 32);
            for (int l = 0; l < 32; l++)
            {
                y[64 * k + l] = d1 * ((q[l] & 0x0F) + ((qh[l] >> (2 * k)) & 1) * 16) - mm1;
                y[64 * k + 32 + l] = d2 * ((q[l] >> 4) + ((qh[l] >> (2 * k + 1)) & 1) * 16) - mm2;
            }
        }
    }

    // block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }: 6-bit values (4 low bits in ql, 2 high in qh)
    // offset by 32, 16 sub-blocks of 16 with int8 scales; two halves of 128 values each.
    static void Q6_K(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = Half(b, 208);
        for (int n = 0; n < 2; n++)
        {
            var ql = b.Slice(64 * n, 64);
            var qh = b.Slice(128 + 32 * n, 32);
            var sc = b.Slice(192 + 8 * n, 8);
            var o = y.Slice(128 * n, 128);
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                o[l] = d * (sbyte)sc[s] * q1;
                o[l + 32] = d * (sbyte)sc[s + 2] * q2;
                o[l + 64] = d * (sbyte)sc[s + 4] * q3;
                o[l + 96] = d * (sbyte)sc[s + 6] * q4;
            }
        }
    }

    /// <summary>Encodes float32 values (a multiple of 32) as Q8_0 blocks: d = max|x|/127 stored as f16,
    /// q = round(x/d) rounding half away from zero, as quantize_row_q8_0_ref.</summary>
    public static void QuantizeQ8_0(ReadOnlySpan<float> x, Span<byte> dst)
    {
        if (x.Length % 32 != 0 || dst.Length != x.Length / 32 * 34) throw new ArgumentException("Q8_0 needs whole blocks of 32");
        for (int i = 0; i < x.Length / 32; i++)
        {
            var v = x.Slice(32 * i, 32);
            var b = dst.Slice(34 * i, 34);
            float amax = 0;
            foreach (float f in v) amax = Math.Max(amax, Math.Abs(f));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteHalfLittleEndian(b, (Half)d);
            for (int j = 0; j < 32; j++) b[2 + j] = (byte)(sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
        }
    }
}
