using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>How the decode kernels read a weight (or cache) element type: 8 at a time widened to float32, or one.</summary>
internal interface IWeights
{
    static abstract int ElementSize { get; }
    static abstract Vector256<float> Load(nint row, int i);
    /// <summary>16 elements widened to float32 (AVX-512 only).</summary>
    static abstract Vector512<float> Load512(nint row, int i);
    static abstract float Scalar(nint row, int i);
    /// <summary>Writes a float32 value as this element type (bfloat16: rounded to nearest even, as libtorch does).</summary>
    static abstract void Store(nint row, long i, float value);
    /// <summary>value rounded to this element type and widened back (what Store then Scalar give).</summary>
    static abstract float Round(float value);
}

internal readonly unsafe struct Bf16 : IWeights
{
    public static int ElementSize => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(nint row, int i) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + i), 16).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(nint row, int i) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Avx.LoadVector256((ushort*)row + i)), 16).AsSingle();
    public static float Scalar(nint row, int i) => BitConverter.Int32BitsToSingle(((ushort*)row)[i] << 16);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(nint row, long i, float value) => ((ushort*)row)[i] = FromFloat(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float value) => BitConverter.Int32BitsToSingle(FromFloat(value) << 16);

    /// <summary>float32 → bfloat16 with round-to-nearest-even, as libtorch's conversion (NaN kept a NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((u >> 16) | 0x40);
        return RoundFinite(u);
    }

    /// <summary>float32 bits → bfloat16 rounded to nearest even, for finite values (no NaN test: a NaN may come out
    /// as an infinity).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort RoundFinite(uint bits) => (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);

    /// <summary><see cref="RoundFinite"/> on eight values: bfloat16 bits in the low half of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> RoundFinite(Vector256<uint> bits) => (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256.Create(1u))) >> 16;

    /// <summary>count finite float32 values → bfloat16 (<see cref="RoundFinite(uint)"/>).</summary>
    public static void FromFloats(float* src, ushort* dst, long count)
    {
        long i = 0;
        for (; i + 16 <= count; i += 16)
            Vector256.Narrow(RoundFinite(Vector256.Load((uint*)src + i)), RoundFinite(Vector256.Load((uint*)src + i + 8))).Store(dst + i);
        for (; i < count; i++) dst[i] = RoundFinite(((uint*)src)[i]);
    }
}

internal readonly unsafe struct F32 : IWeights
{
    public static int ElementSize => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(nint row, int i) => Avx.LoadVector256((float*)row + i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(nint row, int i) => Avx512F.LoadVector512((float*)row + i);
    public static float Scalar(nint row, int i) => ((float*)row)[i];
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(nint row, long i, float value) => ((float*)row)[i] = value;
    public static float Round(float value) => value;
}
