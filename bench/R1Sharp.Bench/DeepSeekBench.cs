using System.Diagnostics;
using R1Sharp.Generation;
using System.Text.Json;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// DeepSeek's architecture on this machine, each figure beside its reference in the same run, on a DeepSeek-V2-Lite
/// shaped model scaled to fit (hidden 2048 → 512 with the same head sizes, kv_lora_rank a quarter of hidden, 64 experts of
/// which 6 plus 2 shared, expert width over hidden as in V2-Lite, a dense first layer):
/// <list type="bullet">
/// <item>cache bytes per token: MLA's latent against multi-head attention with the same heads (and the published
///   models' ratios);</item>
/// <item>decode steps over a prefilled context, absorbed MLA (the latent read once) against expanded (per-head keys
///   and values rebuilt from the latent every step), at batch 1 and 16, beside the bandwidth roofline of the active
///   weights plus the cache;</item>
/// <item>one MoE layer with the batch's tokens grouped by expert against a loop over tokens.</item>
/// </list>
/// </summary>
public static class DeepSeekBench
{
    public static int Run(string[] args)
    {
        string dtypeName = Arg(args, "--dtype") ?? "bf16";
        int context = int.Parse(Arg(args, "--context") ?? "512");
        int steps = int.Parse(Arg(args, "--steps") ?? "16");
        int layers = int.Parse(Arg(args, "--layers") ?? "6");
        var dtype = dtypeName switch { "f32" => ScalarType.Float32, "bf16" => ScalarType.BFloat16, _ => throw new ArgumentException("--dtype f32|bf16") };
        int elem = dtype == ScalarType.Float32 ? 4 : 2;
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        var cfg = BenchConfig(layers);
        Console.WriteLine($"threads {get_num_threads()}, dtype {dtypeName}, load average {load}");
        Console.WriteLine($"model: V2-Lite-shaped, hidden {cfg.HiddenSize}, {cfg.NumHiddenLayers} layers, {cfg.NumAttentionHeads} heads of {cfg.QkNopeHeadDim}+{cfg.QkRopeHeadDim}/{cfg.VHeadDim}, " +
            $"kv_lora_rank {cfg.KvLoraRank}, {cfg.NRoutedExperts} experts (top {cfg.NumExpertsPerTok} + {cfg.NSharedExperts} shared) of {cfg.MoeIntermediateSize}; " +
            $"{cfg.ParameterCount() / 1e6:F0} M parameters, {cfg.ActiveParameterCount() / 1e6:F0} M active");
        double bandwidth = Roofline.MemoryBandwidth();
        Console.WriteLine($"machine: read bandwidth {bandwidth / 1e9:F1} GB/s");
        var results = new Dictionary<string, object>();

        // 1. Cache bytes per token.
        Console.WriteLine("\n== KV cache per token ==");
        long Mla(DeepseekV3Config c) => (long)c.NumHiddenLayers * (c.KvLoraRank + c.QkRopeHeadDim);
        long Mha(DeepseekV3Config c) => (long)c.NumHiddenLayers * c.NumAttentionHeads * (c.QkHeadDim + c.VHeadDim);
        using var model = BenchModel(dtype, layers);
        long measured;
        using (var probe = model.CreateCache(1, context)) measured = probe.Bytes / context;
        // The V2 paper's Table 1 counts MHA as 2·n_h·d_h·l elements (d_h = 128, keys without the rope part), MLA as
        // (d_c + d_h^R)·l, "equal to GQA with only 2.25 groups".
        long Paper(DeepseekV3Config c) => 2L * c.NumHiddenLayers * c.NumAttentionHeads * c.VHeadDim;
        foreach (var (name, c) in new (string, DeepseekV3Config)[] { ("this model", cfg), ("DeepSeek-V2-Lite", new DeepseekV2Config()), ("DeepSeek-V3/R1", new DeepseekV3Config()) })
        {
            Console.WriteLine($"{name,-18} MLA {Mla(c) * elem,9:N0} B/token   MHA with the same heads {Mha(c) * elem,11:N0} B/token ({(double)Mha(c) / Mla(c),5:F1}×; " +
                $"the paper's 2·n_h·d_h·l {(double)Paper(c) / Mla(c),5:F1}×)   = GQA with {(c.KvLoraRank + c.QkRopeHeadDim) / (2.0 * c.VHeadDim):F2} groups");
        }
        Console.WriteLine($"measured: MlaCache.Bytes / capacity = {measured:N0} B/token (formula {Mla(cfg) * elem:N0})");
        results["cache"] = new { mla_bytes_per_token = Mla(cfg) * elem, mha_bytes_per_token = Mha(cfg) * elem, measured_bytes_per_token = measured, ratio = (double)Mha(cfg) / Mla(cfg) };

        // 2. Decode over a prefilled context: absorbed vs expanded, batch 1 and 16. The two forms step alternately, each
        // over its own cache holding the same context, so both see the same moments of this shared machine.
        Console.WriteLine($"\n== decode over a {context}-token context ==");
        using var _ = no_grad();
        const int maxBatch = 16;
        var forms = new[] { MlaForm.Absorbed, MlaForm.Expanded };
        var rng = new Random(3);
        var prompt = Enumerable.Range(0, context).Select(_ => (long)rng.Next(1000, 100000)).ToArray();
        var caches = new Dictionary<MlaForm, ModelCache>();
        long next = 0;
        double prefillSeconds = 0;
        foreach (var form in forms)
        {
            var cache = caches[form] = model.CreateCache(maxBatch, context + steps + 3); // and two warm-up steps
            cache.SetBatch(1);
            int[] one = [0];
            var prefill = Stopwatch.StartNew();
            var first = model.ForwardLast(tensor(prompt, [1, context]), AttentionMask.Positions(one, 0, context, CPU), AttentionMask.Build(one, 0, context, context, CPU), cache);
            prefillSeconds = prefill.Elapsed.TotalSeconds;
            cache.Advance(context);
            cache.SetBatch(maxBatch);
            for (int r = 1; r < maxBatch; r++) cache.MoveRow(0, r); // the same context in every row
            next = first.argmax(-1).item<long>();
        }
        Console.WriteLine($"prefill (expanded MLA): {context / prefillSeconds:F0} tokens/s");
        results["prefill_tokens_per_s"] = context / prefillSeconds;
        long activeBytes = cfg.ActiveParameterCount() * elem;
        var decode = new List<object>();
        foreach (int batch in new[] { 1, maxBatch })
        {
            var pad = new int[batch];
            var ids = new Dictionary<MlaForm, Tensor>();
            var times = forms.ToDictionary(f => f, _ => new List<double>());
            foreach (var form in forms)
            {
                caches[form].SetBatch(batch);
                for (int r = 0; r < batch; r++) caches[form].SetRowLength(r, context);
                ids[form] = tensor(Enumerable.Repeat(next, batch).ToArray(), [batch, 1]);
            }
            for (int s = -2; s < steps; s++) // two warm-up steps
                foreach (var form in forms)
                {
                    using var scope = NewDisposeScope();
                    model.AttentionForm = form;
                    var cache = caches[form];
                    int len = cache.RowLength(0);
                    var sw = Stopwatch.StartNew();
                    var logits = model.ForwardLast(ids[form], AttentionMask.Positions(pad, len, 1, CPU), AttentionMask.Build(pad, len, 1, len + 1, CPU), cache);
                    cache.Advance(1);
                    ids[form] = logits.argmax(-1).view(batch, 1).MoveToOuterDisposeScope();
                    if (s >= 0) times[form].Add(sw.Elapsed.TotalSeconds);
                }
            model.AttentionForm = MlaForm.Auto;
            // The median step of each: the machine is shared, and a mean takes in whatever else ran meanwhile.
            var rates = forms.ToDictionary(f => f, f => { var t = times[f].Order().ToList(); return batch / t[t.Count / 2]; });
            // Roofline: the weights a step reads (the active experts of batch-1; at batch 16 nearly every expert, so all
            // weights) plus the cached latents of every row, at the read bandwidth.
            // The read bandwidth probed again after the steps (it moves by 2× within minutes here): the higher reading.
            bandwidth = Math.Max(bandwidth, Roofline.MemoryBandwidth());
            long weights = batch == 1 ? activeBytes : cfg.ParameterCount() * elem;
            double bytes = weights + (double)batch * context * Mla(cfg) * elem;
            double roof = batch * bandwidth / bytes;
            Console.WriteLine($"batch {batch,2}: absorbed {rates[MlaForm.Absorbed],7:F1} tokens/s   expanded {rates[MlaForm.Expanded],7:F1} tokens/s   " +
                $"absorbed ÷ expanded {rates[MlaForm.Absorbed] / rates[MlaForm.Expanded],5:F2}×   roofline {roof,7:F1} tokens/s (absorbed at {rates[MlaForm.Absorbed] / roof:P0})");
            decode.Add(new { batch, absorbed_tokens_per_s = rates[MlaForm.Absorbed], expanded_tokens_per_s = rates[MlaForm.Expanded], roofline_tokens_per_s = roof });
        }
        foreach (var c in caches.Values) c.Dispose();
        results["decode"] = decode;

        // 3. One MoE layer: grouped by expert vs token by token.
        Console.WriteLine("\n== one MoE layer ==");
        var moe = model.MoeLayers.First();
        var moeRows = new List<object>();
        foreach (int tokens in new[] { 16, 256 })
        {
            var x = randn([1, tokens, cfg.HiddenSize], generator: new Generator(5)).to(dtype);
            double Once(bool perToken)
            {
                using var scope = NewDisposeScope();
                moe.PerToken = perToken;
                var sw = Stopwatch.StartNew();
                moe.forward(x);
                moe.PerToken = false;
                return sw.Elapsed.TotalSeconds;
            }
            // Alternately, so both see the same moments of the shared machine; medians of five.
            var g = new List<double>(); var l = new List<double>();
            Once(false); Once(true);
            for (int i = 0; i < 5; i++) { g.Add(Once(false)); l.Add(Once(true)); }
            double grouped = g.Order().ElementAt(2), loop = l.Order().ElementAt(2);
            Console.WriteLine($"{tokens,4} tokens: grouped by expert {grouped * 1e3,8:F2} ms   token by token {loop * 1e3,8:F2} ms   loop ÷ grouped {loop / grouped,5:F2}×");
            moeRows.Add(new { tokens, grouped_ms = grouped * 1e3, per_token_ms = loop * 1e3 });
        }
        results["moe"] = moeRows;

        // 4. Against llama.cpp on the same weights (bf16 GGUF, deepseek2 in its MLA form), as the llamacpp benchmark runs
        // the dense models: prefill of one prompt, decode of one and of 16 sequences.
        if (args.Contains("--llamacpp")) results["llamacpp"] = AgainstLlamaCpp(model, dtype, context, int.Parse(Arg(args, "--rounds") ?? "3"),
            bandwidth, activeBytes, Mla(cfg) * elem);
        Directory.CreateDirectory("bench/results");
        File.WriteAllText($"bench/results/deepseek-{dtypeName}.json", JsonSerializer.Serialize(new { dtype = dtypeName, context, threads = get_num_threads(), load, bandwidth, results },
            new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>Prefill, decode of one sequence after a short and after a long prompt, decode of 16 sequences; the
    /// batch-1 rows also against the roofline of the bytes a step reads (the active weights and the row's cache).</summary>
    static object AgainstLlamaCpp(CausalLM model, ScalarType dtype, int prefillTokens, int rounds, double bandwidth, long activeBytes, long cacheBytesPerToken)
    {
        Console.WriteLine("\n== against llama.cpp (same weights, same threads) ==");
        string dir = Path.Combine(Path.GetTempPath(), "r1sharp-deepseek-bench-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string folder = Path.Combine(dir, "model"), gguf = Path.Combine(dir, "model.gguf");
            ModelFolder.Save(model, folder, LlamaCppBench.SharedTokenizer("deepseek_v3"));
            IO.GgufExport.Export(folder, gguf, dtype == ScalarType.BFloat16 ? IO.GgmlType.BF16 : IO.GgmlType.F32);
            var rng = new Random(4);
            int[] Prompt(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(1000, 100000)).ToArray();
            var prefill = Prompt(prefillTokens);
            var prompts = Enumerable.Range(0, 16).Select(_ => Prompt(32)).ToArray();
            // Both engines hold the model at once and take turns on each workload, best of the rounds each, so a
            // neighbour's burst on this shared machine falls on both rather than on whichever ran at that moment.
            using var ours = ModelFolder.Load(folder, dtype: dtype);
            var engine = new GenerationEngine(ours);
            var greedy = new SamplingOptions { Temperature = 0 };
            engine.Generate([prompts[0][..8]], greedy with { MaxTokens = 2 }, []); // warm-up
            using var llama = new LlamaCppRunner(gguf, get_num_threads(), prefill.Length, prompts.Length, prompts[0].Length + 17);
            llama.Prefill(prompts[0][..8]);
            const int decodeTokens = 16;
            var workloads = new (string Name, Func<double> Ours, Func<double> Theirs, int? Context)[]
            {
                ("prefill", () =>
                {
                    var sw = Stopwatch.StartNew();
                    engine.Generate([prefill], greedy with { MaxTokens = 1 }, []);
                    return prefill.Length / sw.Elapsed.TotalSeconds;
                }, () => llama.Prefill(prefill), null),
                ("decode batch 1", () => GenerationBench.DecodeTokensPerSecond(engine, [prompts[0]], decodeTokens), () => llama.Decode([prompts[0]], decodeTokens), prompts[0].Length),
                ($"decode 1 @ {prefill.Length}", () => GenerationBench.DecodeTokensPerSecond(engine, [prefill], decodeTokens), () => llama.Decode([prefill], decodeTokens), prefill.Length),
                ("decode 16 seqs", () => GenerationBench.DecodeTokensPerSecond(engine, prompts, decodeTokens), () => llama.Decode(prompts, decodeTokens), null),
            };
            var rows = new List<object>();
            foreach (var (name, mine, theirs, contextTokens) in workloads)
            {
                double a = 0, b = 0;
                var aRounds = new List<double>(); var bRounds = new List<double>();
                // The batch-1 rows' rooflines: the bandwidth probed just before and just after their rounds (the read
                // bandwidth here moves by 2× within minutes, and the run's other probes are minutes away), and, stricter,
                // the best probe of the whole run.
                double before = contextTokens is null ? 0 : Roofline.MemoryBandwidth(passes: 3);
                for (int round = 0; round < rounds; round++)
                {
                    aRounds.Add(mine()); bRounds.Add(theirs());
                }
                double around = contextTokens is null ? 0 : Math.Max(before, Roofline.MemoryBandwidth(passes: 3));
                bandwidth = Math.Max(bandwidth, around);
                a = aRounds.Max(); b = bRounds.Max();
                Console.WriteLine($"{name,-16} R1Sharp {a,8:F1} tok/s   llama.cpp {b,8:F1} tok/s   R1Sharp ÷ llama.cpp {a / b,5:F2}   " +
                    $"(rounds {string.Join(", ", aRounds.Select(x => x.ToString("F1")))} / {string.Join(", ", bRounds.Select(x => x.ToString("F1")))})");
                double? roof = null, roofAround = null;
                if (contextTokens is int ctx)
                {
                    // A step reads the active weights and the row's cache (its average length over the decode).
                    double stepBytes = activeBytes + (ctx + decodeTokens / 2.0) * cacheBytesPerToken;
                    roof = bandwidth / stepBytes;
                    roofAround = around / stepBytes;
                    Console.WriteLine($"{"",-16} roofline {roof,7:F1} tok/s at the run's best probe, {bandwidth / 1e9:F1} GB/s: R1Sharp at {a / roof:P0}, llama.cpp at {b / roof:P0}");
                    Console.WriteLine($"{"",-16} roofline {roofAround,7:F1} tok/s at the probes around these rounds, {around / 1e9:F1} GB/s (before {before / 1e9:F1}): R1Sharp at {a / roofAround:P0}, llama.cpp at {b / roofAround:P0}");
                }
                rows.Add(new { name, r1sharp_tokens_per_s = a, llamacpp_tokens_per_s = b, ratio = a / b, r1sharp_rounds = aRounds, llamacpp_rounds = bRounds,
                    roofline_tokens_per_s = roof, roofline_around_tokens_per_s = roofAround, bandwidth_best = bandwidth, bandwidth_around = around });
            }
            return rows;
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    /// <summary>The V2-Lite-shaped model this bench measures (hidden 2048 → 512, V2-Lite's head sizes, DeepSeek-V3's
    /// vocabulary so its tokenizer fits the GGUF).</summary>
    public static DeepseekV3Config BenchConfig(int layers) => DeepseekV2Config.Preset("v2-lite", 129280) with
    {
        HiddenSize = 512, NumHiddenLayers = layers, NumAttentionHeads = 4, NumKeyValueHeads = 4, KvLoraRank = 128,
        IntermediateSize = 2736, MoeIntermediateSize = 352, MaxPositionEmbeddings = 163840,
    };

    /// <summary><see cref="BenchConfig"/> with random weights (seed 1).</summary>
    public static DeepseekV3ForCausalLM BenchModel(ScalarType dtype, int layers)
    {
        var model = (DeepseekV3ForCausalLM)CausalLM.Create(BenchConfig(layers), dtype);
        model.InitializeRandom(1);
        return model;
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
