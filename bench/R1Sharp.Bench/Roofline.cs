using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>This machine's limits, measured in the same process run as the workload they bound.</summary>
public static class Roofline
{
    /// <summary>Read bandwidth in bytes/s: a reduction over a buffer far larger than the caches (what a
    /// batch-1 decode does with the weights), best of several runs.</summary>
    public static double MemoryBandwidth(long bytes = 1L << 30, int passes = 6)
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
