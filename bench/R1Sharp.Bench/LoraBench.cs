using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Text;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// One GRPO step's update on the R1-Distill-Qwen-1.5B shape (random weights; 8 completions × 1024 tokens after a
/// 64-token prompt, micro-batches of --micro-batch rows) under full fine-tuning, LoRA, LoRA + activation checkpointing
/// + chunked log-probs, and QLoRA (Q4_K base + the memory work): peak resident memory of the step and its time, in one
/// process, each configuration after the previous one's memory has been released. The rollout is synthetic (fixed
/// random completions through an <see cref="IRolloutSource"/> that returns at once): sampling 8 × 1024 tokens from a
/// 1.5B model would take an hour on two cores and is the same in every configuration; everything after it (rewards,
/// micro-batches, forward, loss, backward, AdamW) is the trainer's own code. Full fine-tuning in float32 needs 16 bytes
/// per parameter before any activation (weights, gradients, AdamW's two moments); it runs only when that fits in the
/// memory available (--full to force).
/// A configuration may be named more than once (--configs lora,qlora,lora,qlora): alternating runs put the same load
/// drift on both, and each "× plain LoRA's time" is against the nearest earlier lora run.
/// Usage: lora [--tokens 1024] [--completions 8] [--micro-batch 1] [--rank 16] [--layers 28] [--chunk 1024] [--configs qlora,lora-mem,lora,full] [--full] [--out FILE.json]
/// </summary>
public static class LoraBench
{
    sealed class FixedRollouts(int vocab, int length, int seed) : IRolloutSource
    {
        public string WeightVersion { get; private set; } = IRolloutSource.VersionFor(0);
        public IReadOnlyList<RolloutSample> Generate(IReadOnlyList<int[]> prompts, int groupSize, SamplingOptions options, IReadOnlyCollection<int> eosIds)
        {
            var rng = new Random(seed);
            // Ordinary text tokens (below the special ids), full length: every row is a truncated 1024-token completion.
            return Enumerable.Range(0, prompts.Count * groupSize)
                .Select(_ => new RolloutSample(Enumerable.Range(0, length).Select(_ => rng.Next(1000, vocab)).ToArray(), true, WeightVersion, "fixed")).ToArray();
        }
        public void PublishWeights(CausalLM policy, int step) => WeightVersion = IRolloutSource.VersionFor(step);
        public void Dispose() { }
    }

