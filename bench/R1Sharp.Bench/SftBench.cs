using System.Diagnostics;
using R1Sharp.Eval;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;
using R1Sharp.Training.Sampling;
using R1Sharp.Training.Sft;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// SFT update throughput: trained tokens/s and model FLOP utilisation of SftTrainer steps for the `r1 zero` demo model
/// and a ~50M-parameter model, packed rows of max_length tokens, against this machine's fp32 matmul rate measured in
/// the same run (before and after each step, the higher kept). Model FLOPs: Training/ModelFlops over the packed rows
/// (projections and the full T×T attention of every row, the vocabulary projection of the loss positions only), ×3 for
/// forward + backward. Also `sample`: r1 sample's pipeline (LocalBackend + EvalRunner + filters) against the same
/// engine's raw generation of the same prompts and seeds.
/// Usage: sft [--size demo|50m] [--steps N] [--max-length T] [--threads N]   |   sample [--prompts N] [--k K] [--max-tokens N]
/// </summary>
public static class SftBench
{
    public static int Run(string[] args)
    {
        string size = Arg(args, "--size") ?? "demo";
        int steps = int.Parse(Arg(args, "--steps") ?? "5");
        int maxLength = int.Parse(Arg(args, "--max-length") ?? "512");
        int threads = int.Parse(Arg(args, "--threads") ?? "2");
        set_num_threads(threads);
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-sft-bench-" + Environment.ProcessId);
        var (tok, cfg) = Model(size, dir);
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(1);
        long parameters = model.parameters().Sum(p => p.numel());
        // Samples of 48–240 tokens (prompt a third, reply the rest), packed best-fit into rows of max_length.
        var rng = new Random(1);
        var samples = Enumerable.Range(0, 400).Select(_ =>
        {
            int len = rng.Next(48, 241);
            return new TokenizedSample(Enumerable.Range(0, len).Select(_ => rng.Next(tok.VocabSize)).ToArray(),
                Enumerable.Range(0, len).Select(i => i >= len / 3).ToArray());
        }).ToList();
        var sft = new SftConfig
        {
            OutputDir = Path.Combine(dir, "run"), MaxLength = maxLength, Packing = true, PerDeviceTrainBatchSize = 4,
            GradientAccumulationSteps = 2, MaxSteps = steps + 1, SaveSteps = 0, LearningRate = 1e-4, NumThreads = threads,
        };
        var trainer = new SftTrainer(sft, model, samples);
        trainer.Step(); // warm-up
        var mfus = new List<double>();
        var rates = new List<double>();
        var tps = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            double before = Roofline.MatmulRate(ScalarType.Float32, 512, cfg.HiddenSize, 4 * cfg.HiddenSize);
            // The rows this step will take, for the FLOP count (the data order is a pure function of the state).
            int epoch = trainer.State.Epoch, cursor = trainer.State.Cursor;
            var rows = new List<IReadOnlyList<TokenizedSample>>();
            for (int r = 0; r < sft.RowsPerStep; r++)
            {
                if (cursor >= trainer.Rows.Count) { epoch++; cursor = 0; }
                rows.Add(trainer.Rows[DataOrder.Index(sft.Seed, epoch, cursor++, trainer.Rows.Count)]);
            }
            double flops = rows.Chunk(sft.PerDeviceTrainBatchSize).Sum(mb =>
                ModelFlops.Forward(cfg, mb.Length, mb.Max(r => r.Sum(s => s.Length)), 0)
                + ModelFlops.Forward(cfg, 1, 0, mb.Sum(r => r.Sum(s => s.LossTokens))) ) * ModelFlops.TrainingMultiplier;
            var row = trainer.Step();
            double rate = Math.Max(before, Roofline.MatmulRate(ScalarType.Float32, 512, cfg.HiddenSize, 4 * cfg.HiddenSize));
            rates.Add(rate);
            tps.Add(row["tokens_per_second"]);
            mfus.Add(flops / row["update_seconds"] / rate);
        }
        double mfu = Median(mfus), matmul = Median(rates), tokens = Median(tps);
        string load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        Console.WriteLine($"sft {size}: {parameters / 1e6:F2}M parameters, {threads} threads, packed rows of {maxLength}, {sft.RowsPerStep} rows/step, load average {load}");
        Console.WriteLine($"  update   {tokens,10:F0} tokens/s (median of {steps} steps, real tokens, fwd+bwd+AdamW)");
        Console.WriteLine($"  matmul   {matmul / 1e9,10:F1} GFLOP/s (fp32, [512×{cfg.HiddenSize}]·[{cfg.HiddenSize}×{4 * cfg.HiddenSize}])");
        Console.WriteLine($"  MFU      {mfu,10:P1} (median, range {mfus.Min():P1}–{mfus.Max():P1}; target ≥ 50% on 50m); 6·N·tokens/s ÷ matmul: {6.0 * parameters * tokens / matmul:P1}");
        Write($"sft-bench-{size}", new { size, steps, threads, max_length = maxLength, parameters, load_average = load, update_tokens_per_second = tokens, matmul_flops = matmul, mfu, mfu_min = mfus.Min(), mfu_max = mfus.Max() });
        try { Directory.Delete(dir, true); } catch (IOException) { }
        return 0;
    }

    /// <summary>`r1 sample`'s path (EvalRunner over a LocalBackend, results log, filters, dataset) against the engine
    /// generating the same prompts with the same seeds directly; rounds alternate to share the machine's drift.</summary>
    public static int RunSample(string[] args)
    {
        int prompts = int.Parse(Arg(args, "--prompts") ?? "16");
        int k = int.Parse(Arg(args, "--k") ?? "8");
        int maxTokens = int.Parse(Arg(args, "--max-tokens") ?? "64");
        int rounds = int.Parse(Arg(args, "--rounds") ?? "3");
        set_num_threads(int.Parse(Arg(args, "--threads") ?? "2"));
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-sample-bench-" + Environment.ProcessId);
        var (tok, cfg) = Model("demo", dir);
        using (var m = CausalLM.Create(cfg)) { m.InitializeRandom(1); ModelFolder.Save(m, Path.Combine(dir, "model"), Path.Combine(dir, "tokenizer")); }
        using var lm = LocalModel.Load(Path.Combine(dir, "model"));
        var problems = new AdditionTask(3).Sample(prompts, 1, heldOut: false).Select((p, i) => new BenchProblem($"p{i}", p.Prompt, p.Answer)).ToList();
        var settings = new EvalSettings { Model = "demo", Temperature = 1f, TopP = 1f, MaxTokens = maxTokens, Seed = 7 };
        var backend = new LocalBackend(lm, maxBatch: k, ownsModel: false);
        double samplePath = double.MaxValue, raw = double.MaxValue;
        long tokens = 0;
        for (int round = 0; round < rounds; round++)
        {
            string outDir = Path.Combine(dir, $"out-{round}");
            Directory.CreateDirectory(outDir);
            var clock = Stopwatch.StartNew();
            using (var log = new ResultsLog(Path.Combine(outDir, "samples.jsonl")))
            {
                var records = EvalRunner.RunAsync(problems, k, settings, backend, log).GetAwaiter().GetResult();
                var (rows, summary) = RejectionSampling.Select(problems, k, settings, records, new ReadabilityFilter());
                RejectionSampling.Write(outDir, rows, summary);
                tokens = records.Sum(r => (long)r.CompletionTokens);
            }
            samplePath = Math.Min(samplePath, clock.Elapsed.TotalSeconds);
            clock.Restart();
            long rawTokens = 0;
            for (int p = 0; p < problems.Count; p++)
            {
                var (prompt, opens) = backend.Prompt(settings.UserTurn(problems[p].Problem), settings.ForceThink);
                var outs = lm.Generator.Generate(Enumerable.Repeat(prompt, k).ToArray(), settings.Sampling() with { Seed = settings.SeedFor(p, 0) }, opens);
                rawTokens += outs.Sum(o => o.TokenIds.Length);
            }
            raw = Math.Min(raw, clock.Elapsed.TotalSeconds);
            if (rawTokens != tokens) throw new InvalidOperationException($"the two paths generated different samples ({rawTokens} vs {tokens} tokens)");
        }
        double overhead = samplePath / raw - 1;
        Console.WriteLine($"sample: {prompts} prompts × {k}, ≤ {maxTokens} tokens each, demo model; best of {rounds} rounds");
        Console.WriteLine($"  r1 sample path  {tokens / samplePath,10:F0} tokens/s ({samplePath:F2} s)");
        Console.WriteLine($"  raw generation  {tokens / raw,10:F0} tokens/s ({raw:F2} s)");
        Console.WriteLine($"  overhead        {overhead,10:P1} (target ≤ 5%)");
        Write("sample-bench", new { prompts, k, max_tokens = maxTokens, tokens, sample_seconds = samplePath, raw_seconds = raw, overhead });
        try { Directory.Delete(dir, true); } catch (IOException) { }
        return 0;
    }

    static (HfTokenizer, ModelConfig) Model(string size, string dir)
    {
        ZeroTokenizer.Write(Path.Combine(dir, "tokenizer"));
        var tok = HfTokenizer.FromFolder(Path.Combine(dir, "tokenizer"));
        var (hidden, layers, heads, ff) = size == "50m" ? (640, 10, 10, 1728) : (128, 4, 4, 384);
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads, NumKeyValueHeads = heads / 2,
            HeadDim = hidden / heads, IntermediateSize = ff, MaxPositionEmbeddings = 1024,
        };
        return (tok, cfg);
    }

    static void Write(string name, object value)
    {
        Directory.CreateDirectory("bench/results");
        File.WriteAllText($"bench/results/{name}.json", System.Text.Json.JsonSerializer.Serialize(value, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
