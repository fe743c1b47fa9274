using System.Diagnostics;
using System.Text.Json;
using R1Sharp.Verifier;

namespace R1Sharp.Bench;

/// <summary>Single-thread verdicts per second of <see cref="MathVerifier"/> on the MATH-500 self-check
/// pairs (each gold answer against its whole solution, so extraction is included). Also reports the
/// slowest verdict and how many pairs were judged equal (should be 500/500). Target: ≥ 20,000/s.</summary>
public static class VerifierBench
{
    public static int Run(string sharedDir)
    {
        var pairs = File.ReadLines(Path.Combine(sharedDir, "benchmarks", "math500.jsonl")).Select(l =>
        {
            using var d = JsonDocument.Parse(l);
            return (Gold: d.RootElement.GetProperty("answer").GetString()!, Solution: d.RootElement.GetProperty("solution").GetString()!);
        }).ToArray();

        // Warm-up: JIT and regular expressions.
        for (int r = 0; r < 3; r++) foreach (var (g, s) in pairs) MathVerifier.Verify(g, s);

        int equal = 0, verdicts = 0;
        long slowest = 0;
        // CPU time as well as wall-clock: on a shared, oversubscribed box the wall-clock rate mostly measures the
        // other tenants; verdicts per CPU-second is the verifier's own single-thread speed.
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var total = Stopwatch.StartNew();
        while (total.Elapsed < TimeSpan.FromSeconds(5) || verdicts < 10_000)
        {
            equal = 0;
            foreach (var (g, s) in pairs)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (MathVerifier.Verify(g, s).Equal) equal++;
                slowest = System.Math.Max(slowest, Stopwatch.GetTimestamp() - t0);
            }
            verdicts += pairs.Length;
        }
        double seconds = total.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        double perCpuSecond = verdicts / cpuSeconds;
        double perSecond = verdicts / seconds;
        double slowestMs = slowest * 1000.0 / Stopwatch.Frequency;
        Console.WriteLine($"verifier: {perSecond:N0} verdicts/s wall-clock, {perCpuSecond:N0} per CPU-second, single-threaded on MATH-500 self-check ({verdicts} verdicts in {seconds:F2} s, {cpuSeconds:F2} CPU-s); " +
                          $"self-check {equal}/{pairs.Length}; slowest verdict {slowestMs:F2} ms; target 20,000/s -> ratio {perSecond / 20_000:F2} (wall) {perCpuSecond / 20_000:F2} (CPU)");
        Console.WriteLine(JsonSerializer.Serialize(new { bench = "verifier", verdicts_per_second = perSecond, verdicts_per_cpu_second = perCpuSecond, self_check_equal = equal, pairs = pairs.Length, slowest_ms = slowestMs }));
        return equal == pairs.Length ? 0 : 1;
    }
}
