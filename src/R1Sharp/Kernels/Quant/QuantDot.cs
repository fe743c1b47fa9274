using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// <summary>
/// One quantized format's dot products on one instruction set: a weight row of nb blocks against int8-quantised x
/// rows (<see cref="Q8Rows"/>), with the blocks unpacked in registers. Implemented by structs so that the driver
/// (<see cref="QuantGemv"/>) is compiled once per format and path, with the calls inlined.
/// </summary>
internal unsafe interface IQuantDot
{
    /// <summary>The activation block this format pairs with: 256 (K-quants, q8_K) or 32 (q8_0).</summary>
    static abstract int ActBlock { get; }
    /// <summary>weight row w · x row r.</summary>
    static abstract float Dot1(byte* w, int nb, in Q8Rows a, int r);
    /// <summary>y[i] = weight row w · x row r + i for i = 0..3: the row's blocks unpacked once for four x rows.</summary>
    static abstract void Dot4(byte* w, int nb, in Q8Rows a, int r, float* y);
}

/// <summary>Bit-level helpers shared by the formats.</summary>
internal static unsafe class QuantBits
{
    /// <summary>An IEEE half at p as float32, exact for every finite half (subnormals included): the exponent is
    /// rebiased by one multiplication by 2^112 instead of branching on the half's class (infinities and NaNs, which
    /// no scale of a valid block holds, come out as large finite values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(byte* p)
    {
        uint h = *(ushort*)p;
        float f = BitConverter.UInt32BitsToSingle((h & 0x7FFF) << 13) * 5.192296858534828e33f; // 2^112
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(f) | ((h & 0x8000) << 16));
    }

    /// <summary>
    /// Q4_K/Q5_K's 12 bytes of packed 6-bit scales and mins → u[0..1] = the 8 scales as bytes, u[2..3] = the 8 mins
    /// (get_scale_min_k4 for all eight at once, with 32-bit masks as llama.cpp's vec_dot_q4_K does): scale j &lt; 4 is
    /// the low 6 bits of byte j, min j &lt; 4 of byte j + 4; scale/min j ≥ 4 take the low/high nibble of byte j + 4 and
    /// their top two bits from the top bits of bytes j − 4 / j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void K4Scales(byte* s, uint* u)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint a0 = *(uint*)s, a1 = *(uint*)(s + 4), a2 = *(uint*)(s + 8);
        u[0] = a0 & kmask1;
        u[1] = (a2 & kmask2) | (((a0 >> 6) & kmask3) << 4);
        u[2] = a1 & kmask1;
        u[3] = ((a2 >> 4) & kmask2) | (((a1 >> 6) & kmask3) << 4);
    }

    /// <summary>A pshufb pattern that copies 16-bit element j of each 128-bit lane to all eight of its elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Broadcast16(int j) => Vector256.Create((ushort)((2 * j) | ((2 * j + 1) << 8))).AsByte();
}
