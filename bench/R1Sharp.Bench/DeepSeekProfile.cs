using System.Diagnostics;
using System.Reflection;
using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// Where a batch-1 decode step of the DeepSeek bench model goes: the step replayed piece by piece (embedding and
/// RoPE rows, per layer the input norm, MLA, the residual norm, the FFN; the final norm, the output head, argmax),
/// each piece timed, medians over the steps. The pieces are the calls <see cref="DeepseekV3ForCausalLM.Hidden"/> and
/// <see cref="CausalLM.Logits"/> make, in their order, so the caches see what they see in a real step.
/// </summary>
public static class DeepSeekProfile
{
    public static int Run(string[] args)
    {
        int steps = int.Parse(Arg(args, "--steps") ?? "64"), context = int.Parse(Arg(args, "--context") ?? "32");
        string load = File.ReadAllText("/proc/loadavg").Trim();
        using var model = DeepSeekBench.BenchModel(ScalarType.BFloat16, 6);
        var cfg = (DeepseekV3Config)model.Config;
        Console.WriteLine($"threads {get_num_threads()}, load average {load}");
        using var _ = no_grad();
        var rope = (Rope)typeof(DeepseekV3ForCausalLM).GetField("rope", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(model)!;
        using var cache = (MlaCache)model.CreateCache(1, context + steps + 8);
        cache.SetBatch(1);
        int[] pad = [0];
        var rng = new Random(3);
        var prompt = Enumerable.Range(0, context).Select(_ => (long)rng.Next(1000, 100000)).ToArray();
        var first = model.ForwardLast(tensor(prompt, [1, context]), AttentionMask.Positions(pad, 0, context, CPU), AttentionMask.Build(pad, 0, context, context, CPU), cache);
        cache.Advance(context);
        long next = first.argmax(-1).item<long>();
        var layers = model.MainLayers.ToArray();
        var names = new List<string> { "embed+rope+mask" };
        for (int l = 0; l < layers.Length; l++) names.AddRange([$"L{l} input norm", $"L{l} attention", $"L{l} add+norm", $"L{l} {(layers[l].Moe is null ? "dense MLP" : "MoE")}"]);
        names.AddRange(["final norm", "head", "argmax"]);
        // --ab NAME: a switch flipped every other step, each arm's pieces timed apart (in-process A/B).
        string? ab = Arg(args, "--ab");
        var arms = new[] { new Arm(names.Count), new Arm(names.Count) };
        for (int s = -4; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            int len = cache.RowLength(0), i = 0;
            int arm = ab is null ? 0 : s & 1;
            Switch(ab, arm == 1);
            var times = arms[arm].Times;
            var attn = arms[arm].Attention;
            var sw = Stopwatch.StartNew();
            double last = 0;
            double lastA = 0;
            void MarkA(int j)
            {
                double now = sw.Elapsed.TotalSeconds;
                if (s >= 0) attn[j].Add(now - (j == 0 ? last : lastA));
                lastA = now;
            }
            void Mark()
            {
                double now = sw.Elapsed.TotalSeconds;
                if (s >= 0) times[i].Add(now - last);
                last = now; i++;
            }
            var ids = tensor(new[] { next }, [1, 1]);
            var positions = AttentionMask.Positions(pad, len, 1, CPU);
            var mask = AttentionMask.Build(pad, len, 1, len + 1, CPU);
            var (cos, sin) = rope.Gather(positions, model.DType, model.Device);
            var h = model.model.embed_tokens.forward(ids);
            Mark();
            foreach (var layer in layers)
            {
                var normed = layer.input_layernorm.forward(h); Mark();
                var a = layer.self_attn;
                var projected = Linear.ApplyMany(normed, a.q_proj!, a.kv_a_proj_with_mqa); MarkA(0);
                var latents = cache.Reserve(Array.IndexOf(layers, layer), 1, out var pos, out int length);
                var mla = MlaDecode.Run(projected[0], projected[1], cos, sin, a.kv_a_layernorm.weight, a.kv_a_layernorm.Eps, latents, pos, length,
                    a.kv_b_proj.weight!, mask, cfg.NumAttentionHeads, cfg.QkNopeHeadDim, cfg.QkRopeHeadDim, cfg.VHeadDim, cfg.Interleaved, cfg.SoftmaxScale); MarkA(1);
                var attended = a.o_proj.forward(mla); MarkA(2); Mark();
                var (sum, n2) = Ops.AddRmsNorm(h, attended, layer.post_attention_layernorm.weight, layer.post_attention_layernorm.Eps); Mark();
                h = layer.mlp is DeepseekV3MoE moe ? moe.ForwardPlus(n2, sum) : ((DeepseekV3Mlp)layer.mlp).ForwardPlus(n2, sum); Mark();
            }
            var final = model.model.norm.forward(h); Mark();
            var logits = model.Logits(final).squeeze(1); Mark();
            next = ArgMaxOf(logits); Mark();
            cache.Advance(1);
            if (s >= 0) arms[arm].Total.Add(sw.Elapsed.TotalSeconds);
        }
        Switch(ab, false);
        for (int a = 0; a < (ab is null ? 1 : 2); a++)
        {
            if (ab is not null) Console.WriteLine($"--- {ab} {(a == 1 ? "on (B)" : "off (A)")} ---");
            Report(arms[a], names, cfg);
        }
        // The head alone, back to back, against the probe just before and after.
        double before = Roofline.MemoryBandwidth();
        var hLast = model.model.norm.forward(model.model.embed_tokens.forward(tensor(new[] { next }, [1, 1])));
        var alone = new List<double>();
        for (int r = 0; r < 30; r++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            model.Logits(hLast);
            alone.Add(sw.Elapsed.TotalSeconds);
        }
        long headBytes = cfg.VocabSize * (long)cfg.HiddenSize * 2;
        Console.WriteLine($"head alone, back to back: median {headBytes / Median(alone) / 1e9:F1} GB/s, best {headBytes / alone.Min() / 1e9:F1} GB/s; " +
            $"probe before {before / 1e9:F1}, after {Roofline.MemoryBandwidth() / 1e9:F1} GB/s; load {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    sealed class Arm(int names)
    {
        public readonly List<double>[] Times = Enumerable.Range(0, names).Select(_ => new List<double>()).ToArray();
        public readonly List<double>[] Attention = [new(), new(), new()];
        public readonly List<double> Total = new();
    }

    /// <summary>The A/B switches: B is "on".</summary>
    static void Switch(string? name, bool on)
    {
        switch (name)
        {
            case null: break;
            case "moe-kernel": R1Sharp.Kernels.MoeDecode.Enabled = on; break;
            case "mla-kernel": R1Sharp.Kernels.MlaDecode.Enabled = on; break;
            case "mla-one-thread": R1Sharp.Kernels.MlaDecode.MinParallelWork = on ? long.MaxValue : 1 << 16; break;
            default: throw new ArgumentException($"--ab: unknown switch {name}");
        }
    }

    static void Report(Arm arm, List<string> names, DeepseekV3Config cfg)
    {
        var times = arm.Times; var attn = arm.Attention; var total = arm.Total;
        double sumOfMedians = 0;
        for (int i = 0; i < names.Count; i++)
        {
            sumOfMedians += Median(times[i]);
            Console.WriteLine($"{names[i],-20} {Median(times[i]) * 1e3,7:F3} ms");
        }
        var sums = new Dictionary<string, double>();
        for (int i = 0; i < names.Count; i++)
        {
            string key = names[i].StartsWith('L') ? names[i][(names[i].IndexOf(' ') + 1)..] : names[i];
            sums[key] = sums.GetValueOrDefault(key) + Median(times[i]);
        }
        Console.WriteLine("sums over layers: " + string.Join(", ", sums.Where(p => names.Any(n => n.EndsWith(" " + p.Key))).Select(p => $"{p.Key} {p.Value * 1e3:F3} ms")));
        Console.WriteLine($"step (median) {Median(total) * 1e3:F3} ms, best {total.Min() * 1e3:F3} ms; sum of medians {sumOfMedians * 1e3:F3} ms");
        Console.WriteLine($"attention pieces (medians over all layers): q+kv_a {Median(attn[0]) * 1e6:F1} us, MlaDecode {Median(attn[1]) * 1e6:F1} us, o_proj {Median(attn[2]) * 1e6:F1} us");
        long head = cfg.VocabSize * (long)cfg.HiddenSize * 2;
        Console.WriteLine($"head {head / 1e6:F0} MB at {head / Median(times[names.IndexOf("head")]) / 1e9:F1} GB/s");
    }

    static double Median(List<double> t) => t.Order().ElementAt(t.Count / 2);

    static long ArgMaxOf(Tensor logits) => logits.argmax(-1).item<long>();

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
