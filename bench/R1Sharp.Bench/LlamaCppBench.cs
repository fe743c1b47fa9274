using System.Diagnostics;
using System.Text.Json;
using LLama;
using LLama.Common;
using LLama.Native;
using R1Sharp.Generation;
using R1Sharp.IO;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// R1Sharp against llama.cpp (LLamaSharp, CPU) on the same weights with the same thread count in one process run:
/// a random-weight Qwen2.5-0.5B-shaped model is saved as an HF folder, exported to GGUF of the same type, and both
/// engines run prefill (one prompt), decode at batch 1 and decode of 16 parallel sequences (llama.cpp's own batched
/// decoding: one llama_decode per step carrying one token of each sequence). Prints R1Sharp ÷ llama.cpp.
/// </summary>
public static class LlamaCppBench
{
    public static int Run(string[] args)
    {
        string dtypeName = Arg(args, "--dtype") ?? "f32";
        string size = Arg(args, "--size") ?? "0.5b";
        int prefillTokens = int.Parse(Arg(args, "--prefill") ?? "512");
        int decodeTokens = int.Parse(Arg(args, "--decode") ?? "32");
        int threads = int.Parse(Arg(args, "--threads") ?? get_num_threads().ToString());
        const int promptTokens = 32, parallel = 16;
        var dtype = dtypeName switch { "f32" => ScalarType.Float32, "bf16" => ScalarType.BFloat16, _ => throw new ArgumentException("--dtype f32|bf16") };
        set_num_threads(threads);
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        Console.WriteLine($"threads {threads}, dtype {dtypeName}, model qwen2 {size} (vocab 151936), load average {load}");

        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-llamacpp-bench-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string folder = Path.Combine(dir, "model"), gguf = Path.Combine(dir, "model.gguf");
            var cfg = ModelPresets.Create("qwen2", size, 151936);
            using (var init = CausalLM.Create(cfg, dtype))
            {
                init.InitializeRandom(1);
                ModelFolder.Save(init, folder, SharedTokenizer());
            }
            GgufExport.Export(folder, gguf, dtype == ScalarType.BFloat16 ? GgmlType.BF16 : GgmlType.F32);

            var rng = new Random(3);
            int[] Prompt(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(1000, 100000)).ToArray();
            var prefillPrompt = Prompt(prefillTokens);
            var prompts = Enumerable.Range(0, parallel).Select(_ => Prompt(promptTokens)).ToArray();

            var ours = MeasureR1Sharp(folder, dtype, prefillPrompt, prompts, decodeTokens);
            var theirs = MeasureLlamaCpp(gguf, threads, prefillPrompt, prompts, decodeTokens);

            var rows = new List<object>();
            void Row(string name, double a, double b, double target)
            {
                double ratio = a / b;
                Console.WriteLine($"{name,-20} R1Sharp {a,9:F1} tok/s   llama.cpp {b,9:F1} tok/s   ratio {ratio,5:F2}   target ≥ {target:F1} {(ratio >= target ? "MET" : "MISSED")}");
                rows.Add(new { name, r1sharp_tokens_per_s = a, llamacpp_tokens_per_s = b, ratio, target });
            }
            Row("prefill", ours.Prefill, theirs.Prefill, 1.0);
            Row("decode batch 1", ours.Decode1, theirs.Decode1, 0.8);
            Row($"decode {parallel} seqs", ours.DecodeN, theirs.DecodeN, 1.0);
            Directory.CreateDirectory("bench/results");
            File.WriteAllText($"bench/results/llamacpp-{size}-{dtypeName}.json", JsonSerializer.Serialize(
                new { dtype = dtypeName, size, threads, load_average = load, prefill_tokens = prefillTokens, decode_tokens = decodeTokens, results = rows },
                new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    internal sealed record Rates(double Prefill, double Decode1, double DecodeN);

    /// <summary>R1Sharp's GenerationEngine, greedy; decode is timed from the first generated token to the last.</summary>
    internal static Rates MeasureR1Sharp(string folder, ScalarType dtype, int[] prefillPrompt, int[][] prompts, int decodeTokens)
    {
        using var model = ModelFolder.Load(folder, dtype: dtype);
        var engine = new GenerationEngine(model);
        var greedy = new SamplingOptions { Temperature = 0 };
        engine.Generate([prompts[0][..8]], greedy with { MaxTokens = 2 }, []); // warm-up
        var sw = Stopwatch.StartNew();
        engine.Generate([prefillPrompt], greedy with { MaxTokens = 1 }, []);
        double prefill = prefillPrompt.Length / sw.Elapsed.TotalSeconds;
        double Decode(int[][] batch) => GenerationBench.DecodeTokensPerSecond(engine, batch, decodeTokens);
        return new Rates(prefill, Decode([prompts[0]]), Decode(prompts));
    }

    /// <summary>llama.cpp with its defaults for CPU inference (f16 KV cache, flash attention auto), greedy argmax
    /// over the logits each step as our engine does.</summary>
    internal static Rates MeasureLlamaCpp(string gguf, int threads, int[] prefillPrompt, int[][] prompts, int decodeTokens)
    {
        using var llama = new LlamaCppRunner(gguf, threads, prefillPrompt.Length, prompts.Length, prompts[0].Length + decodeTokens + 1);
        llama.Prefill(prompts[0][..8]); // warm-up
        double prefill = llama.Prefill(prefillPrompt);
        return new Rates(prefill, llama.Decode([prompts[0]], decodeTokens), llama.Decode(prompts, decodeTokens));
    }

    /// <summary>The Qwen3 tokenizer from ../shared (R1SHARP_SHARED overrides), for the GGUF's vocabulary.</summary>
    internal static string SharedTokenizer(string name = "qwen3")
    {
        var env = Environment.GetEnvironmentVariable("R1SHARP_SHARED");
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        string? root = !string.IsNullOrEmpty(env) ? env : null;
        while (root == null && dir != null)
        {
            if (File.Exists(Path.Combine(dir.FullName, "shared", "GUIDE.md"))) root = Path.Combine(dir.FullName, "shared");
            dir = dir.Parent;
        }
        return Path.Combine(root ?? throw new DirectoryNotFoundException("could not find ../shared (set R1SHARP_SHARED)"), "tokenizers", name);
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}

/// <summary>One llama.cpp model and context (LLamaSharp, CPU), timing what the benchmarks compare: one prompt's prefill
/// and greedy decoding of parallel sequences (one llama_decode per step carrying one token of each).</summary>
internal sealed class LlamaCppRunner : IDisposable
{
    readonly LLamaWeights weights;
    readonly LLamaContext context;
    readonly LLamaBatch batch = new();

    /// <param name="prefill">the longest prompt prefilled alone</param>
    /// <param name="sequences">parallel sequences at most, of up to <paramref name="perSequence"/> positions each</param>
    public LlamaCppRunner(string gguf, int threads, int prefill, int sequences, int perSequence)
    {
        Initialise();
        int ctx = Math.Max(prefill, sequences * perSequence) + 64;
        var p = new ModelParams(gguf)
        {
            ContextSize = (uint)ctx, BatchSize = (uint)ctx, UBatchSize = 512, SeqMax = (uint)sequences,
            Threads = threads, BatchThreads = threads, GpuLayerCount = 0,
        };
        weights = LLamaWeights.LoadFromFile(p);
        context = weights.CreateContext(p);
    }

    static bool initialised;

    /// <summary>Silences llama.cpp's log and loads its library, once per process (the configuration is frozen then).</summary>
    public static void Initialise()
    {
        if (initialised) return;
        initialised = true;
        NativeLibraryConfig.All.WithLogCallback((level, message) => { });
        NativeApi.llama_empty_call();
    }

    void Decode()
    {
        var rc = context.NativeHandle.Decode(batch);
        if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
    }

    void Add(int[] tokens, int seq)
    {
        for (int i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, (LLamaSeqId)seq, logits: i == tokens.Length - 1);
    }

    /// <summary>Tokens/s of one prompt's prefill from an empty cache, its last position's logits read (per second of
    /// <see cref="BenchClock"/>).</summary>
    public double Prefill(int[] prompt)
    {
        batch.Clear(); context.NativeHandle.MemoryClear(true);
        double start = BenchClock.Now;
        Add(prompt, 0); Decode();
        context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
        return prompt.Length / (BenchClock.Now - start);
    }

    /// <summary>Tokens/s of greedy decoding of the sequences after their prompts, from the first generated token on.</summary>
    public double Decode(int[][] seqs, int decodeTokens)
    {
        var h = context.NativeHandle;
        batch.Clear(); h.MemoryClear(true);
        for (int s = 0; s < seqs.Length; s++) Add(seqs[s], s);
        Decode();
        // Rows with logits, in batch order: the last prompt token of each sequence.
        var rows = Enumerable.Range(0, seqs.Length).Select(s => (s + 1) * seqs[s].Length - 1).ToArray();
        double start = BenchClock.Now;
        for (int step = 0; step < decodeTokens; step++)
        {
            var next = rows.Select(r => ArgMax(h.GetLogitsIth(r))).ToArray();
            batch.Clear();
            for (int s = 0; s < seqs.Length; s++) batch.Add(next[s], seqs[s].Length + step, (LLamaSeqId)s, logits: true);
            Decode();
            rows = Enumerable.Range(0, seqs.Length).ToArray();
        }
        return seqs.Length * decodeTokens / (BenchClock.Now - start);
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        context.Dispose();
        weights.Dispose();
    }
}

/// <summary>The clock rates are taken on: wall time, or with <see cref="Cpu"/> this process's CPU time (all threads,
/// user + system), which on a shared machine counts the work done rather than the time other tenants' work took.</summary>
public static class BenchClock
{
    public static bool Cpu { get; set; }
    static readonly Stopwatch wall = Stopwatch.StartNew();
    public static double Now => Cpu ? Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds : wall.Elapsed.TotalSeconds;
}
