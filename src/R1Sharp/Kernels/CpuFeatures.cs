namespace R1Sharp.Kernels;

/// <summary>What this CPU can do that changes which path is fastest.</summary>
public static class CpuFeatures
{
    /// <summary>
    /// libtorch's bfloat16 GEMM runs on native bf16 instructions (AMX-BF16 or AVX512-BF16, through oneDNN) here.
    /// Measured on 2 Intel AVX-512/AMX cores: [512×896]·[896×4864] 581 GFLOP/s, 3.6× the same product widened to
    /// float32; on 2 AVX2 cores without them it ran about 5× below float32, which is why bf16 prefill widens there
    /// (<see cref="Linear"/>). Read from /proc/cpuinfo's flags (Linux); elsewhere assumed absent.
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
