using System.Runtime.InteropServices;

namespace R1Sharp;

/// <summary>
/// Process-wide settings for running models on the CPU, applied by programs (the CLI, the server, the benchmarks, the
/// test host) through one explicit call to <see cref="Configure"/> before libtorch loads; a library never applies them
/// itself, so an application embedding R1Sharp opts in. OpenMP waits passively instead of spinning after every
/// parallel operator (on 2 cores its spinning threads held the cores the decode kernels need); glibc's mmap threshold
/// is fixed at 4 MB (transient tensors of a few MB are returned on free instead of piling up as fragmentation) and its
/// trim threshold at 64 MB (training re-faulted its activations every step at glibc's 128 KB). A value the user set in
/// the environment wins. Measurements: bench/README.md ("Process-wide runtime settings").
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

    /// <summary>The most CPU threads a run may ask libtorch for: four per core. OpenMP starts every thread asked for and
    /// each parallel operator waits for all of them, so oversubscription only slows a run (num_threads 1000 made a
    /// tiny SFT step 85 s instead of 5 on 2 cores; 100000 never finished) and a negative count aborts libtorch.</summary>
    public static int MaxThreads => 4 * Environment.ProcessorCount;

    /// <summary>Refuses a thread count outside 1..<see cref="MaxThreads"/> (0 too when <paramref name="zeroIsDefault"/>,
    /// meaning libtorch's own choice), naming the option.</summary>
    public static void CheckThreads(int threads, string name, string source, bool zeroIsDefault)
    {
        if (threads > MaxThreads || threads < (zeroIsDefault ? 0 : 1))
            throw new R1SharpException($"{source}{name} must be {(zeroIsDefault ? "0 (libtorch's default) or " : "")}between 1 and {MaxThreads} " +
                $"(4 × this machine's {Environment.ProcessorCount} cores), got {threads}");
    }

    /// <summary>Returns freed heap memory to the system (glibc's malloc_trim; glibc keeps freed blocks otherwise).</summary>
    public static void ReleaseFreeMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    /// <summary>Applies the settings; call it first thing in a program, before anything touches TorchSharp (OpenMP
    /// reads its settings once, when libtorch loads). Idempotent.</summary>
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
            // Fixing the mmap threshold also fixes the trim threshold at glibc's 128 KB default; 64 MB stays resident,
            // and malloc_trim (ReleaseFreeMemory) still returns everything after a large prefill.
            if (Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") == null) MallOpt(M_TRIM_THRESHOLD, 64 << 20);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc
    }
}
