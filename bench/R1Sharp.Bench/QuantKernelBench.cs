using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using R1Sharp.IO;
using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// The quantized decode kernels on the projections of one decode step of R1-Distill-Qwen-1.5B (28 layers: q/k/v as
/// one call [1536+256+256, 1536], o [1536, 1536], gate/up as one call [2 × 8960, 1536], down [1536, 8960]; then the
/// lm_head [151936, 1536]), random blocks, each format alone: GB/s of weight bytes read at 1, 4 and 16 rows against the
/// read bandwidth measured in the same run (the roofline of a batch-1 decode). Each path this CPU has is timed,
/// alternating, best of several passes.
/// With --cpu-clock, one thread timed on its own CPU clock: on a machine busy with other work that counts this
/// kernel's own time only, the fair A/B for compute-bound row counts (the GB/s are then per core, not a roofline).
/// --prefill T[,T…] instead times prefill of T rows through two layers' projections three ways: dequantised tiles into
/// libtorch's float32 GEMM, the same into its bfloat16 GEMM, and the int8 decode kernels four rows at a time.
/// --llamacpp: one thread on its CPU clock, R1Sharp's kernels against llama.cpp's own vec_dot (ggml-cpu from
/// LLamaSharp's build for this CPU) on the same blocks, 1 and 4 rows.
/// Usage: quant [--formats q4_k,q6_k,q8_0] [--rows 1,4,16] [--layers 28] [--passes 5] [--threads N] [--cpu-clock] [--prefill 64,256]
/// </summary>
public static unsafe class QuantKernelBench
{
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)] struct TimeSpec { public long Sec, NSec; }
    [System.Runtime.InteropServices.DllImport("libc")] static extern int clock_gettime(int clock, out TimeSpec t);
    static double ThreadCpuSeconds() { clock_gettime(3 /* CLOCK_THREAD_CPUTIME_ID */, out var t); return t.Sec + t.NSec / 1e9; }
    static bool cpuClock;

    public static int Run(string[] args)
    {
        string Opt(string name, string dflt) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : dflt; }
        var formats = Opt("--formats", "q4_k,q6_k,q8_0").Split(',').Select(ParseType).ToArray();
        var rowCounts = Opt("--rows", "1,4,16").Split(',').Select(int.Parse).ToArray();
        int layers = int.Parse(Opt("--layers", "28")), passes = int.Parse(Opt("--passes", "5"));
        cpuClock = args.Contains("--cpu-clock");
        int threads = cpuClock ? 1 : int.Parse(Opt("--threads", get_num_threads().ToString()));
        var paths = Enum.GetValues<QuantIsa>().Where(i => i > QuantIsa.Scalar && i <= QuantKernels.Best).ToArray();
        const int hidden = 1536, kv = 256, inter = 8960, vocab = 151936;

        if (args.Contains("--llamacpp")) return AgainstLlamaCpp(formats, rowCounts.Where(r => r <= 4).ToArray(), int.Parse(Opt("--layers", "4")), passes);
        if (Opt("--prefill", "") is { Length: > 0 } pre) return Prefill(formats, pre.Split(',').Select(int.Parse).ToArray(), passes, threads);
        Console.Error.WriteLine($"quant kernels: R1-Distill-Qwen-1.5B projections, {layers} layers + lm_head, {threads} threads, paths {string.Join("/", paths)} (default {QuantKernels.Default})");
        var results = new List<object>();
        // The roofline: read bandwidth, measured again before each format (the higher reading: other work on the
        // machine lowers both it and the kernels).
        double bandwidth = Roofline.MemoryBandwidth();
        var x = new float[16 * inter];
        var rng = new Random(1);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = new float[16 * vocab];
        foreach (var type in formats)
        {
            var calls = new List<QuantMatrix[]>();
            for (int l = 0; l < layers; l++)
            {
                calls.Add([Random(type, hidden, hidden, l * 7), Random(type, kv, hidden, l * 7 + 1), Random(type, kv, hidden, l * 7 + 2)]);
                calls.Add([Random(type, hidden, hidden, l * 7 + 3)]);
                calls.Add([Random(type, inter, hidden, l * 7 + 4), Random(type, inter, hidden, l * 7 + 5)]);
                calls.Add([Random(type, hidden, inter, l * 7 + 6)]);
            }
            var head = new[] { Random(type, vocab, hidden, 999) };
            long layerBytes = calls.Sum(c => c.Sum(m => m.ByteSize)), headBytes = head[0].ByteSize;
            bandwidth = Math.Max(bandwidth, Roofline.MemoryBandwidth());
            Console.Error.WriteLine($"read bandwidth (libtorch sum over 1 GB, best so far): {bandwidth / 1e9:F1} GB/s");
            Console.Error.WriteLine($"{type}: layers {layerBytes / 1e6:F0} MB, lm_head {headBytes / 1e6:F0} MB");
            foreach (int rows in rowCounts)
            {
                // From 8 rows the 8-row kernels (the default) against the 4-row ones alone ("/4"); at 1 row the default
                // prefetch distance against none ("/no-prefetch"); alternating.
                int prefetch = QuantKernels.PrefetchBytes;
                var variants = paths.Select(p => (isa: p, eight: true, pf: prefetch))
                    .Concat(rows >= 8 ? paths.Select(p => (isa: p, eight: false, pf: prefetch)) : [])
                    .Concat(rows == 1 ? paths.Select(p => (isa: p, eight: true, pf: 0)) : []).ToArray();
                var best = variants.ToDictionary(p => p, _ => (layers: double.MaxValue, head: double.MaxValue));
                for (int pass = 0; pass < passes; pass++)
                    foreach (var v in variants)
                    {
                        QuantKernels.Isa = v.isa;
                        QuantKernels.EightRows = v.eight;
                        QuantKernels.PrefetchBytes = v.pf;
                        double tl = Time(calls, x, y, rows, threads), th = Time([head], x, y, rows, threads);
                        var b = best[v];
                        best[v] = (Math.Min(b.layers, tl), Math.Min(b.head, th));
                    }
                QuantKernels.EightRows = true;
                QuantKernels.PrefetchBytes = prefetch;
                foreach (var v in variants)
                {
                    var (tl, th) = best[v];
                    double gbl = layerBytes / tl / 1e9, gbh = headBytes / th / 1e9;
                    string name = v.isa + (v.eight ? "" : "/4") + (v.pf == prefetch ? "" : "/no-prefetch");
                    Console.WriteLine($"{type,-5} {name,-18} rows {rows,2}: layers {tl * 1e3,7:F1} ms {gbl,6:F1} GB/s ({gbl * 1e9 / bandwidth,4:P0} of bandwidth)   lm_head {th * 1e3,6:F1} ms {gbh,6:F1} GB/s ({gbh * 1e9 / bandwidth,4:P0})");
                    results.Add(new { type = type.ToString(), isa = name, rows, layers_ms = tl * 1e3, layers_gbps = gbl, lm_head_ms = th * 1e3, lm_head_gbps = gbh, of_bandwidth = gbl * 1e9 / bandwidth });
                }
            }
            if (type == GgmlType.Q4_K && rowCounts.Contains(1))
            {
                // The alternative to int8 activations: float32 x against the widened 4-bit values (bench only).
                double tl = double.MaxValue, th = double.MaxValue;
                for (int pass = 0; pass < passes; pass++)
                {
                    tl = Math.Min(tl, TimeFloatActivations(calls, x, y, threads));
                    th = Math.Min(th, TimeFloatActivations([head], x, y, threads));
                }
                double gbl = layerBytes / tl / 1e9, gbh = headBytes / th / 1e9;
                Console.WriteLine($"{type,-5} f32-x  rows  1: layers {tl * 1e3,7:F1} ms {gbl,6:F1} GB/s ({gbl * 1e9 / bandwidth,4:P0} of bandwidth)   lm_head {th * 1e3,6:F1} ms {gbh,6:F1} GB/s ({gbh * 1e9 / bandwidth,4:P0})   (float32 activations)");
                results.Add(new { type = type.ToString(), isa = "Avx2-f32-activations", rows = 1, layers_ms = tl * 1e3, layers_gbps = gbl, lm_head_ms = th * 1e3, lm_head_gbps = gbh, of_bandwidth = gbl * 1e9 / bandwidth });
                // Same numbers as the int8 kernel, up to the activation rounding?
                var m = head[0];
                var a = new float[m.Rows]; var b2 = new float[m.Rows];
                fixed (float* xp = x) fixed (float* ap = a) fixed (float* bp = b2)
                {
                    Q4KFloatActivations.Run(m, xp, ap, threads);
                    QuantGemv.Run([new QuantGemv.Target(m, (nint)bp)], xp, 1, threads);
                }
                double diff = a.Zip(b2).Max(p => Math.Abs(p.First - p.Second)) / a.Max(v => Math.Abs(v));
                Console.Error.WriteLine($"  f32-x vs int8 kernel on the lm_head: max difference {diff:E1} of the largest output");
            }
            QuantKernels.Isa = QuantKernels.Default;
        }
        Directory.CreateDirectory("bench/results");
        File.WriteAllText(cpuClock ? "bench/results/quant-kernels-cpu-clock.json" : "bench/results/quant-kernels.json", JsonSerializer.Serialize(new { bandwidth_gbps = bandwidth / 1e9, threads, cpu_clock = cpuClock, results }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static int AgainstLlamaCpp(GgmlType[] formats, int[] rowCounts, int layers, int passes)
    {
        const int hidden = 1536, kv = 256, inter = 8960, vocab = 151936;
        var x = new float[4 * inter];
        var rng = new Random(1);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var results = new List<object>();
        foreach (var type in formats)
        {
            var ms = new List<QuantMatrix>();
            for (int l = 0; l < layers; l++)
                ms.AddRange([Random(type, hidden + 2 * kv, hidden, l * 5), Random(type, hidden, hidden, l * 5 + 1), Random(type, 2 * inter, hidden, l * 5 + 2), Random(type, hidden, inter, l * 5 + 3)]);
            ms.Add(Random(type, vocab, hidden, 999));
            long bytes = ms.Sum(m => m.ByteSize);
            var ya = new float[4 * vocab];
            var yb = new float[4 * vocab];
            foreach (int rows in rowCounts)
            {
                double ours = double.MaxValue, theirs = double.MaxValue, diff = 0;
                for (int pass = 0; pass < passes; pass++)
                    fixed (float* xp = x) fixed (float* ap = ya) fixed (float* bp = yb)
                    {
                        double t0 = ThreadCpuSeconds();
                        foreach (var m in ms) QuantGemv.Run([new QuantGemv.Target(m, (nint)ap)], xp, rows, 1);
                        double t1 = ThreadCpuSeconds();
                        foreach (var m in ms) GgmlVecDot.Run(type, (byte*)m.Data, m.RowBytes, m.Rows, m.Cols, xp, rows, bp);
                        double t2 = ThreadCpuSeconds();
                        ours = Math.Min(ours, t1 - t0); theirs = Math.Min(theirs, t2 - t1);
                        // the last matrix (lm_head) is in both buffers now
                        int count = rows * vocab;
                        double max = 0, d = 0;
                        for (int i = 0; i < count; i++) { max = Math.Max(max, Math.Abs(bp[i])); d = Math.Max(d, Math.Abs(ap[i] - bp[i])); }
                        diff = d / max;
                    }
                Console.WriteLine($"{type,-5} rows {rows}: R1Sharp {ours * 1e3,7:F1} ms ({bytes / ours / 1e9,5:F1} GB/s per core)   llama.cpp ({GgmlVecDot.Variant}) {theirs * 1e3,7:F1} ms ({bytes / theirs / 1e9,5:F1})   R1Sharp ÷ llama.cpp speed {theirs / ours:F2}   outputs differ by {diff:E1} of the largest");
                results.Add(new { type = type.ToString(), rows, r1sharp_ms = ours * 1e3, llamacpp_ms = theirs * 1e3, speed_ratio = theirs / ours, max_rel_diff = diff });
            }
        }
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/quant-vs-llamacpp-kernels.json", JsonSerializer.Serialize(new { layers, llamacpp_build = GgmlVecDot.Variant, results }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static double TimeFloatActivations(List<QuantMatrix[]> calls, float[] x, float[] y, int threads)
    {
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            double c0 = ThreadCpuSeconds();
            var sw = Stopwatch.StartNew();
            foreach (var c in calls)
            {
                long off = 0;
                foreach (var m in c) { Q4KFloatActivations.Run(m, xp, yp + off, threads); off += m.Rows; }
            }
            return cpuClock ? ThreadCpuSeconds() - c0 : sw.Elapsed.TotalSeconds;
        }
    }

    static int Prefill(GgmlType[] formats, int[] tokens, int passes, int threads)
    {
        const int hidden = 1536, kv = 256, inter = 8960;
        double gemm32 = Roofline.MatmulRate(ScalarType.Float32, 256, hidden, inter), gemm16 = Roofline.MatmulRate(ScalarType.BFloat16, 256, hidden, inter);
        Console.Error.WriteLine($"prefill: 2 layers of R1-Distill-Qwen-1.5B projections, {threads} threads; libtorch GEMM [256×{hidden}]·[{hidden}×{inter}]: f32 {gemm32 / 1e9:F0}, bf16 {gemm16 / 1e9:F0} GFLOP/s");
        var results = new List<object>();
        foreach (var type in formats)
        {
            var ws = new List<QuantMatrix>();
            for (int l = 0; l < 2; l++)
                ws.AddRange([Random(type, hidden + 2 * kv, hidden, l * 5), Random(type, hidden, hidden, l * 5 + 1), Random(type, 2 * inter, hidden, l * 5 + 2), Random(type, hidden, inter, l * 5 + 3)]);
            double flopsPerRow = ws.Sum(m => 2.0 * m.Rows * m.Cols);
            foreach (int t in tokens)
            {
                var xs = ws.Select(m => randn(t, m.Cols)).ToArray();
                var best = new Dictionary<string, double> { ["f32 tiles"] = double.MaxValue, ["bf16 tiles"] = double.MaxValue, ["int8 kernel"] = double.MaxValue };
                var y = new float[(long)t * 2 * inter];
                for (int pass = 0; pass < passes; pass++)
                    foreach (var way in best.Keys.ToArray())
                    {
                        var sw = Stopwatch.StartNew();
                        for (int i = 0; i < ws.Count; i++)
                        {
                            if (way == "int8 kernel")
                                fixed (float* yp = y) QuantGemv.Run([new QuantGemv.Target(ws[i], (nint)yp)], (float*)SmallAddress(xs[i]), t, threads);
                            else
                                QuantPrefill.Linear(xs[i], ws[i], gemmType: way == "f32 tiles" ? ScalarType.Float32 : ScalarType.BFloat16, threads: threads).Dispose();
                        }
                        best[way] = Math.Min(best[way], sw.Elapsed.TotalSeconds);
                    }
                foreach (var (way, sec) in best)
                {
                    double rate = flopsPerRow * t / sec;
                    Console.WriteLine($"{type,-5} prefill {t,4} rows, {way,-11}: {sec * 1e3,7:F1} ms  {t / sec,7:F0} rows/s  {rate / 1e9,6:F1} GFLOP/s ({rate / gemm32:P0} of f32 GEMM, {rate / gemm16:P0} of bf16)");
                    results.Add(new { type = type.ToString(), tokens = t, way, ms = sec * 1e3, gflops = rate / 1e9 });
                }
                foreach (var x in xs) x.Dispose();
            }
        }
        // The GEMM references again after the timings (the higher reading counts: other work on the machine lowers them).
        gemm32 = Math.Max(gemm32, Roofline.MatmulRate(ScalarType.Float32, 256, hidden, inter));
        gemm16 = Math.Max(gemm16, Roofline.MatmulRate(ScalarType.BFloat16, 256, hidden, inter));
        Console.WriteLine($"libtorch GEMM, best of before and after: f32 {gemm32 / 1e9:F0}, bf16 {gemm16 / 1e9:F0} GFLOP/s");
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/quant-prefill.json", JsonSerializer.Serialize(new { threads, gemm_f32_gflops = gemm32 / 1e9, gemm_bf16_gflops = gemm16 / 1e9, results }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static nint SmallAddress(Tensor t) => (nint)Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(t.bytes));

    static GgmlType ParseType(string s) => s.ToLowerInvariant() switch
    {
        "q4_k" => GgmlType.Q4_K, "q5_k" => GgmlType.Q5_K, "q6_k" => GgmlType.Q6_K, "q8_0" => GgmlType.Q8_0, "q4_0" => GgmlType.Q4_0,
        _ => throw new ArgumentException($"unknown format {s}"),
    };

    /// <summary>Random bytes with sane f16 scales: the kernels' speed does not depend on the values.</summary>
    static QuantMatrix Random(GgmlType type, int rows, int cols, int seed)
    {
        var (bs, bb) = GgmlTypeInfo.Geometry(type);
        var bytes = new byte[(long)rows * (cols / bs) * bb];
        new Random(seed).NextBytes(bytes);
        int at = type == GgmlType.Q6_K ? 208 : 0;
        for (long b = at; b < bytes.Length; b += bb) { bytes[b] = 0; bytes[b + 1] = 0x20; } // d = 2^-7 (f16 0x2000)
        if (type is GgmlType.Q4_K or GgmlType.Q5_K)
            for (long b = 2; b < bytes.Length; b += bb) { bytes[b] = 0; bytes[b + 1] = 0x20; }
        return QuantMatrix.FromBlocks($"{type}", type, rows, cols, bytes);
    }

    static double Time(List<QuantMatrix[]> calls, float[] x, float[] y, int rows, int threads)
    {
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            nint yAddr = (nint)yp;
            var targets = calls.Select(c =>
            {
                long off = 0;
                return c.Select(m => { var t = new QuantGemv.Target(m, yAddr + (nint)(off * 4)); off += (long)rows * m.Rows; return t; }).ToArray();
            }).ToArray();
            double c0 = ThreadCpuSeconds();
            var sw = Stopwatch.StartNew();
            foreach (var t in targets) QuantGemv.Run(t, xp, rows, threads);
            return cpuClock ? ThreadCpuSeconds() - c0 : sw.Elapsed.TotalSeconds;
        }
    }
}
