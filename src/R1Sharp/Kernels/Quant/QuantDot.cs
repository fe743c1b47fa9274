using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    /// <summary>The two halves at p (a K-quant's d and dmin) as lanes 0 and 1, converted as <see cref="Half"/> does
    /// but together in one register (reads 8 bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> HalfPair(byte* p)
    {
        var h = Sse41.ConvertToVector128Int32((ushort*)p);
        var magnitude = Sse2.ShiftLeftLogical(Sse2.And(h, Vector128.Create(0x7FFF)), 13).AsSingle() * Vector128.Create(5.192296858534828e33f);
        return Sse2.Or(magnitude.AsInt32(), Sse2.ShiftLeftLogical(Sse2.And(h, Vector128.Create(0x8000)), 16)).AsSingle();
    }

    /// <summary>
    /// Q4_K/Q5_K's 12 bytes of packed 6-bit scales and mins → bytes 0-7 the 8 scales, bytes 8-15 the 8 mins
    /// (get_scale_min_k4 for all eight at once, with llama.cpp's 32-bit masks, in one register: built from scalars
    /// through the stack, the 8-byte reloads missed store forwarding): scale j &lt; 4 is the low 6 bits of byte j,
    /// min j &lt; 4 of byte j + 4; scale/min j ≥ 4 take the low/high nibble of byte j + 4 and their top two bits from
    /// the top bits of bytes j − 4 / j. Reads 16 bytes from s (the block's qs follow its scales).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> K4Scales(byte* s)
    {
        // lanes (32-bit) a0 a1 a2: u0 = a0 & 0x3f.., u1 = (a2 & 0x0f..) | ((a0 >> 6) & 0x03..) << 4,
        // u2 = a1 & 0x3f.., u3 = ((a2 >> 4) & 0x0f..) | ((a1 >> 6) & 0x03..) << 4
        var v = Sse2.LoadVector128((uint*)s);
        var lowParts = Avx2.ShiftRightLogicalVariable(Sse2.Shuffle(v, 0b10_01_10_00), Vector128.Create(0u, 0, 0, 4)); // a0 a2 a1 a2>>4
        var topBits = Sse2.ShiftRightLogical(Sse2.Shuffle(v, 0b01_01_00_00), 2); // (a0 a0 a1 a1) >> 2: bits 6-7 land at 4-5
        var u = Sse2.Or(Sse2.And(lowParts, Vector128.Create(0x3f3f3f3fu, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)),
                        Sse2.And(topBits, Vector128.Create(0u, 0x30303030, 0, 0x30303030)));
        return u.AsByte();
    }

    /// <summary>prefetcht0 of <paramref name="lines"/> cache lines from p (a block spans up to 4 lines).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(byte* p, int lines)
    {
        for (int i = 0; i < lines; i++) Sse.Prefetch0(p + 64 * i);
    }

    /// <summary>A pshufb pattern that copies 16-bit element j of each 128-bit lane to all eight of its elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Broadcast16(int j) => Vector256.Create((ushort)((2 * j) | ((2 * j + 1) << 8))).AsByte();
}
