using System.Buffers.Binary;

namespace R1Sharp.IO;

/// <summary>
/// float32 rows → ggml blocks, as llama.cpp's reference quantisers write them (ggml-quants.c: quantize_row_q8_0_ref,
/// q4_0_ref, q4_K_ref, q5_K_ref, q6_K_ref, i.e. what `llama-quantize` does without an importance matrix), so the files
/// `r1 quantize` writes hold the very bytes llama.cpp would. Every float operation is done in float32 in the order the C
/// code does it (ggml-base is built without FMA contraction or reassociation), which is what makes the bytes equal,
/// not merely close: the K-quants' scale search compares rounding errors, and one differently rounded sum can pick
/// another scale. Importance-matrix quantisation (quantize_row_q4_K_impl with weights) is not here.
/// </summary>
public static class GgmlQuantize
{
    public static bool IsSupported(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>Quantises x (whole blocks) into dst (x.Length / block size × block bytes).</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        var (bs, bb) = GgmlTypeInfo.Geometry(type);
        if (x.Length % bs != 0 || dst.Length != x.Length / bs * bb)
            throw new ArgumentException($"{type}: {x.Length} values and {dst.Length} bytes are not whole blocks of {bs} values / {bb} bytes");
        for (int i = 0; i < x.Length / bs; i++)
        {
            var v = x.Slice(i * bs, bs);
            var b = dst.Slice(i * bb, bb);
            switch (type)
            {
                case GgmlType.Q8_0: GgufQuant.QuantizeQ8_0(v, b); break;
                case GgmlType.Q4_0: Q4_0(v, b); break;
                case GgmlType.Q5_0: Q5_0(v, b); break;
                case GgmlType.Q4_K: QK(v, b, nmax: 15, rmin: -1f, rdelta: 0.1f, nstep: 20); break;
                case GgmlType.Q5_K: QK(v, b, nmax: 31, rmin: -0.5f, rdelta: 0.1f, nstep: 15); break;
                case GgmlType.Q6_K: Q6_K(v, b); break;
                default: throw new R1SharpException($"quantizing to {type} is not supported (Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)");
            }
        }
    }

    /// <summary>ggml's nearest_int: round half to even through the float adder (valid for |f| ≤ 2^22).</summary>
    static int NearestInt(float f) => (BitConverter.SingleToInt32Bits(f + 12582912f) & 0x007fffff) - 0x00400000;

    static float RoundToHalf(float f) => (float)(Half)f;

    static void WriteHalf(Span<byte> b, int at, float f) => BinaryPrimitives.WriteHalfLittleEndian(b.Slice(at, 2), (Half)f);

