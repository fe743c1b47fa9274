using System.Diagnostics;
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>This machine's limits, measured in the same process run as the workload they bound.</summary>
public static class Roofline
{
    /// <summary>Read bandwidth in bytes/s: the better of two readers over a buffer far larger than the caches (what a
    /// batch-1 decode does with the weights), best of several passes each: libtorch's sum over float32, and the decode
    /// kernel itself (<see cref="Gemv"/>, one row against a bfloat16 matrix of the same size). The second reads ~5–15 %
    /// faster than the sum here at times: taking the better of the two keeps the roofline the machine's achievable
    /// rate rather than one reader's.</summary>
    public static double MemoryBandwidth(long bytes = 1L << 30, int passes = 6) => Math.Max(SumBandwidth(bytes, passes), GemvBandwidth(bytes, passes));

    /// <summary>libtorch's sum over a float32 buffer of the given size, best of the passes.</summary>
    public static double SumBandwidth(long bytes = 1L << 30, int passes = 6)
    {
        using var scope = NewDisposeScope();
        var buf = ones(bytes / 4, dtype: ScalarType.Float32);
        double best = 0;
        for (int i = 0; i < passes; i++)
        {
            var sw = Stopwatch.StartNew();
            var s = buf.sum();
            s.item<float>();
            best = Math.Max(best, bytes / sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>The decode kernel's one-row product over a bfloat16 matrix [bytes / 1 KB, 512], best of the passes.</summary>
    public static unsafe double GemvBandwidth(long bytes = 1L << 30, int passes = 6)
    {
        if (!Gemv.Supported) return 0;
        const int k = 512;
        long rows = bytes / (k * 2);
        var w = (ushort*)NativeMemory.AlignedAlloc((nuint)(rows * k * 2), 64);
        var y = (ushort*)NativeMemory.AlignedAlloc((nuint)(rows * 2), 64);
        float* x = stackalloc float[k];
        try
        {
            for (long done = 0; done < rows * k; done += int.MaxValue) // 1.0 everywhere: real pages, not the shared zero page
                new Span<ushort>(w + done, (int)Math.Min(int.MaxValue, rows * k - done)).Fill(0x3f80);
            for (int i = 0; i < k; i++) x[i] = 1f / (i + 1);
            double best = 0;
            for (int i = 0; i < passes; i++)
            {
                var sw = Stopwatch.StartNew();
                Gemv.Run(true, [new Gemv.Target((nint)w, (nint)y, (int)rows)], x, 1, k, get_num_threads());
                best = Math.Max(best, rows * k * 2 / sw.Elapsed.TotalSeconds);
            }
            return best;
        }
        finally { NativeMemory.AlignedFree(w); NativeMemory.AlignedFree(y); }
    }

    /// <summary>Matmul rate in FLOP/s for [m, k] × [k, n]ᵀ in the given dtype (as nn.Linear computes): the best of
    /// five samples, each a run of back-to-back products lasting at least 50 ms. (One product per sample, as before,
    /// took ~1 ms at the demo model's shape, and its rate came out anywhere from 47 to 125 GFLOP/s between runs.)</summary>
    public static double MatmulRate(ScalarType dtype, int m = 512, int k = 896, int n = 4864)
    {
        using var scope = NewDisposeScope();
        var a = randn(m, k).to(dtype);
        var w = randn(n, k).to(dtype);
        double flops = 2.0 * m * k * n;
        var first = Stopwatch.StartNew();
        nn.functional.linear(a, w).Dispose(); // warm up, and size the runs
        int repeats = (int)Math.Clamp(0.05 / Math.Max(first.Elapsed.TotalSeconds, 1e-6), 1, 10000);
        double best = 0;
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < repeats; r++) nn.functional.linear(a, w).Dispose();
            best = Math.Max(best, repeats * flops / sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}

/// <summary>Resident memory of this process from /proc (Linux).</summary>
public static class ProcessMemory
{
    public static long Rss => Read("VmRSS:");
    public static long PeakRss => Read("VmHWM:");
    /// <summary>Resident pages of mapped files (a memory-mapped GGUF's touched pages among them).</summary>
    public static long FileRss => Read("RssFile:");
    public static long AnonRss => Read("RssAnon:");

    /// <summary>Resident bytes of the mappings of one file (/proc/self/smaps).</summary>
    public static long MappedRss(string path)
    {
        string full = Path.GetFullPath(path);
        long kb = 0;
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            var f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 5 && f[0].Contains('-') && !f[0].EndsWith(':')) // a mapping's header: range perms offset dev inode [path]
                inside = f.Length == 6 && f[5].Trim() == full;
            else if (inside && line.StartsWith("Rss:")) kb += long.Parse(line[4..].Trim().Split(' ')[0]);
        }
        return kb * 1024;
    }

    /// <summary>Resets the peak (VmHWM) to the current RSS (writing 5 to /proc/self/clear_refs).</summary>
    public static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static long Read(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key)) return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
        return 0;
    }
}
