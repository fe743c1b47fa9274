using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// The prefill chunk's cost on a dense model: one prompt prefilled at several chunk sizes
/// (<see cref="GenerationEngine.PrefillChunkTokens"/>), the sizes taking turns for several rounds in one process so
/// the machine's moments fall on all of them; best wall time and its CPU time per size, and each size's ratio to the
/// first. The quantized files' side is `quant-model --prefill-chunk N`.
/// </summary>
public static class PrefillChunkBench
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback; }
        var dtype = Arg("--dtype", "bf16") == "f32" ? ScalarType.Float32 : ScalarType.BFloat16;
        string size = Arg("--size", "1.5b");
        int tokens = int.Parse(Arg("--prompt", "512")), rounds = int.Parse(Arg("--rounds", "3"));
        var chunks = Arg("--chunks", "512,256").Split(',').Select(int.Parse).ToArray();
        var cfg = ModelPresets.Create("qwen2", size, 151936);
        using var model = CausalLM.Create(cfg, dtype);
        model.InitializeRandom(1);
        var rng = new Random(3);
        var prompt = Enumerable.Range(0, tokens).Select(_ => rng.Next(1000, 100000)).ToArray();
        var greedy = new SamplingOptions { Temperature = 0, MaxTokens = 1 };
        Console.WriteLine($"qwen2 {size} shape, {dtype}, random weights, a {tokens}-token prompt, chunks {string.Join(", ", chunks)}, {rounds} rounds, load {File.ReadAllText("/proc/loadavg").Trim()}");
        var best = chunks.ToDictionary(c => c, _ => (Wall: double.MaxValue, Cpu: 0.0));
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < rounds; r++)
            foreach (int c in chunks)
            {
                var engine = new GenerationEngine(model) { PrefillChunkTokens = c };
                engine.Generate([prompt[..16]], greedy, []); // warm-up
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                var wall = Stopwatch.StartNew();
                engine.Generate([prompt], greedy, []);
                double seconds = wall.Elapsed.TotalSeconds;
                process.Refresh();
                double cpu = (process.TotalProcessorTime - cpu0).TotalSeconds;
                Console.WriteLine($"  round {r + 1}, chunk {c,5}: {seconds:F2} s wall, {cpu:F2} s CPU");
                if (seconds < best[c].Wall) best[c] = (seconds, cpu);
            }
        foreach (int c in chunks)
            Console.WriteLine($"chunk {c,5}: best {best[c].Wall:F2} s ({tokens / best[c].Wall:F1} tok/s, {best[c].Cpu:F2} s CPU), ÷ chunk {chunks[0]}: {best[c].Wall / best[chunks[0]].Wall:F3}");
        return 0;
    }
}
