using R1Sharp.Kernels;
using System.Diagnostics;
using System.Runtime.InteropServices;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// The projections of one decode step of a Qwen2.5-0.5B shape (24 layers of q, k, v, o, gate, up, down; distinct
/// weights, so nothing stays in cache), timed through several kernels alternately in one run: the previous kernel
/// one matrix at a time, the current one one matrix at a time and with q/k/v and gate/up fused into one call, and
/// libtorch's F.linear. Best of several repetitions; GB/s is weight bytes read per second.
/// </summary>
public static unsafe class KernelProfile
{
    public static int[] Rows = [1, 4, 16];

    /// <summary>Time on this thread's CPU clock with one thread: on a busy machine that counts our own work only,
    /// a fairer A/B of compute-bound kernels than wall time (still disturbed by shared caches and memory).</summary>
    public static bool CpuClock;

    [StructLayout(LayoutKind.Sequential)] struct TimeSpec { public long Sec, NSec; }
    [DllImport("libc")] static extern int clock_gettime(int clock, out TimeSpec t);
    static double ThreadCpuMs() { clock_gettime(3 /* CLOCK_THREAD_CPUTIME_ID */, out var t); return t.Sec * 1e3 + t.NSec / 1e6; }

    public static void Run(bool bf16, int reps)
    {
        const int layers = 24, hidden = 896, kv = 128, inter = 4864;
        int es = bf16 ? 2 : 4;
        int[][] shapes = [[hidden, hidden], [kv, hidden], [kv, hidden], [hidden, hidden], [inter, hidden], [inter, hidden], [hidden, inter]];
        var w = new nint[layers, 7];
        long bytes = 0;
        var rng = new Random(1);
        for (int l = 0; l < layers; l++)
            for (int m = 0; m < 7; m++)
            {
                long count = (long)shapes[m][0] * shapes[m][1];
                w[l, m] = (nint)NativeMemory.AlignedAlloc((nuint)(count * es), 64);
                for (long i = 0; i < count; i++)
                {
                    float v = (float)(rng.NextDouble() - 0.5);
                    if (bf16) ((ushort*)w[l, m])[i] = (ushort)(BitConverter.SingleToInt32Bits(v) >> 16); else ((float*)w[l, m])[i] = v;
                }
                bytes += count * es;
            }
        var x = (float*)NativeMemory.AlignedAlloc(16 * inter * 4, 64);
        var y = (float*)NativeMemory.AlignedAlloc(16 * inter * 4 * 2, 64);
        for (int i = 0; i < 16 * inter; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        int threads = CpuClock ? 1 : get_num_threads();
        if (CpuClock) set_num_threads(1);
        var wt = new Tensor[layers, 7];
        for (int l = 0; l < layers; l++)
            for (int m = 0; m < 7; m++)
            {
                var t = empty(shapes[m][0], shapes[m][1], dtype: bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
                new Span<byte>((void*)w[l, m], (int)(t.NumberOfElements * es)).CopyTo(t.bytes);
                wt[l, m] = t;
            }

        void Old(int rows)
        {
            for (int l = 0; l < layers; l++)
                for (int m = 0; m < 7; m++)
                {
                    if (bf16) GemvBaseline.RunBf16((ushort*)w[l, m], x, y, rows, shapes[m][0], shapes[m][1], threads);
                    else GemvBaseline.RunF32((float*)w[l, m], x, y, rows, shapes[m][0], shapes[m][1], threads);
                }
        }
        void New(int rows)
        {
            for (int l = 0; l < layers; l++)
                for (int m = 0; m < 7; m++)
                    Gemv.Run(bf16, [new Gemv.Target(w[l, m], (nint)y, shapes[m][0])], x, rows, shapes[m][1], threads);
        }
        void Fused(int rows)
        {
            nint y2 = (nint)(y + 16 * inter);
            for (int l = 0; l < layers; l++)
            {
                Gemv.Run(bf16, [new(w[l, 0], (nint)y, hidden), new(w[l, 1], y2, kv), new(w[l, 2], y2 + 16 * kv * 4, kv)], x, rows, hidden, threads);
                Gemv.Run(bf16, [new(w[l, 3], (nint)y, hidden)], x, rows, hidden, threads);
                Gemv.Run(bf16, [new(w[l, 4], (nint)y, inter), new(w[l, 5], y2, inter)], x, rows, hidden, threads);
                Gemv.Run(bf16, [new(w[l, 6], (nint)y, hidden)], x, rows, inter, threads);
            }
        }
        void Torch(int rows)
        {
            using var scope = NewDisposeScope();
            var xs = new[] { randn(rows, hidden).to(wt[0, 0].dtype), randn(rows, inter).to(wt[0, 0].dtype) };
            for (int l = 0; l < layers; l++)
                for (int m = 0; m < 7; m++)
                    using (nn.functional.linear(m == 6 ? xs[1] : xs[0], wt[l, m])) { }
        }

        void Narrow(int rows) { Gemv.WideEnabled = false; try { Fused(rows); } finally { Gemv.WideEnabled = true; } }
        var variants = new (string name, Action<int> run)[] { ("previous kernel", Old), ("new, per matrix", New), ("new, qkv+gate/up fused", Fused), ("fused, 256-bit only", Narrow), ("libtorch F.linear", Torch) };
        Console.WriteLine($"projections of one step, {(bf16 ? "bf16" : "f32")}, {threads} threads{(CpuClock ? ", thread CPU time" : "")}, {bytes / 1e6:F0} MB of weights, load {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (int rows in Rows)
            foreach (var v in variants) v.run(rows); // warm-up: every kernel jitted and tiered before timing
        foreach (int rows in Rows)
        {
            var best = new double[variants.Length];
            Array.Fill(best, double.MaxValue);
            for (int r = 0; r < reps; r++)
                for (int v = 0; v < variants.Length; v++)
                {
                    var sw = Stopwatch.StartNew();
                    double cpu = ThreadCpuMs();
                    variants[v].run(rows);
                    best[v] = Math.Min(best[v], CpuClock ? ThreadCpuMs() - cpu : sw.Elapsed.TotalMilliseconds);
                }
            for (int v = 0; v < variants.Length; v++)
                Console.WriteLine($"  rows {rows,2}  {variants[v].name,-24} {best[v],8:F2} ms  {bytes / best[v] / 1e6,6:F1} GB/s  {2.0 * rows * bytes / es / best[v] / 1e6,6:F1} GFLOP/s");
        }
        foreach (var t in wt) t.Dispose();
        for (int l = 0; l < layers; l++) for (int m = 0; m < 7; m++) NativeMemory.AlignedFree((void*)w[l, m]);
        NativeMemory.AlignedFree(x); NativeMemory.AlignedFree(y);
    }
}
