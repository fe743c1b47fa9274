using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace R1Sharp;

/// <summary>
/// Settings libtorch's OpenMP runtime reads once, when it loads. By default its worker threads spin after every
/// parallel operator; on a 2-core machine they then hold the cores that the decode kernels' threads (and the rest of
/// the process) need, and a decode step waits on them. Passive waiting measured 3.7 → 5.2 tokens/s at batch 1 and
/// 24.7 → 35.7 at batch 16 on a Qwen2.5-0.5B shape (bench/R1Sharp.Bench generate). A value the user set wins.
/// glibc raises its mmap threshold to the size of each large block freed (up to 32 MB), after which blocks that size
/// come from the heap and stay resident once freed: transient tensors of a few MB (a bf16 prefill's widened weights,
/// activations) then pile up as fragmentation. A fixed 4 MB threshold returns them to the system on free; it took the
/// bf16 0.5B bench's peak from 1.33-1.53 to ~1.27 × (weights + KV cache). Freed memory up to 64 MB at the top of a
/// heap stays resident (glibc's default trim threshold, 128 KB, made training re-fault its activations every step).
/// </summary>
public static class NativeRuntime
{
    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int MallOpt(int param, int value);
    const int M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1;

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    static bool configured;

    /// <summary>Returns freed heap memory to the system (glibc's malloc_trim; glibc keeps freed blocks otherwise).</summary>
    public static void ReleaseFreeMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    /// <summary>Runs when the R1Sharp assembly loads; call it explicitly first thing in a program that may touch
    /// TorchSharp before any R1Sharp type.</summary>
#pragma warning disable CA2255 // a library initializer on purpose: it must run before libtorch loads, whoever loads it
    [ModuleInitializer]
#pragma warning restore CA2255
    public static void Configure()
    {
        if (configured) return;
        configured = true;
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        try { SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") != null) return;
        try
        {
            MallOpt(M_MMAP_THRESHOLD, 4 << 20);
            // Fixing the mmap threshold also fixes the trim threshold at glibc's 128 KB default: every free that left
            // more than that at the top of a heap gave the pages back, and the next operator faulted them in again,
            // zeroed. A training step frees and reallocates tens of MB of activations per micro-batch (GRPO bench,
            // demo model on 2 threads: update 66-69 -> 76-82 GFLOP/s in alternating runs). 64 MB stays resident;
            // malloc_trim (ReleaseFreeMemory) still returns everything after a large prefill.
            if (Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") == null) MallOpt(M_TRIM_THRESHOLD, 64 << 20);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc
    }
}
