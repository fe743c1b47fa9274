namespace R1Sharp.Kernels;

/// <summary>What this CPU can do that changes which path is fastest.</summary>
public static class CpuFeatures
{
    /// <summary>
    /// libtorch's bfloat16 GEMM runs on native bf16 instructions (AMX-BF16 or AVX512-BF16, through oneDNN) here, and is
    /// then the fastest bf16 path; without them it runs several times below float32, which is why bf16 prefill widens
    /// there (<see cref="LinearKernels"/>; figures in bench/README.md, "Kernel choices"). Read from /proc/cpuinfo's flags
    /// (Linux); elsewhere assumed absent.
    /// </summary>
    public static bool NativeBf16Gemm { get; } = Detect();

    static bool Detect()
    {
        try
        {
            if (!OperatingSystem.IsLinux() || !File.Exists("/proc/cpuinfo")) return false;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("flags", StringComparison.Ordinal))
                {
                    var flags = line.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries);
                    return flags.Contains("amx_bf16") || flags.Contains("avx512_bf16");
                }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }
}