    // quantize_row_q4_0_ref: d = (the value of largest magnitude) / −8, q = min(15, trunc(x/d + 8.5)).
    static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < MathF.Abs(x[j])) { amax = MathF.Abs(x[j]); max = x[j]; }
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, 0, d);
        for (int j = 0; j < 16; j++)
        {
            float x0 = x[j] * id, x1 = x[16 + j] * id;
            int xi0 = Math.Min(15, (int)(sbyte)(int)(x0 + 8.5f)), xi1 = Math.Min(15, (int)(sbyte)(int)(x1 + 8.5f));
            y[2 + j] = (byte)(xi0 | (xi1 << 4));
        }
    }

    // quantize_row_q5_0_ref: d = (the value of largest magnitude) / −16, q = min(31, trunc(x/d + 16.5)), the low four
    // bits as Q4_0's nibbles and the fifth in qh (bit j for value j).
    static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (amax < MathF.Abs(x[j])) { amax = MathF.Abs(x[j]); max = x[j]; }
        float d = max / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, 0, d);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            float x0 = x[j] * id, x1 = x[16 + j] * id;
            int xi0 = Math.Min(31, (int)(sbyte)(int)(x0 + 16.5f)), xi1 = Math.Min(31, (int)(sbyte)(int)(x1 + 16.5f));
            y[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= (uint)((xi0 & 0x10) >> 4) << j;
            qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y.Slice(2, 4), qh);
    }

    /// <summary>quantize_row_q4_K_ref (nmax 15) and quantize_row_q5_K_ref (nmax 31): per sub-block of 32 a scale and
    /// min fitted by make_qkx2_quants, both quantised to 6 bits against the block's largest, then the values
    /// requantised with the stored (f16-rounded) scales.</summary>
    static void QK(ReadOnlySpan<float> x, Span<byte> y, int nmax, float rmin, float rdelta, int nstep)
    {
        Span<byte> L = stackalloc byte[256];
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8], scales = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, rmin, rdelta, nstep);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var sc = y.Slice(4, 12);
        for (int j = 0; j < 8; j++)
        {
            byte ls = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
            byte lm = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
            if (j < 4) { sc[j] = ls; sc[j + 4] = lm; }
            else
            {
                sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (byte)((ls >> 4) << 6);
                sc[j] |= (byte)((lm >> 4) << 6);
            }
        }
        WriteHalf(y, 0, maxScale / 63f);
        WriteHalf(y, 2, maxMin / 63f);
        float dAll = RoundToHalf(maxScale / 63f), dminAll = RoundToHalf(maxMin / 63f);
        for (int j = 0; j < 8; j++)
        {
            var (s, m) = GgufQuant.ScaleMinK4(j, sc);
            float d = dAll * s;
            if (d == 0) continue;
            float dm = dminAll * m;
            for (int ii = 0; ii < 32; ii++)
                L[32 * j + ii] = (byte)Math.Clamp(NearestInt((x[32 * j + ii] + dm) / d), 0, nmax);
        }
        if (nmax == 15)
        {
            var q = y.Slice(16, 128);
            for (int j = 0; j < 256; j += 64)
                for (int l = 0; l < 32; l++) q[j / 2 + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
            return;
        }
        var qh = y.Slice(16, 32);
        var ql = y.Slice(48, 128);
        qh.Clear();
        byte m1 = 1, m2 = 2;
        for (int n = 0; n < 256; n += 64)
        {
            for (int j = 0; j < 32; j++)
            {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[n / 2 + j] = (byte)(l1 | (l2 << 4));
            }
            m1 <<= 2; m2 <<= 2;
        }
    }

    /// <summary>make_qkx2_quants: x ≈ scale·L + min (min ≤ 0) with L in [0, nmax], the scale searched over nstep + 1
    /// candidates around nmax / (max − min) by weighted least squares; returns scale, and −min as theMin.</summary>
    static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L, out float theMin,
        Span<byte> laux, float rmin, float rdelta, int nstep)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            L[i] = (byte)Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
            float diff = scale * L[i] + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    curError += weights[i] * (diff * diff);
                }
                if (curError < bestError)
                {
                    laux[..n].CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>quantize_row_q6_K_ref: per sub-block of 16 a signed scale from make_qx_quants (weights x²), the scales
    /// quantised to int8 against the largest, the values requantised to [−32, 31] + 32 with the stored scales.</summary>
    static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++)
        {
            float scale = MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
            scales[ib] = scale;
            float abs = MathF.Abs(scale);
            if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
        }
        if (maxAbsScale < GroupMaxEps)
        {
            y.Clear();
            return;
        }
        float iscale = -128f / maxScale;
        WriteHalf(y, 208, 1 / iscale);
        var sc = y.Slice(192, 16);
        for (int ib = 0; ib < 16; ib++) sc[ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
        float dAll = RoundToHalf(1 / iscale);
        for (int j = 0; j < 16; j++)
        {
            float d = dAll * (sbyte)sc[j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + ii] / d), -32, 31) + 32);
        }
        for (int j = 0, o = 0; j < 256; j += 128, o++)
        {
            var ql = y.Slice(64 * o, 64);
            var qh = y.Slice(128 + 32 * o, 32);
            for (int l = 0; l < 32; l++)
            {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (byte)(q1 | (q3 << 4));
                ql[l + 32] = (byte)(q2 | (q4 << 4));
                qh[l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }

    /// <summary>ggml's GROUP_MAX_EPS: a group whose largest magnitude is below this quantises to zeros.</summary>
    const float GroupMaxEps = 1e-15f;

    /// <summary>make_qx_quants with rmse_type 1 and no importance weights (weights x²): x ≈ scale·(L − nmax) with L
    /// in [0, 2·nmax − 1], the scale searched over 19 candidates around −nmax / (the value of largest magnitude).</summary>
    static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++) L[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }
}
