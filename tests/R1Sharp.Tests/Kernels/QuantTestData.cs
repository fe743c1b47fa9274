using System.Buffers.Binary;
using R1Sharp.IO;
using R1Sharp.Kernels;

namespace R1Sharp.Tests.Kernels;

/// <summary>Random quantized blocks and activations for the kernel tests.</summary>
public static class QuantTestData
{
    public static readonly GgmlType[] Formats = [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    /// <summary>Every byte random (all nibble, high-bit and scale patterns occur, Q8_0's −128 and Q6_K's −128 scale
    /// too) except the f16 scales, which are finite values of either sign between 2^-14 and 2^-5.</summary>
    public static byte[] RandomBlocks(GgmlType type, int rows, int cols, int seed)
    {
        var (bs, bb) = GgmlTypeInfo.Geometry(type);
        var rng = new Random(seed);
        var bytes = new byte[rows * (cols / bs) * bb];
        rng.NextBytes(bytes);
        int[] halves = type switch
        {
            GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 => [0],
            GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q6_K => [208],
            _ => throw new ArgumentException(type.ToString()),
        };
        for (int b = 0; b < bytes.Length; b += bb)
            foreach (int at in halves)
            {
                float v = MathF.Pow(2, -14 + 9 * (float)rng.NextDouble()) * (rng.Next(2) == 0 ? 1 : -1);
                // K-quants' dmin is subtracted as a positive number in real files; either sign must still decode.
                BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(b + at, 2), (Half)v);
            }
        return bytes;
    }

    public static QuantMatrix RandomMatrix(GgmlType type, int rows, int cols, int seed) =>
        QuantMatrix.FromBlocks($"w.{type}", type, rows, cols, RandomBlocks(type, rows, cols, seed));

    /// <summary>Rows that int8 quantisation represents exactly: per 256 values a power-of-two step d, values d·q
    /// with integer q in [−127, 127] and a ±127 in every 32, so max|x| / 127 = d for 32- and 256-value blocks alike.</summary>
    public static float[] GridRows(int rows, int k, int seed)
    {
        var rng = new Random(seed);
        var x = new float[rows * k];
        for (int i = 0; i < x.Length; i += 256)
        {
            float d = MathF.Pow(2, -rng.Next(3, 9));
            for (int j = i; j < Math.Min(i + 256, x.Length); j++) x[j] = d * rng.Next(-127, 128);
            for (int j = i; j < Math.Min(i + 256, x.Length); j += 32) x[j + rng.Next(32)] = d * (rng.Next(2) == 0 ? 127 : -127);
        }
        return x;
    }

    public static float[] GaussianRows(int rows, int k, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, rows * k).Select(_ =>
            (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()))).ToArray();
    }
}
