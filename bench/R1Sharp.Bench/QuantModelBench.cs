using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using LLama;
using LLama.Native;
using R1Sharp.Generation;
using R1Sharp.IO;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Bench;

/// <summary>
/// R1Sharp against llama.cpp (LLamaSharp, CPU) on the same quantized GGUF files with the same threads, in one process
/// run: the R1-Distill-Qwen-1.5B shape (hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate 8960, vocabulary
/// 151,936) with random weights is written as a BF16 GGUF and quantized by llama.cpp's own quantiser to Q4_K_M and
/// Q8_0; each file is then run by R1Sharp (`--model FILE.gguf`: LocalModel, the blocks read in place) and by llama.cpp:
/// prefill of one prompt, decode at batch 1 and of 16 parallel sequences, R1Sharp ÷ llama.cpp for each. Batch-1 decode
/// is also set against the bandwidth roofline of the bytes a token reads (every matrix but the embedding table, of
/// which one row), with the read bandwidth measured around it; and R1Sharp's peak resident memory against the file's
/// size plus its KV cache.
/// </summary>
public static class QuantModelBench
{
    public static int Run(string[] args)
    {
        int threads = int.Parse(Arg(args, "--threads") ?? get_num_threads().ToString());
        int prefillTokens = int.Parse(Arg(args, "--prefill") ?? "512");
        // --prefill-chunk N: positions per forward pass (GenerationEngine.PrefillChunkTokens; default the engine's).
        PrefillChunk = int.Parse(Arg(args, "--prefill-chunk") ?? DecodeEngine.DefaultPrefillChunkTokens.ToString());
        int decodeTokens = int.Parse(Arg(args, "--decode") ?? "32");
        var types = (Arg(args, "--types") ?? "q4_k_m,q8_0").Split(',');
        string dir = Arg(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "r1sharp-quant-model-bench");
        int rounds = int.Parse(Arg(args, "--rounds") ?? "3");
        // --cpu-clock: rates per second of this process's CPU time (with --threads 1: per core, whatever else runs).
        BenchClock.Cpu = args.Contains("--cpu-clock");
        const int promptTokens = 32, parallel = 16;
        set_num_threads(threads);
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        Console.WriteLine($"threads {threads}, qwen2 1.5b shape (vocab 151936), random weights, {(BenchClock.Cpu ? "CPU clock" : "wall clock")}, load average {load}, prefill chunk {PrefillChunk} positions");
        Directory.CreateDirectory(dir);

        var files = PrepareFiles(dir, types, threads);
        if (args.Contains("--prepare")) return 0; // the files only (made while the machine is busy, timed later)
        var rng = new Random(3);
        int[] Prompt(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(1000, 100000)).ToArray();
        var prefillPrompt = Prompt(prefillTokens);
        var prompts = Enumerable.Range(0, parallel).Select(_ => Prompt(promptTokens)).ToArray();

        // Peak memory first, for every file, before llama.cpp ever maps a file in this process; then the timings, with
        // both engines holding the same file and taking turns, best of the rounds for each (other sessions' load on
        // this shared machine moves from minute to minute, and alternating exposes both engines to it alike).
        // Each file's peak is read in a process of its own (this program, started again with --memory-only for that
        // type): a process's peak RSS only rises, so in one process the second file's reading would start from what
        // the first left behind (freed blocks glibc and the GC keep, libtorch's caches).
        if (args.Contains("--tokenizer-memory"))
        {
            // The tokenizer's own .NET objects, alone: live bytes after full collections, before and after building it.
            long before = GC.GetTotalMemory(true);
            var sw = Stopwatch.StartNew();
            R1Sharp.Text.HfTokenizer tok;
            using (var g = GgufFile.Open(files.Values.First())) tok = GgufVocab.ReadTokenizer(g).Tokenizer;
            double seconds = sw.Elapsed.TotalSeconds;
            long peakHeap = GC.GetGCMemoryInfo().TotalCommittedBytes;
            long after = GC.GetTotalMemory(true);
            Console.WriteLine($"tokenizer from {Path.GetFileName(files.Values.First())}: {(after - before) / 1e6:F1} MB live after a full collection, built in {seconds:F2} s (heap committed {peakHeap / 1e6:F0} MB before collecting); {tok.Encode("Hello, world!").Count} ids");
            GC.KeepAlive(tok);
            return 0;
        }
        if (args.Contains("--memory-only"))
        {
            var measured = files.ToDictionary(f => f.Key, f => MeasureMemory(f.Value, prefillPrompt, prompts, decodeTokens));
            foreach (var m in measured) Console.WriteLine($"{m.Key}: {m.Value}");
            if (Arg(args, "--memory-json") is { } to) File.WriteAllText(to, JsonSerializer.Serialize(measured.Values.Single()));
            return 0;
        }
        var memory = files.ToDictionary(f => f.Key, f => MeasureMemoryInChild(f.Key, dir, threads, prefillTokens, decodeTokens));
        var timings = files.ToDictionary(f => f.Key, f => MeasureSpeed(f.Value, threads, rounds, prefillPrompt, prompts, decodeTokens));

        var results = new List<object>();
        foreach (var (type, path) in files)
        {
            var (m, (o, t, roofline)) = (memory[type], timings[type]);
            long fileBytes = new FileInfo(path).Length;
            Console.WriteLine($"{type}: {fileBytes / 1e6:F0} MB file, {roofline.BytesPerToken / 1e6:F0} MB read per decoded token");
            var rows = new List<object>();
            void Row(string name, double a, double b)
            {
                double ratio = a / b;
                Console.WriteLine($"  {name,-18} R1Sharp {a,8:F1} tok/s   llama.cpp {b,8:F1} tok/s   ratio {ratio,5:F2}   target ≥ 1.0 {(ratio >= 1 ? "MET" : "MISSED")}");
                rows.Add(new { name, r1sharp_tokens_per_s = a, llamacpp_tokens_per_s = b, ratio });
            }
            Row("prefill", o.Prefill, t.Prefill);
            Row("decode batch 1", o.Decode1, t.Decode1);
            Row($"decode {parallel} seqs", o.DecodeN, t.DecodeN);
            Console.WriteLine($"  batch 1 vs roofline: best {roofline.Best:P0} of bandwidth ÷ bytes per token (rounds {string.Join(", ", roofline.Rounds.Select(r => r.ToString("P0")))}; up to {roofline.Bandwidth / 1e9:F1} GB/s)   target ≥ 75% {(roofline.Best >= 0.75 ? "MET" : "MISSED")}");
            double budget = 1.15 * (fileBytes + m.KvBytes);
            Console.WriteLine($"  peak RSS {m.Peak / 1e6:F0} MB vs 1.15 × (file + KV cache {m.KvBytes / 1e6:F0} MB) = {budget / 1e6:F0} MB   {(m.Peak <= budget ? "MET" : "MISSED")}");
            Console.WriteLine($"    before loading {m.Baseline / 1e6:F0} MB; model loaded {m.ModelLoaded / 1e6:F0} MB; with tokenizer {m.Loaded / 1e6:F0} MB; peak after prefill {m.AfterPrefill / 1e6:F0}, batch 1 {m.AfterDecode1 / 1e6:F0}, batch 16 {m.Peak / 1e6:F0} MB; file pages resident {m.FileResident / 1e6:F0} MB");
            results.Add(new
            {
                type, file_bytes = fileBytes, bytes_per_token = roofline.BytesPerToken, results = rows,
                batch1_roofline = new { best = roofline.Best, rounds = roofline.Rounds, bandwidth = roofline.Bandwidth },
                memory = m, rss_budget = budget,
            });
        }
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/quant-model.json", JsonSerializer.Serialize(
            new { threads, load_average = load, load_average_after = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?", rounds, prefill_tokens = prefillTokens, decode_tokens = decodeTokens, files = results },
            new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    sealed record Roofline1(double Best, double[] Rounds, double Bandwidth, long BytesPerToken);
    sealed record Memory(long Baseline, long ModelLoaded, long Loaded, long AfterPrefill, long AfterDecode1, long Peak, long FileResident, long KvBytes);

    /// <summary>The random BF16 file and llama.cpp's quantizations of it, made once in <paramref name="dir"/> and reused.</summary>
    static Dictionary<string, string> PrepareFiles(string dir, string[] types, int threads)
    {
        var files = types.ToDictionary(t => t, t => Path.Combine(dir, $"qwen2-1.5b.{t}.gguf"));
        if (files.Values.All(File.Exists)) return files;
        string source = Path.Combine(dir, "qwen2-1.5b.bf16.gguf");
        var sw = Stopwatch.StartNew();
        if (!File.Exists(source)) WriteRandomGguf(source, (LlamaConfig)ModelPresets.Create("qwen2", "1.5b", 151936));
        Console.WriteLine($"random BF16 file: {new FileInfo(source).Length / 1e9:F2} GB in {sw.Elapsed.TotalSeconds:F0} s");
        LlamaCppRunner.Initialise(); // loads llama.cpp's library before the quantiser's direct P/Invoke needs it
        foreach (var (type, path) in files.Where(f => !File.Exists(f.Value)))
        {
            sw.Restart();
            if (!LLamaQuantizer.Quantize(source, path + ".tmp", type.ToUpperInvariant(), nthread: threads, allowRequantize: false, quantizeOutputTensor: true))
                throw new InvalidOperationException($"llama_model_quantize to {type} failed");
            File.Move(path + ".tmp", path);
            Console.WriteLine($"llama.cpp quantized it to {type}: {new FileInfo(path).Length / 1e9:F2} GB in {sw.Elapsed.TotalSeconds:F0} s");
        }
        File.Delete(source);
        return files;
    }

    /// <summary>A qwen2 GGUF of the configuration's shape: matrices BF16 uniform in ±0.0346 (standard deviation 0.02,
    /// HF's initializer range), norms 1, biases uniform in ±0.02; the tokenizer is Qwen3's, padded to the vocabulary.</summary>
    static void WriteRandomGguf(string path, LlamaConfig cfg)
    {
        var arch = GgufArchitectures.ForModelType(cfg.ModelType);
        var w = new GgufWriter();
        arch.WriteMetadata(w, cfg, GgmlTypeInfo.FileType(GgmlType.BF16));
        GgufVocab.AddTo(w, LlamaCppBench.SharedTokenizer(), cfg.VocabSize, cfg.BosTokenId, cfg.EosTokenIds);
        CausalLM shape;
        using (DeferredWeights.Begin()) shape = ModelRegistry.Get(cfg.ModelType).Build(cfg, ScalarType.Float32);
        using (shape)
        {
            ulong seed = 1;
            foreach (var (name, module) in shape.named_modules())
            {
                (long rows, long cols) = module switch { Linear l => (l.OutFeatures, l.InFeatures), Embedding e => (e.NumEmbeddings, e.EmbeddingDim), _ => (0, 0) };
                if (rows == 0) continue;
                ulong s = seed++;
                w.AddTensor(new GgufTensorSpec(GgufNames.ToGguf(name + ".weight", arch), [cols, rows], GgmlType.BF16, st => WriteRandom(st, rows * cols, s, 0.0346f, bf16: true)));
            }
            foreach (var (name, p) in shape.named_parameters())
            {
                long n = p.numel();
                ulong s = seed++;
                bool norm = name.EndsWith("norm.weight");
                w.AddTensor(new GgufTensorSpec(GgufNames.ToGguf(name, arch), [n], GgmlType.F32, st => WriteRandom(st, n, s, norm ? 0 : 0.02f, bf16: false, offset: norm ? 1 : 0)));
            }
        }
        w.Write(path);
    }

    static void WriteRandom(Stream s, long count, ulong seed, float scale, bool bf16, float offset = 0)
    {
        const int chunk = 1 << 20;
        var values = new float[chunk];
        var bytes = new byte[chunk * (bf16 ? 2 : 4)];
        ulong x = seed * 0x9E3779B97F4A7C15UL + 1;
        for (long done = 0; done < count; done += chunk)
        {
            int n = (int)Math.Min(chunk, count - done);
            for (int i = 0; i < n; i++)
            {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17; // xorshift64
                values[i] = offset + scale * (float)((x >> 40) * (2.0 / (1 << 24)) - 1);
            }
            if (!bf16) { s.Write(MemoryMarshal.AsBytes(values.AsSpan(0, n))); continue; }
            var bits = MemoryMarshal.Cast<float, uint>(values.AsSpan(0, n));
            var dst = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan(0, 2 * n));
            for (int i = 0; i < n; i++) dst[i] = (ushort)(bits[i] >> 16);
            s.Write(bytes, 0, 2 * n);
        }
    }

    /// <summary><see cref="MeasureMemory"/> for one type in a fresh process of this program (same prompts: the same
    /// seeded generator).</summary>
    static int PrefillChunk = DecodeEngine.DefaultPrefillChunkTokens;

    static Memory MeasureMemoryInChild(string type, string dir, int threads, int prefillTokens, int decodeTokens)
    {
        string json = Path.Combine(dir, $"memory-{type}-{Environment.ProcessId}.json");
        var psi = new System.Diagnostics.ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(QuantModelBench).Assembly.Location);
        foreach (var a in new[] { "quant-model", "--memory-only", "--types", type, "--dir", dir, "--threads", threads.ToString(),
                     "--prefill", prefillTokens.ToString(), "--decode", decodeTokens.ToString(), "--memory-json", json,
                     "--prefill-chunk", PrefillChunk.ToString() })
            psi.ArgumentList.Add(a);
        using var child = System.Diagnostics.Process.Start(psi)!;
        if (!child.WaitForExit(TimeSpan.FromMinutes(20))) { child.Kill(true); throw new TimeoutException($"memory phase for {type} took over 20 minutes"); }
        if (child.ExitCode != 0) throw new InvalidOperationException($"memory phase for {type} exited with {child.ExitCode}");
        var m = JsonSerializer.Deserialize<Memory>(File.ReadAllText(json))!;
        File.Delete(json);
        return m;
    }

