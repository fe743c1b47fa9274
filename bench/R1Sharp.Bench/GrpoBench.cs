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
/// Usage: grpo [--size demo|50m] [--steps N] [--threads N] [--micro-batch ROWS]
/// </summary>
public static class GrpoBench
{
    public static int Run(string[] args)
    {
        string size = Arg(args, "--size") ?? "demo";
        int steps = int.Parse(Arg(args, "--steps") ?? "2");
        int threads = int.Parse(Arg(args, "--threads") ?? "2");
        set_num_threads(threads);
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-grpo-bench-" + Environment.ProcessId);
        ZeroTokenizer.Write(Path.Combine(dir, "tokenizer"));
        var tok = HfTokenizer.FromFolder(Path.Combine(dir, "tokenizer"));
        var (hidden, layers, heads, ff) = size == "50m" ? (640, 10, 10, 1728) : (128, 4, 4, 384);
        var cfg = ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads, NumKeyValueHeads = heads / 2,
            HeadDim = hidden / heads, IntermediateSize = ff, MaxPositionEmbeddings = 512,
        };
        using var model = new CausalLM(cfg);
        model.InitializeRandom(1);
        long parameters = model.parameters().Sum(p => p.numel());
        var task = new AdditionTask(3);
        var data = task.Sample(512, 1, heldOut: false).Select(p => new PromptExample(p.Prompt, p.Answer)).ToList();
        var grpo = new ZeroOptions().Grpo;
        grpo.OutputDir = Path.Combine(dir, "run");
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
        var rows = Enumerable.Range(0, steps).Select(_ => trainer.Step()).ToList();
        double matmul = Roofline.MatmulRate(ScalarType.Float32, 512, hidden, 4 * hidden);
        double rollout = rows.Average(r => r["rollout_tokens_per_second"]);
        double update = rows.Average(r => r["train_tokens_per_second"]);
        double flops = rows.Average(r => r["update_flops_per_second"]);
        double mfu = flops / matmul;
        double mfu6N = 6.0 * parameters * update / matmul;
        Console.WriteLine($"{size}: {parameters / 1e6:F2}M parameters, {threads} threads, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine($"  rollout  {rollout,10:F0} tokens/s   ({rows.Average(r => r["rollout_seconds"]):F2} s/step)");
        Console.WriteLine($"  update   {update,10:F0} tokens/s   ({rows.Average(r => r["update_seconds"]):F2} s/step, padded tokens, fwd+bwd)");
        Console.WriteLine($"  matmul   {matmul / 1e9,10:F1} GFLOP/s (fp32, [512×{hidden}]·[{hidden}×{4 * hidden}])");
        Console.WriteLine($"  update   {flops / 1e9,10:F1} GFLOP/s model FLOPs (policy fwd+bwd, reference fwd)");
        Console.WriteLine($"  update MFU {mfu:P1} (model FLOPs/s ÷ matmul rate; target ≥ 40%); 6·N·padded tokens/s ÷ matmul rate: {mfu6N:P1}");
        var json = new
        {
            size, parameters, threads, load_average = File.ReadAllText("/proc/loadavg").Split(' ')[0],
            rollout_tokens_per_second = rollout, update_tokens_per_second = update, update_flops_per_second = flops,
            matmul_flops = matmul, mfu, mfu_6n = mfu6N,
        };
        Directory.CreateDirectory("bench/results");
        File.WriteAllText($"bench/results/grpo-bench-{size}.json", System.Text.Json.JsonSerializer.Serialize(json, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        try { Directory.Delete(dir, true); } catch (IOException) { }
        return 0;
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