    public static int Run(string[] args)
    {
        int tokens = int.Parse(Arg(args, "--tokens") ?? "1024");
        int completions = int.Parse(Arg(args, "--completions") ?? "8");
        int micro = int.Parse(Arg(args, "--micro-batch") ?? "1");
        int rank = int.Parse(Arg(args, "--rank") ?? "16");
        int layers = int.Parse(Arg(args, "--layers") ?? "28");
        var configs = (Arg(args, "--configs") ?? "qlora,lora-mem,lora,full").Split(',');
        bool forceFull = args.Contains("--full");
        int chunk = int.Parse(Arg(args, "--chunk") ?? "1024");
        set_num_threads(int.Parse(Arg(args, "--threads") ?? "2"));
        string tokDir = Path.Combine(FindShared(), "tokenizers", "qwen3");
        var tok = HfTokenizer.FromFolder(tokDir);
        int eos = tok.EosTokenId!.Value;
        var cfg = Qwen2Config.Preset("1.5b", 151936) with { EosTokenIds = [eos], NumHiddenLayers = layers, MaxPositionEmbeddings = 4096 };
        long parameters = cfg.ParameterCount();
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-lora-bench-" + Environment.ProcessId);
        var rewards = new RewardSet([new RewardFunction("digits", (_, c, _) => c.Count(char.IsDigit) / (double)Math.Max(1, c.Length))]);
        var data = Enumerable.Range(0, 16).Select(i => new PromptExample(string.Join(" ", Enumerable.Repeat($"What is {i} plus {i + 1}?", 7)), "x")).ToList();
        var results = new List<object>();
        long full28 = (Qwen2Config.Preset("1.5b", 151936) with { NumHiddenLayers = 28 }).ParameterCount();
        Console.WriteLine($"(the whole 28-layer shape: {full28 / 1e9:F2}B parameters; full fine-tuning's float32 weights + gradients + AdamW moments alone: {16.0 * full28 / 1e9:F1} GB)");
        Console.WriteLine($"GRPO step update, Qwen2 1.5B shape ({layers} layers, {parameters / 1e9:F2}B parameters, vocab 151936), {completions} completions × {tokens} tokens, " +
            $"micro-batches of {micro}, LoRA r={rank} all-linear, log-prob chunks of {chunk} rows (memory-work configs), {get_num_threads()} threads; load average {Load()}");
        double? loraSeconds = null, fullPeak = null;
        foreach (var name in configs)
        {
            NativeRuntime.ReleaseFreeMemory();
            double before = ProcessMemory.Rss / 1e9;
            if (name == "full")
            {
                // Weights, gradients and AdamW's two moments in float32: 16 bytes per parameter.
                double state = 16.0 * parameters / 1e9;
                double available = MemAvailableGb();
                if (!forceFull && 1.3 * state > available)
                {
                    Console.WriteLine($"  full FT   not run: float32 weights + gradients + AdamW moments alone are {state:F1} GB (16 B × {parameters / 1e9:F2}B), " +
                        $"{available:F1} GB available of {TotalGb():F1} GB; activations come on top (runs when 1.3 × that fits)");
                    results.Add(new { config = name, ran = false, state_gb = state, available_gb = available });
                    fullPeak = state;
                    continue;
                }
            }
            var grpo = new GrpoConfig
            {
                OutputDir = Path.Combine(dir, name), NumGenerations = completions, PerDeviceTrainBatchSize = micro,
                GradientAccumulationSteps = completions / micro, MaxCompletionLength = tokens, MaxPromptLength = 64, PromptTemplate = "none",
                LossType = "dr_grpo", Beta = 0, LearningRate = 1e-5, MaxSteps = 1, SaveSteps = 0, LrSchedulerType = "constant", Seed = 1,
                UsePeft = name != "full", LoraR = rank, LoraAlpha = 2 * rank, LoraDropout = 0, LoraTargetModules = ["all-linear"],
                LoadIn_4bit = name == "qlora",
                GradientCheckpointing = name is "lora-mem" or "qlora", LogprobChunkSize = name is "lora-mem" or "qlora" ? chunk : 0,
            };
            var build = Stopwatch.StartNew();
            // Full fine-tuning trains float32 weights; the adapters' base is bfloat16 (adapters float32), as usual for LoRA.
            using var model = CausalLM.Create(cfg, name == "full" ? ScalarType.Float32 : ScalarType.BFloat16);
            model.InitializeRandom(1);
            using var trainer = new GrpoTrainer(grpo, model, tok, rewards, data, s => s, rollouts: new FixedRollouts(151643, tokens, 3));
            double buildSeconds = build.Elapsed.TotalSeconds;
            NativeRuntime.ReleaseFreeMemory();
            double start = ProcessMemory.Rss / 1e9;
            ProcessMemory.ResetPeak();
            var sw = Stopwatch.StartNew();
            var row = trainer.Step();
            double seconds = sw.Elapsed.TotalSeconds;
            double peak = ProcessMemory.PeakRss / 1e9;
            long trained = trainer.Adapters?.NamedParameters().Sum(x => x.Param.numel()) ?? parameters;
            if (name == "lora") loraSeconds = seconds;
            if (name == "full") fullPeak = peak;
            string vsLora = loraSeconds is { } l && name != "lora" ? $", {seconds / l:F2}× plain LoRA's time" : "";
            Console.WriteLine($"  {name,-9} peak {peak,5:F2} GB (resident before the step {start:F2} GB), step {seconds,6:F1} s (update {row["update_seconds"]:F1} s){vsLora}; " +
                $"trained {trained / 1e6:F1}M; build {buildSeconds:F0} s; load {Load()}");
            results.Add(new { config = name, ran = true, peak_gb = peak, resident_before_gb = start, rss_before_build_gb = before, step_seconds = seconds,
                update_seconds = row["update_seconds"], trained_parameters = trained, load_average = Load() });
        }
        if (fullPeak is { } f)
            foreach (var r in results.Select(r => (dynamic)r).Where(r => r.ran && r.config != "full"))
                Console.WriteLine($"  {r.config,-9} peak / full FT's {(results.Any(x => ((dynamic)x).config == "full" && ((dynamic)x).ran) ? "peak" : "state alone")}: {r.peak_gb / f:P0} (target ≤ 25% for lora-mem)");
        Directory.CreateDirectory("bench/results");
        File.WriteAllText(Arg(args, "--out") ?? "bench/results/lora-bench-1.5b.json", System.Text.Json.JsonSerializer.Serialize(new { tokens, completions, micro_batch = micro, rank, layers, parameters, logprob_chunk_size = chunk, runs = results },
            new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        try { Directory.Delete(dir, true); } catch (IOException) { }
        return 0;
    }

    static string Load() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    static double MemAvailableGb() => Meminfo("MemAvailable:");
    static double TotalGb() => Meminfo("MemTotal:");
    static double Meminfo(string key) =>
        File.ReadLines("/proc/meminfo").Where(l => l.StartsWith(key)).Select(l => long.Parse(l[key.Length..].Trim().Split(' ')[0]) * 1024 / 1e9).FirstOrDefault();

    static string FindShared()
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "shared", "GUIDE.md"))) return Path.Combine(d.FullName, "shared");
        return "/work/shared";
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
