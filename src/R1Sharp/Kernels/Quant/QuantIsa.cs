using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>Instruction sets the quantized kernels have a path for, best last.</summary>
public enum QuantIsa
{
    /// <summary>Dequantise a row, then a float32 dot product (any CPU; the reference the others are tested against).</summary>
    Scalar,
    /// <summary>256-bit integer dot products (AVX2 + FMA): vpmaddubsw/vpmaddwd on bytes unpacked in registers, as
    /// llama.cpp's x86 kernels do without VNNI.</summary>
    Avx2,
    /// <summary>The AVX2 kernels plus 512-bit ones (AVX-512 F/BW) where a format has one (Q4_K so far).</summary>
    Avx512,
}

/// <summary>
/// Which path the quantized kernels take: the best this CPU runs, found at run time from the features .NET reports
/// (the machine this runs on changes between AVX2-only and AVX-512 CPUs), unless narrowed for a test or an A/B in the
/// bench. int8 dot products with VNNI (vpdpbusd) are not among the paths: .NET 10 exposes VNNI only as AvxVnni (the
/// VEX form), which AVX512-VNNI CPUs without AVX-VNNI such as AMD Zen 4 do not have.
/// </summary>
public static class QuantKernels
{
    /// <summary>What this CPU runs.</summary>
    public static QuantIsa Best { get; } =
        Avx512F.IsSupported && Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported ? QuantIsa.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? QuantIsa.Avx2
        : QuantIsa.Scalar;

    /// <summary>
    /// The path taken unless one is set: the widest, except that the 512-bit kernels are left to Intel CPUs. AMD's
    /// Zen 4 runs 512-bit instructions as two 256-bit halves, and there the 512-bit Q4_K kernel measured 5-10 %
    /// slower than the AVX2 one (bench: quant --cpu-clock, bench/README.md); on Intel's AVX-512 cores the f32 decode
    /// kernel gained 25-30 % from 512-bit registers (Gemv.Dot4x4Wide).
    /// </summary>
    public static QuantIsa Default { get; } = Best == QuantIsa.Avx512 && !IsIntel() ? QuantIsa.Avx2 : Best;

    static bool IsIntel()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return (ebx, edx, ecx) == (0x756e6547, 0x49656e69, 0x6c65746e); // "GenuineIntel"
    }

    static readonly AsyncLocal<QuantIsa?> chosen = new();

    /// <summary>The path used by calls made from this async flow: <see cref="Default"/>, or another one set here (one
    /// the CPU lacks is refused). Read by the caller of the kernels, not by their worker threads, so setting it in
    /// one test changes nothing for another.</summary>
    public static QuantIsa Isa
    {
        get => chosen.Value is { } n && n <= Best ? n : Default;
        set
        {
            if (value > Best) throw new PlatformNotSupportedException($"this CPU has no {value} path (best: {Best})");
            chosen.Value = value;
        }
    }

    /// <summary>
    /// How far ahead of the block being unpacked the one-row Q4_K and Q6_K kernels ask for the weight bytes
    /// (prefetcht0 of the next lines, 0: none). Those kernels are bound by the instructions that unpack a block, and
    /// the hardware prefetcher alone left them waiting on memory part of the time: on 2 Zen 4 cores, 2 KB ahead read
    /// the 1.5B model's lm_head 7-10 % faster in Q6_K and in Q4_K, its Q4_K layers 1-5 %, its Q6_K layers the same
    /// (bench: quant --rows 1, alternating, three runs). A plain static for the bench's A/B, read once per row.
    /// </summary>
    public static int PrefetchBytes = 2048;

    static readonly AsyncLocal<bool?> eightRows = new();

    /// <summary>Whether calls from this async flow with 8 rows or more take the 8-row kernels (<see cref="IQuantDot8"/>)
    /// where the format has one (the default), or only the 4- and 1-row ones: an A/B for the bench and the tests.</summary>
    public static bool EightRows
    {
        get => eightRows.Value ?? true;
        set => eightRows.Value = value;
    }

}
