using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// GRPO step throughput: rollout tokens/s and update tokens/s for the `r1 zero` demo model and a ~50M-parameter model,
/// with the update's model FLOP utilisation against this machine's fp32 matmul rate measured in the same run. Model
/// FLOPs are the trainer's own count (Training/ModelFlops: every matmul of the policy's forward and backward and of the
/// reference model's forward, from the shapes computed); 6·N per padded token (Kaplan et al. 2020) is printed beside it.
/// Usage: grpo [--size demo|50m] [--steps N] [--threads N[,N]] [--micro-batch ROWS] [--unfused]
/// </summary>
public static class GrpoBench
{
    public static int Run(string[] args)
    {
        string size = Arg(args, "--size") ?? "demo";
        int steps = int.Parse(Arg(args, "--steps") ?? "6");
        // By default the demo model is measured on the one thread `r1 zero` trains it with (ZeroOptions.Threads: a
        // 128-wide model's operators gain little from a second) and on two; the 50M model on two.
        var threadCounts = (Arg(args, "--threads") ?? (size == "50m" ? "2" : $"{new ZeroOptions().Threads},2"))
            .Split(',').Select(int.Parse).Distinct().ToList();
        bool unfused = args.Contains("--unfused");
        if (unfused) TrainingKernels.Enabled = false; // the same formulas as libtorch operators, for comparison
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-grpo-bench-" + Environment.ProcessId);
        ZeroTokenizer.Write(Path.Combine(dir, "tokenizer"));
        var tok = HfTokenizer.FromFolder(Path.Combine(dir, "tokenizer"));
        var (hidden, layers, heads, ff) = size == "50m" ? (640, 10, 10, 1728) : (128, 4, 4, 384);
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads, NumKeyValueHeads = heads / 2,
            HeadDim = hidden / heads, IntermediateSize = ff, MaxPositionEmbeddings = 512,
        };
        var task = new AdditionTask(3);
        var data = task.Sample(512, 1, heldOut: false).Select(p => new PromptExample(p.Prompt, p.Answer)).ToList();
        var results = new List<object>();
        foreach (int threads in threadCounts)
        {
            set_num_threads(threads);
            using var model = CausalLM.Create(cfg);
            model.InitializeRandom(1);
            long parameters = model.parameters().Sum(p => p.numel());
            var grpo = new ZeroOptions().Grpo;
            grpo.OutputDir = Path.Combine(dir, $"run-{threads}");
            grpo.MaxSteps = steps + 1; grpo.SaveSteps = 0; grpo.NumThreads = threads;
            if (Arg(args, "--micro-batch") is string mb)
            {
                // Same completions per step, cut into micro-batches of this many rows.
                int total = grpo.GenerationBatchSize;
                grpo.PerDeviceTrainBatchSize = int.Parse(mb);
                grpo.GradientAccumulationSteps = Math.Max(1, total / grpo.PerDeviceTrainBatchSize);
            }
            using var trainer = new GrpoTrainer(grpo, model, tok, new RewardSet(RewardRegistry.Build(grpo)), data, R1ZeroTemplate.Format);
            trainer.Step(); // warm-up
            // Paired rounds: this machine's matmul rate moves by ±30% from minute to minute (other tenants), so each
            // step's update is compared with the rate measured just before and just after it (the higher of the two).
            var rows = new List<Dictionary<string, double>>();
            var rates = new List<double>();
            var mfus = new List<double>();
            for (int i = 0; i < steps; i++)
            {
                double before = Roofline.MatmulRate(ScalarType.Float32, 512, hidden, 4 * hidden);
                var row = trainer.Step();
                double rate = Math.Max(before, Roofline.MatmulRate(ScalarType.Float32, 512, hidden, 4 * hidden));
                rows.Add(row); rates.Add(rate); mfus.Add(row["update_flops_per_second"] / rate);
            }
            double mfu = Median(mfus);
            double rollout = rows.Average(r => r["rollout_tokens_per_second"]);
            double update = rows.Average(r => r["train_tokens_per_second"]);
            double flops = rows.Average(r => r["update_flops_per_second"]);
            double matmul = Median(rates);
            double mfu6N = Median(rows.Select((r, i) => 6.0 * parameters * r["train_tokens_per_second"] / rates[i]).ToList());
            string load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            Console.WriteLine($"{size}: {parameters / 1e6:F2}M parameters, {threads} thread{(threads > 1 ? "s" : "")}{(unfused ? ", unfused element-wise operators" : "")}, load average {load}");
            Console.WriteLine($"  rollout  {rollout,10:F0} tokens/s   ({rows.Average(r => r["rollout_seconds"]):F2} s/step)");
            Console.WriteLine($"  update   {update,10:F0} tokens/s   ({rows.Average(r => r["update_seconds"]):F2} s/step, padded tokens, fwd+bwd)");
            Console.WriteLine($"  update   {flops / 1e9,10:F1} GFLOP/s model FLOPs (policy fwd+bwd, reference fwd)");
            Console.WriteLine($"  matmul   {matmul / 1e9,10:F1} GFLOP/s (fp32, [512×{hidden}]·[{hidden}×{4 * hidden}], median of the {steps} paired rounds)");
            Console.WriteLine($"  update MFU {mfu:P1} (median of {steps} steps, range {mfus.Min():P1}–{mfus.Max():P1}; target ≥ 40%); 6·N·padded tokens/s ÷ matmul rate: {mfu6N:P1}");
            results.Add(new
            {
                threads, unfused, load_average = load, rollout_tokens_per_second = rollout, update_tokens_per_second = update,
                update_flops_per_second = flops, matmul_flops = matmul, mfu, mfu_min = mfus.Min(), mfu_max = mfus.Max(),
                mfu_6n = mfu6N, parameters,
            });
        }
        Directory.CreateDirectory("bench/results");
        File.WriteAllText($"bench/results/grpo-bench-{size}{(unfused ? "-unfused" : "")}.json",
            System.Text.Json.JsonSerializer.Serialize(new { size, steps, runs = results }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        try { Directory.Delete(dir, true); } catch (IOException) { }
        return 0;
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
