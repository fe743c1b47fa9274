using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// How steady the read-bandwidth probe of the rooflines is, and whether it stands for the bytes a decode reads:
/// rounds of the probe's two readers (<see cref="Roofline.MemoryBandwidth"/>, the better of libtorch's sum over 1 GB of
/// float32 and the decode kernel's one-row product over 1 GB of bfloat16) beside a plain
/// two-thread streaming read (every cache line, 256-bit loads) over 1 GB of anonymous memory and, with --file, over a
/// memory-mapped file such as the GGUF a quantized model runs from (its pages read once first, so the page cache
/// holds them as it does while a model runs).
/// Usage: bandwidth [--file FILE] [--rounds 5]; the rounds also go to bench/results/bandwidth.json.
/// </summary>
public static unsafe class BandwidthBench
{
    public static int Run(string[] args)
    {
        string? file = Arg(args, "--file");
        int rounds = int.Parse(Arg(args, "--rounds") ?? "5");
        const long anonBytes = 1L << 30;
        byte* anon = (byte*)NativeMemory.AlignedAlloc((nuint)anonBytes, 4096);
        new Span<byte>(anon, (int)anonBytes).Fill(1);
        MemoryMappedFile? mmf = null; MemoryMappedViewAccessor? view = null;
        byte* mapped = null; long fileBytes = 0;
        if (file is not null)
        {
            fileBytes = new FileInfo(file).Length / 4096 * 4096;
            mmf = MemoryMappedFile.CreateFromFile(file, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = mmf.CreateViewAccessor(0, fileBytes, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref mapped);
            Stream(mapped, fileBytes);
        }
        Console.WriteLine($"read bandwidth, GB/s, best of 4 passes per round; load {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"{"round",5} {"probe (libtorch sum)",21} {"probe (Gemv)",13} {"anonymous 1 GB",15} {(file is null ? "" : "mapped " + Path.GetFileName(file)),30}");
        var results = new List<object>();
        for (int r = 0; r < rounds; r++)
        {
            double probe = Roofline.SumBandwidth(passes: 4) / 1e9, gemv = Roofline.GemvBandwidth(passes: 4) / 1e9;
            double a = 0, f = 0;
            for (int i = 0; i < 4; i++) a = Math.Max(a, Stream(anon, anonBytes));
            if (mapped != null) for (int i = 0; i < 4; i++) f = Math.Max(f, Stream(mapped, fileBytes));
            Console.WriteLine($"{r + 1,5} {probe,21:F1} {gemv,13:F1} {a,15:F1} {(mapped == null ? "" : f.ToString("F1")),30}");
            results.Add(new { probe_gbps = probe, gemv_probe_gbps = gemv, anonymous_gbps = a, file_gbps = mapped == null ? (double?)null : f });
        }
        string loadAfter = File.ReadAllText("/proc/loadavg").Trim();
        Console.WriteLine($"load after {loadAfter}");
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/bandwidth.json", System.Text.Json.JsonSerializer.Serialize(
            new { file, load_after = loadAfter, rounds = results }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        view?.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose(); mmf?.Dispose();
        NativeMemory.AlignedFree(anon);
        return 0;
    }

    /// <summary>GB/s of reading every cache line of [p, p + bytes) on two threads, one half each.</summary>
    static double Stream(byte* p, long bytes)
    {
        long half = bytes / 2 / 128 * 128;
        var sw = Stopwatch.StartNew();
        ulong s1 = 0;
        var t = new Thread(() => s1 = Sum(p + half, (bytes - half) / 128 * 128));
        t.Start();
        ulong s0 = Sum(p, half);
        t.Join();
        double gbps = bytes / sw.Elapsed.TotalSeconds / 1e9;
        GC.KeepAlive(s0 + s1);
        return gbps;
    }

    static ulong Sum(byte* b, long bytes)
    {
        var acc0 = Vector256<ulong>.Zero; var acc1 = acc0;
        for (long i = 0; i < bytes; i += 128)
        {
            acc0 += Vector256.Load((ulong*)(b + i));
            acc1 += Vector256.Load((ulong*)(b + i + 64));
        }
        return Vector256.Sum(acc0 + acc1);
    }

    static string? Arg(string[] args, string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
}
