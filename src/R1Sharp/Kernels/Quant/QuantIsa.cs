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
    /// <summary>The AVX2 kernels plus 512-bit ones (AVX-512 F/BW) where they measured faster.</summary>
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

    static readonly AsyncLocal<QuantIsa?> narrowed = new();

    /// <summary>The path used by calls made from this async flow: <see cref="Best"/>, or a narrower one set here (a
    /// wider one than the CPU has is refused). Read by the caller of the kernels, not by their worker threads, so
    /// narrowing it in one test changes nothing for another.</summary>
    public static QuantIsa Isa
    {
        get => narrowed.Value is { } n && n < Best ? n : Best;
        set
        {
            if (value > Best) throw new PlatformNotSupportedException($"this CPU has no {value} path (best: {Best})");
            narrowed.Value = value;
        }
    }
}
