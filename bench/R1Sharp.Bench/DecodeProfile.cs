using R1Sharp.Kernels;
using System.Diagnostics;
using R1Sharp.Generation;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// Where a decode step's time goes: the whole step (model.ForwardLast over a KV cache plus greedy sampling) next to
/// the same step's projections alone (every Linear.Apply of the step, with inputs of the right shapes, back to back),
/// for batch 1 and 16. The difference is everything outside the matrix-vector products: norms, RoPE, attention over
/// the cache, residual adds, dispatch. Best of several steps each, so other processes on the machine matter less.
/// </summary>
public static class DecodeProfile
{
    static bool Verbose;
    static double GapUs;

    /// <summary>With --gap US: that much single-threaded work between projections, as a step's other operators do.</summary>
    static void Gap()
    {
        if (GapUs <= 0) return;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalMicroseconds < GapUs) { }
    }

    public static int Run(string[] args)
    {
        Verbose = args.Contains("--verbose");
        GapUs = double.Parse(Arg(args, "--gap") ?? "0");
        string dtypeName = Arg(args, "--dtype") ?? "f32";
        string size = Arg(args, "--size") ?? "0.5b";
        int steps = int.Parse(Arg(args, "--steps") ?? "12");
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        if (Arg(args, "--rows") is string rowList) KernelProfile.Rows = rowList.Split(',').Select(int.Parse).ToArray();
        KernelProfile.CpuClock = args.Contains("--cpu-clock");
        if (Arg(args, "--prefetch") is string prefetch) QuantKernels.PrefetchBytes = int.Parse(prefetch); // quantized one-row kernels' distance (0: none)
        if (args.Contains("--kernels")) { KernelProfile.Run(dtype == ScalarType.BFloat16, steps); return 0; }
        // --gguf FILE: a GGUF file's model as `--model FILE.gguf` loads it (quantized weights in place).
        string? gguf = Arg(args, "--gguf");
        CausalLM model;
        long weightBytes;
        if (gguf is not null)
        {
            model = R1Sharp.IO.GgufModel.Load(gguf);
            weightBytes = new FileInfo(gguf).Length;
            dtypeName = Path.GetFileName(gguf);
        }
        else
        {
            model = CausalLM.Create(ModelPresets.Create("qwen2", size, 151936), dtype);
            model.InitializeRandom(1);
            weightBytes = model.parameters().Sum(p => p.NumberOfElements * p.ElementSize);
        }
        using var owned = model;
        Console.WriteLine($"threads {get_num_threads()}, dtype {dtypeName}, load {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"{"batch",5} {"step ms",9} {"proj ms",9} {"lm_head ms",10} {"rest ms",9} {"proj %",7}  GB/s(step)");
        using var _ = no_grad();
        if (args.Contains("--parts")) { Parts(model, steps); return 0; }
        if (args.Contains("--engine"))
        {
            // The same decode through GenerationEngine, as the generate bench times it (mean over the steps).
            var engine = new GenerationEngine(model);
            var rng = new Random(3);
            int[] Prompt(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(1000, 100000)).ToArray();
            for (int rep = 0; rep < 3; rep++)
                foreach (int batch in new[] { 1, 16 })
                {
                    double tokS = GenerationBench.DecodeTokensPerSecond(engine, Enumerable.Range(0, batch).Select(_ => Prompt(32)).ToArray(), steps);
                    Console.WriteLine($"engine batch {batch,2}: {batch * 1000 / tokS,7:F1} ms a step ({tokS:F1} tok/s)");
                    StepMs(model, batch, steps);
                }
            return 0;
        }
        foreach (int batch in new[] { 1, 16 })
        {
            double step = StepMs(model, batch, steps);
            var (proj, head) = ProjectionMs(model, batch, steps);
            Console.WriteLine($"{batch,5} {step,9:F1} {proj + head,9:F1} {head,10:F1} {step - proj - head,9:F1} {(proj + head) / step,7:P0}  {weightBytes / step / 1e6,6:F1}");
        }
        return 0;
    }

    /// <summary>Best time of one decode step at context 33 (a 32-token prompt prefilled first).</summary>
    static double StepMs(CausalLM model, int batch, int steps)
    {
        int prompt = 32;
        using var cache = model.CreateCache(batch, prompt + steps + 1);
        var pad = new int[batch];
        using (NewDisposeScope())
        {
            var ids = randint(1000, 100000, [batch, prompt], dtype: ScalarType.Int64);
            model.ForwardLast(ids, AttentionMask.Positions(pad, 0, prompt, model.Device), AttentionMask.Build(pad, 0, prompt, prompt, model.Device), cache);
            cache.Advance(prompt);
        }
        double best = double.MaxValue, sum = 0;
        var greedy = new SamplingOptions { Temperature = 0 };
        for (int s = 0; s < steps; s++)
        {
            int len = prompt + s;
            var sw = Stopwatch.StartNew();
            double tHidden, tHead;
            using (NewDisposeScope())
            {
                var ids = randint(1000, 100000, [batch, 1], dtype: ScalarType.Int64);
                var h = model.Hidden(ids, AttentionMask.Positions(pad, len, 1, model.Device), AttentionMask.Build(pad, len, 1, len + 1, model.Device), cache);
                cache.Advance(1);
                tHidden = sw.Elapsed.TotalMilliseconds;
                var logits = model.Logits(h).squeeze(1);
                tHead = sw.Elapsed.TotalMilliseconds - tHidden;
                Sampler.Sample(logits, greedy, new Generator?[batch]);
            }
            double total = sw.Elapsed.TotalMilliseconds;
            if (Verbose) Console.WriteLine($"    step {s}: layers {tHidden:F1} ms, lm_head {tHead:F1} ms, sampler {total - tHidden - tHead:F1} ms");
            best = Math.Min(best, total);
            sum += total;
        }
        Console.WriteLine($"      (batch {batch}: mean step {sum / steps:F1} ms over {steps}, best {best:F1})");
        return best;
    }

    /// <summary>Best time of all of one step's projections (layers, then lm_head), through Linear.Apply.</summary>
    static (double layers, double head) ProjectionMs(CausalLM model, int batch, int steps)
    {
        var cfg = (LlamaConfig)model.Config;
        using var scope = NewDisposeScope();
        var xh = randn(batch, 1, cfg.HiddenSize).to(model.DType);
        var xo = randn(batch, 1, cfg.NumAttentionHeads * cfg.HeadDim).to(model.DType);
        var xi = randn(batch, 1, cfg.IntermediateSize).to(model.DType);
        double bestLayers = double.MaxValue, bestHead = double.MaxValue;
        for (int s = 0; s < steps; s++)
        {
            var sw = Stopwatch.StartNew();
            foreach (var layer in ((LlamaForCausalLM)model).model.layers)
                using (NewDisposeScope())
                {
                    var a = layer.self_attn; var m = layer.mlp;
                    Linear.ApplyMany(xh, a.q_proj, a.k_proj, a.v_proj); Gap(); a.o_proj.forward(xo); Gap();
                    Linear.ApplyMany(xh, m.gate_proj, m.up_proj); Gap(); m.down_proj.forward(xi); Gap();
                }
            bestLayers = Math.Min(bestLayers, sw.Elapsed.TotalMilliseconds);
            sw.Restart();
            using (NewDisposeScope()) model.Logits(xh);
            bestHead = Math.Min(bestHead, sw.Elapsed.TotalMilliseconds);
        }
        return (bestLayers, bestHead);
    }

    /// <summary>The pieces of a decode step outside the projections, each timed alone (24 layers' worth, batch 1 and 16).</summary>
    static void Parts(CausalLM model, int reps)
    {
        var cfg = (LlamaConfig)model.Config;
        var layer = ((LlamaForCausalLM)model).model.layers[0];
        int ctx = int.Parse(Arg(Environment.GetCommandLineArgs(), "--ctx") ?? "48");
        foreach (int b in new[] { 1, 16 })
        {
            using var scope = NewDisposeScope();
            var x = randn(b, 1, cfg.HiddenSize).to(model.DType);
            var q = randn(b, cfg.NumAttentionHeads, 1, cfg.HeadDim).to(model.DType);
            var k = randn(b, cfg.NumKeyValueHeads, 1, cfg.HeadDim).to(model.DType);
            var keys = randn(b, cfg.NumKeyValueHeads, ctx, cfg.HeadDim).to(model.DType);
            var mask = zeros([b, 1, 1, 1, ctx]);
            var cos = randn(b, 1, 1, cfg.HeadDim).to(model.DType);
            var gate = randn(b, 1, cfg.IntermediateSize).to(model.DType);
            var xf = randn(b, 1, cfg.HiddenSize).to(model.DType);
            int groups = cfg.NumAttentionHeads / cfg.NumKeyValueHeads;
            using var cache = (KvCache)model.CreateCache(b, ctx + reps * 30);
            var parts = new (string, Action)[]
            {
                ("2 RMSNorms", () => { layer.input_layernorm.forward(x); layer.post_attention_layernorm.forward(x); }),
                ("RoPE q and k", () => { Ops.Rope(q.transpose(1, 2), cos, cos); Ops.Rope(k.transpose(1, 2), cos, cos); }),
                ("KV cache append", () => { cache.Append(0, k, k); cache.Advance(1); }),
                ("attention core", () =>
                {
                    var qg = q.reshape(b, cfg.NumKeyValueHeads, groups, cfg.HeadDim);
                    var sc = matmul(qg, keys.transpose(2, 3)).view(b, cfg.NumKeyValueHeads, groups, 1, ctx).to(ScalarType.Float32);
                    sc = sc.mul_(0.125).add_(mask);
                    var p = sc.softmax(-1).to(keys.dtype).view(b, cfg.NumKeyValueHeads, groups, ctx);
                    matmul(p, keys).view(b, cfg.NumAttentionHeads, 1, cfg.HeadDim).transpose(1, 2).reshape(b, 1, -1);
                }),
                ("attention core via f32", () =>
                {
                    var qg = q.reshape(b, cfg.NumKeyValueHeads, groups, cfg.HeadDim).to(ScalarType.Float32);
                    var sc = matmul(qg, keys.to(ScalarType.Float32).transpose(2, 3)).to(keys.dtype).view(b, cfg.NumKeyValueHeads, groups, 1, ctx).to(ScalarType.Float32);
                    sc = sc.mul_(0.125).add_(mask);
                    var p = sc.softmax(-1).to(keys.dtype).view(b, cfg.NumKeyValueHeads, groups, ctx);
                    matmul(p.to(ScalarType.Float32), keys.to(ScalarType.Float32)).to(keys.dtype).view(b, cfg.NumAttentionHeads, 1, cfg.HeadDim).transpose(1, 2).reshape(b, 1, -1);
                }),
                ("attention, DecodeAttention", () => { DecodeAttention.Run(q, keys, keys, mask, 0.125); }),
                ("silu·up", () => { nn.functional.silu(gate).mul_(gate); }),
                ("2 residual adds", () => { var h = x + xf; var h2 = h + xf; }),
                ("empty Linear overhead ×7", () => { for (int i = 0; i < 7; i++) { var t = x.reshape(b, -1).to(ScalarType.Float32).contiguous(); var e = empty(b, 8); e.to(x.dtype).reshape(b, 1, 8); } }),
            };
            Console.WriteLine($"batch {b}: ms per step (×{cfg.NumHiddenLayers} layers), best of {reps}");
            foreach (var (name, act) in parts)
            {
                double best = double.MaxValue;
                for (int r = 0; r < reps; r++)
                {
                    var sw = Stopwatch.StartNew();
                    for (int l = 0; l < cfg.NumHiddenLayers; l++) using (NewDisposeScope()) act();
                    best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
                }
                Console.WriteLine($"  {name,-26} {best,7:F2}");
            }
        }
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
