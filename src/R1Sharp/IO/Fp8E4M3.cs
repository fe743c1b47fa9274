namespace R1Sharp.IO;

/// <summary>
/// float8_e4m3fn (Micikevicius et al. 2022, "FP8 Formats for Deep Learning"; PyTorch's torch.float8_e4m3fn): one sign
/// bit, four exponent bits with bias 7, three mantissa bits; no infinities, S.1111.111 is NaN, so the largest finite
/// value is 1.75 · 2⁸ = 448; exponent 0 holds subnormals m/8 · 2⁻⁶.
/// </summary>
public static class Fp8E4M3
{
    public const float Max = 448f;

    /// <summary>The value of each of the 256 bytes (NaN for 0x7F and 0xFF).</summary>
    public static readonly float[] Values = BuildTable();

    static float[] BuildTable()
    {
        var t = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int e = (b >> 3) & 0xF, m = b & 7;
            float magnitude = e == 0xF && m == 7 ? float.NaN
                : e == 0 ? m / 8f * MathF.Pow(2, -6)
                : (1 + m / 8f) * MathF.Pow(2, e - 7);
            t[b] = (b & 0x80) != 0 ? -magnitude : magnitude;
        }
        return t;
    }

    public static bool IsNaN(byte b) => (b & 0x7F) == 0x7F;

    /// <summary>x rounded to the nearest e4m3fn value (ties to even), saturating at ±448 as DeepSeek's quantiser
    /// (which divides by amax / 448) never exceeds it.</summary>
    public static byte FromFloat(float x)
    {
        if (float.IsNaN(x)) return 0x7F;
        byte sign = (byte)(x < 0 || (x == 0 && float.IsNegative(x)) ? 0x80 : 0);
        double a = Math.Min(Math.Abs((double)x), Max);
        if (a < Math.Pow(2, -6))
        {
            // Subnormal: units of 2⁻⁹; 8 units carry into the smallest normal, whose code is 8 too.
            return (byte)(sign | (int)Math.Round(a * 512, MidpointRounding.ToEven));
        }
        int e = (int)Math.Floor(Math.Log2(a));
        int m = (int)Math.Round((a / Math.Pow(2, e) - 1) * 8, MidpointRounding.ToEven);
        if (m == 8) { m = 0; e++; }
        return (byte)(sign | ((e + 7) << 3) | m);
    }
}