    /// <summary>R1Sharp's resident memory running the file as `r1 generate --model FILE.gguf` loads it (LocalModel: the
    /// blocks in place, the tokenizer and template from the metadata): one prefill, then decoding at batch 1 and 16.</summary>
    static Memory MeasureMemory(string gguf, int[] prefillPrompt, int[][] prompts, int decodeTokens)
    {
        GC.Collect();
        NativeRuntime.ReleaseFreeMemory();
        ProcessMemory.ResetPeak();
        long baseline = ProcessMemory.Rss, modelLoaded;
        Detail("start", gguf);
        using (var probe = GgufModel.Load(gguf)) { modelLoaded = ProcessMemory.Rss; Detail("model alone", gguf); }
        using var lm = LocalModel.Load(gguf);
        long loaded = ProcessMemory.Rss;
        Detail("model + tokenizer", gguf);
        var engine = new GenerationEngine(lm.Model) { PrefillChunkTokens = PrefillChunk };
        var greedy = new SamplingOptions { Temperature = 0 };
        engine.Generate([prefillPrompt], greedy with { MaxTokens = 1 }, []);
        long afterPrefill = ProcessMemory.PeakRss;
        Detail("after prefill", gguf);
        GenerationBench.DecodeTokensPerSecond(engine, [prompts[0]], decodeTokens);
        long afterDecode1 = ProcessMemory.PeakRss;
        Detail("after batch 1", gguf);
        GenerationBench.DecodeTokensPerSecond(engine, prompts, decodeTokens);
        long peak = ProcessMemory.PeakRss;
        Detail("after batch 16", gguf);
        var c = (LlamaConfig)lm.Model.Config;
        long kvPerPosition = 2L * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * 4;
        long kvBytes = Math.Max(prefillPrompt.Length + 1, prompts.Length * (prompts[0].Length + decodeTokens + 1)) * kvPerPosition;
        return new Memory(baseline, modelLoaded, loaded, afterPrefill, afterDecode1, peak, ProcessMemory.FileRss, kvBytes);
    }

