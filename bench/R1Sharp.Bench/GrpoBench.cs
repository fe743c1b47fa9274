using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// GRPO step throughput: rollout tokens/s and update tokens/s for the `r1 zero` demo model and a ~50M-parameter model,
/// with the update's model FLOP utilisation (6·N FLOPs per trained token, Kaplan et al. 2020) against this machine's
/// fp32 matmul rate measured in the same run.
/// Usage: grpo [--size demo|50m] [--steps N] [--threads N]
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
        using var trainer = new GrpoTrainer(grpo, model, tok, new RewardSet(RewardRegistry.Build(grpo)), data, R1ZeroTemplate.Format);
        trainer.Step(); // warm-up
        var rows = Enumerable.Range(0, steps).Select(_ => trainer.Step()).ToList();
        double matmul = Roofline.MatmulRate(ScalarType.Float32, 512, hidden, 4 * hidden);
        double rollout = rows.Average(r => r["rollout_tokens_per_second"]);
        double update = rows.Average(r => r["train_tokens_per_second"]);
        double mfu = 6.0 * parameters * update / matmul;
        Console.WriteLine($"{size}: {parameters / 1e6:F2}M parameters, {threads} threads, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine($"  rollout  {rollout,10:F0} tokens/s   ({rows.Average(r => r["rollout_seconds"]):F2} s/step)");
        Console.WriteLine($"  update   {update,10:F0} tokens/s   ({rows.Average(r => r["update_seconds"]):F2} s/step, padded tokens, fwd+bwd)");
        Console.WriteLine($"  matmul   {matmul / 1e9,10:F1} GFLOP/s (fp32, [512×{hidden}]·[{hidden}×{4 * hidden}])");
        Console.WriteLine($"  update MFU {mfu:P1} (6·N·tokens/s ÷ matmul rate; target ≥ 40%)");
        var json = new { size, parameters, threads, rollout_tokens_per_second = rollout, update_tokens_per_second = update, matmul_flops = matmul, mfu };
        File.WriteAllText($"grpo-bench-{size}.json", System.Text.Json.JsonSerializer.Serialize(json));
        try { Directory.Delete(dir, true); } catch (IOException) { }
        return 0;
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
