using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace R1Sharp;

/// <summary>
/// Settings libtorch's OpenMP runtime reads once, when it loads. By default its worker threads spin after every
/// parallel operator; on a 2-core machine they then hold the cores that the decode kernels' threads (and the rest of
/// the process) need, and a decode step waits on them. Passive waiting measured 3.7 → 5.2 tokens/s at batch 1 and
/// 24.7 → 35.7 at batch 16 on a Qwen2.5-0.5B shape (bench/R1Sharp.Bench generate). A value the user set wins.
/// </summary>
public static class NativeRuntime
{
    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    static bool configured;

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
    }
}