    /// <summary>One line of where resident memory is (stderr): anonymous pages, file pages, of which the GGUF's, and the
    /// .NET heap's committed bytes.</summary>
    static void Detail(string stage, string gguf)
    {
        var gc = GC.GetGCMemoryInfo();
        Console.Error.WriteLine($"    [{stage}] RSS {ProcessMemory.Rss / 1e6:F0} MB (peak {ProcessMemory.PeakRss / 1e6:F0}): anonymous {ProcessMemory.AnonRss / 1e6:F0}, files {ProcessMemory.FileRss / 1e6:F0} of which the GGUF {ProcessMemory.MappedRss(gguf) / 1e6:F0}; .NET heap committed {gc.TotalCommittedBytes / 1e6:F0} MB, live {GC.GetTotalMemory(false) / 1e6:F0} MB");
    }

    /// <summary>R1Sharp and llama.cpp on the same file, taking turns for each workload, best of the rounds; and R1Sharp's
    /// batch-1 decode against the bandwidth read just before and after each round.</summary>
    static (LlamaCppBench.Rates Ours, LlamaCppBench.Rates Theirs, Roofline1 Roofline) MeasureSpeed(string gguf, int threads, int rounds,
        int[] prefillPrompt, int[][] prompts, int decodeTokens)
    {
        using var lm = LocalModel.Load(gguf);
        using var llama = new LlamaCppRunner(gguf, threads, prefillPrompt.Length, prompts.Length, prompts[0].Length + decodeTokens + 1);
        var engine = new GenerationEngine(lm.Model) { PrefillChunkTokens = PrefillChunk };
        var greedy = new SamplingOptions { Temperature = 0 };
        engine.Generate([prompts[0][..8]], greedy with { MaxTokens = 2 }, []); // warm-up
        llama.Prefill(prompts[0][..8]);
        long bytesPerToken;
        using (var g = GgufFile.Open(gguf))
        {
            var embd = g.Tensor("token_embd.weight");
            bytesPerToken = g.Tensors.Sum(t => t.ByteSize) - embd.ByteSize + embd.ByteSize / embd.Dims[1];
        }
        double op = 0, od1 = 0, odn = 0, tp = 0, td1 = 0, tdn = 0, bandwidth = 0;
        var roof = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            double start = BenchClock.Now;
            engine.Generate([prefillPrompt], greedy with { MaxTokens = 1 }, []);
            op = Math.Max(op, prefillPrompt.Length / (BenchClock.Now - start));
            tp = Math.Max(tp, llama.Prefill(prefillPrompt));
            double before = Roofline.MemoryBandwidth(passes: 3);
            double d1 = DecodeRate(engine, [prompts[r % prompts.Length]], decodeTokens);
            double bw = Math.Max(before, Roofline.MemoryBandwidth(passes: 3));
            bandwidth = Math.Max(bandwidth, bw);
            roof.Add(d1 / (bw / bytesPerToken));
            od1 = Math.Max(od1, d1);
            td1 = Math.Max(td1, llama.Decode([prompts[r % prompts.Length]], decodeTokens));
            odn = Math.Max(odn, DecodeRate(engine, prompts, decodeTokens));
            tdn = Math.Max(tdn, llama.Decode(prompts, decodeTokens));
            Console.WriteLine($"  {Path.GetFileName(gguf)} round {r + 1}: prefill {op:F1} / {tp:F1}, batch 1 {d1:F1} / {td1:F1}, batch {prompts.Length} {odn:F1} / {tdn:F1} tok/s (R1Sharp / llama.cpp, best so far); load {File.ReadAllText("/proc/loadavg")[..14]}");
        }
        return (new(op, od1, odn), new(tp, td1, tdn), new Roofline1(roof.Max(), roof.ToArray(), bandwidth, bytesPerToken));
    }

    /// <summary>Decoding tokens/s from the first generated token to the last, on <see cref="BenchClock"/>.</summary>
    static double DecodeRate(GenerationEngine engine, IReadOnlyList<int[]> prompts, int decodeTokens)
    {
        double first = -1, last = 0;
        engine.Generate(prompts, new SamplingOptions { Temperature = 0, MaxTokens = decodeTokens + 1 }, [], (row, _) =>
        {
            if (row == 0) { double now = BenchClock.Now; if (first < 0) first = now; last = now; }
            return false;
        });
        return prompts.Count * decodeTokens / (last - first);
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
