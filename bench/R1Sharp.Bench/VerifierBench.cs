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

        var self = Measure(pairs.Select(p => (p.Gold, p.Solution)).ToArray(), "self-check (gold vs its whole solution)");
        // Every self-check answer is, once extracted, the very string of its gold, so the first figure mostly measures
        // extraction and the identical-answer shortcut. Gold against the next problem's answer forces the parser and
        // the comparison on every verdict: the figure that matters for grading real model outputs.
        var cross = Measure(pairs.Select((p, i) => (p.Gold, pairs[(i + 1) % pairs.Length].Gold)).ToArray(), "cross (gold vs another problem's answer)");
        int equal = self.Equal;
        Console.WriteLine($"self-check {equal}/{pairs.Length}; target 20,000/s -> ratio {self.PerSecond / 20_000:F2} (self-check), {cross.PerSecond / 20_000:F2} (cross)");
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "verifier", verdicts_per_second = self.PerSecond, verdicts_per_cpu_second = self.PerCpuSecond, self_check_equal = equal,
            pairs = pairs.Length, slowest_ms = Math.Max(self.SlowestMs, cross.SlowestMs),
            cross_verdicts_per_second = cross.PerSecond, cross_verdicts_per_cpu_second = cross.PerCpuSecond,
        }));
        return equal == pairs.Length ? 0 : 1;
    }

    sealed record Rate(int Equal, double PerSecond, double PerCpuSecond, double SlowestMs);

    static Rate Measure((string Gold, string Prediction)[] pairs, string name)
    {
        int equal = 0, verdicts = 0;
        long slowest = 0;
        // CPU time as well as wall-clock: on a shared, oversubscribed box the wall-clock rate mostly measures the
        // other tenants; verdicts per CPU-second is the verifier's own single-thread speed.
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var total = Stopwatch.StartNew();
        while (total.Elapsed < TimeSpan.FromSeconds(5) || verdicts < 10_000)
        {
            equal = 0;
            foreach (var (g, p) in pairs)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (MathVerifier.Verify(g, p).Equal) equal++;
                slowest = Math.Max(slowest, Stopwatch.GetTimestamp() - t0);
            }
            verdicts += pairs.Length;
        }
        double seconds = total.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        var r = new Rate(equal, verdicts / seconds, verdicts / cpuSeconds, slowest * 1000.0 / Stopwatch.Frequency);
        Console.WriteLine($"verifier {name}: {r.PerSecond:N0} verdicts/s wall-clock, {r.PerCpuSecond:N0} per CPU-second, single-threaded; " +
                          $"{verdicts} verdicts in {seconds:F2} s; {equal}/{pairs.Length} equal; slowest {r.SlowestMs:F2} ms");
        return r;
    }
}
