using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// GRPO's rollouts with adapters, two ways, side by side in one process on the R1-Distill-Qwen-1.5B shape (random
/// bfloat16 weights, LoRA r on all linear layers with non-zero B, as mid-training): <b>unmerged</b> (the policy itself,
/// base + (α/r)·B·A·x at every linear: what the trainers do) against <b>merged</b> (a second bfloat16 copy of the base
/// with W + (α/r)·B·A folded in, rebuilt after every optimizer step; in-place merging into the frozen base would round
/// it in bfloat16 and lose the base that GRPO's π_ref and the next merge need, so a copy is the only exact way). Same
/// prompts, seed and tokens; the configurations alternate (unmerged, merged, unmerged, merged …) so load drift hits
/// both. Reports decode time per token, the per-step merge cost, the ratio, and the extra memory of the copy.
/// Usage: lora-rollout [--layers 28] [--completions 8] [--prompt 64] [--tokens 64] [--rank 16] [--reps 2] [--threads 2]
/// </summary>
public static class LoraRolloutBench
{
    public static int Run(string[] args)
    {
        int layers = int.Parse(Arg(args, "--layers") ?? "28");
        int completions = int.Parse(Arg(args, "--completions") ?? "8");
        int promptLength = int.Parse(Arg(args, "--prompt") ?? "64");
        int tokens = int.Parse(Arg(args, "--tokens") ?? "64");
        int rank = int.Parse(Arg(args, "--rank") ?? "16");
        int reps = int.Parse(Arg(args, "--reps") ?? "2");
        set_num_threads(int.Parse(Arg(args, "--threads") ?? "2"));
        var cfg = Qwen2Config.Preset("1.5b", 151936) with { EosTokenIds = [151643], NumHiddenLayers = layers, MaxPositionEmbeddings = 4096 };
        Console.WriteLine($"Rollouts with LoRA adapters: Qwen2 1.5B shape ({layers} layers, {cfg.ParameterCount() / 1e9:F2}B parameters, bfloat16), " +
            $"LoRA r={rank} all-linear, {completions} completions × {tokens} tokens after {promptLength}-token prompts, {get_num_threads()} threads; load {Load()}");

        using var policy = CausalLM.Create(cfg, ScalarType.BFloat16);
        policy.InitializeRandom(1);
        var lora = LoraModel.Of(policy);
        var config = new LoraConfig { R = rank, LoraAlpha = 2 * rank, TargetModules = [LoraConfig.AllLinear], TargetIsPattern = true };
        lora.AddFresh(config, seed: 1);
        lora.FreezeBase();
        using (no_grad())
        {
            // Mid-training adapters: B ≠ 0, so the two ways compute the same non-trivial model.
            var gen = new Generator(7);
            foreach (var (name, p) in lora.NamedParameters())
                if (name.EndsWith("lora_B.weight")) p.copy_(normal(0, 0.02, p.shape, generator: gen));
        }
        double rssPolicy = ProcessMemory.Rss / 1e9;
        using var merged = policy.FrozenCopy();
        NativeRuntime.ReleaseFreeMemory();
        double copyGb = ProcessMemory.Rss / 1e9 - rssPolicy;
        // The adapted linears: PEFT's key base_model.model.<module>.lora_A.weight names the module.
        var modules = lora.NamedParameters().Where(p => p.Name.EndsWith(".lora_A.weight"))
            .Select(p => p.Name["base_model.model.".Length..^".lora_A.weight".Length]).ToList();
        var adapters = lora.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        var baseWeights = policy.StateDict();
        var mergedWeights = merged.StateDict();
        double scaling = config.Scaling;
        double linearsGb = modules.Sum(m => baseWeights[m + ".weight"].numel()) * 2 / 1e9; // what a copy of only the adapted weights would hold

        // What a merged rollout pays after every optimizer step: W' = W + scaling·B·A for every adapted linear, in float32, stored in bfloat16.
        double Merge()
        {
            var sw = Stopwatch.StartNew();
            using var _ = no_grad();
            foreach (var m in modules)
            {
                using var scope = NewDisposeScope();
                var a = adapters[$"base_model.model.{m}.lora_A.weight"];
                var b = adapters[$"base_model.model.{m}.lora_B.weight"];
                mergedWeights[m + ".weight"].copy_(baseWeights[m + ".weight"].to(ScalarType.Float32).add_(b.matmul(a), alpha: scaling));
            }
            return sw.Elapsed.TotalSeconds;
        }

        var rng = new Random(3);
        var prompts = Enumerable.Range(0, completions).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, promptLength).Select(_ => rng.Next(1000, 151000)).ToArray()).ToList();
        var options = new SamplingOptions { Temperature = 1f, MaxTokens = tokens, Seed = 11 };
        int[] noEos = [];
        (double Seconds, int[][] Tokens) Rollout(CausalLM model)
        {
            var engine = new GenerationEngine(model) { ReleaseMemoryAfterPrefill = false };
            var sw = Stopwatch.StartNew();
            var outs = engine.Generate(prompts, options, noEos);
            return (sw.Elapsed.TotalSeconds, outs.Select(o => o.TokenIds).ToArray());
        }

        Merge(); Rollout(policy); // warm-up: first-touch page faults and kernel set-up out of the timings
        var unmergedTimes = new List<double>();
        var mergedTimes = new List<double>();
        var mergeTimes = new List<double>();
        int[][]? unmergedTokens = null, mergedTokens = null;
        for (int rep = 0; rep < reps; rep++)
        {
            var (tu, ku) = Rollout(policy);
            unmergedTimes.Add(tu); unmergedTokens = ku;
            Console.WriteLine($"  rep {rep + 1}: unmerged {tu,6:F1} s ({1000 * tu / (completions * tokens),5:F1} ms/token); load {Load()}");
            double tm0 = Merge();
            var (tm, km) = Rollout(merged);
            mergeTimes.Add(tm0); mergedTimes.Add(tm); mergedTokens = km;
            Console.WriteLine($"  rep {rep + 1}: merged   {tm,6:F1} s ({1000 * tm / (completions * tokens),5:F1} ms/token) + merge {tm0:F2} s; load {Load()}");
        }
        double u = unmergedTimes.Min(), m = mergedTimes.Min(), g = mergeTimes.Min();
        int same = Enumerable.Range(0, completions).Sum(i => unmergedTokens![i].Zip(mergedTokens![i]).TakeWhile(x => x.First == x.Second).Count());
        Console.WriteLine($"  best of {reps}: unmerged {u:F1} s, merged {m:F1} s + {g:F2} s merge per step; merged / unmerged = {m / u:F3} (rollout), " +
            $"{(m + g) / u:F3} (with the merge); the merged copy holds {copyGb:F2} GB more ({linearsGb:F2} GB if it shared all but the adapted linears); " +
            $"tokens equal before the first difference: {same} of {completions * tokens} (bfloat16 rounding of W + ΔW)");
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/lora-rollout-1.5b.json", System.Text.Json.JsonSerializer.Serialize(new
        {
            layers, completions, prompt = promptLength, tokens, rank, threads = get_num_threads(),
            unmerged_seconds = unmergedTimes, merged_seconds = mergedTimes, merge_seconds = mergeTimes,
            ratio_rollout = m / u, ratio_with_merge = (m + g) / u, merged_copy_gb = copyGb, adapted_linears_gb = linearsGb, load_average = Load(),
        }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    static string Load() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
