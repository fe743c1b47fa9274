using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Serving;
using R1Sharp.Text;

namespace R1Sharp.Bench;

/// <summary>
/// Load test of `r1 serve` on a tiny random model: C concurrent streaming clients (the OpenAI SDK over loopback)
/// share a fixed number of requests. Reports throughput next to the in-process batched engine doing the same token
/// work without HTTP (the ratio is what serving costs), p50/p99 time to first token and per-token latency, errors, and
/// resident memory at the end against its value after warm-up (a leak shows as growth).
/// </summary>
public static class ServeBench
{
    public static int Run(string[] args)
    {
        int clients = int.Parse(Arg(args, "--clients") ?? "32");
        int requests = int.Parse(Arg(args, "--requests") ?? "256");
        int maxTokens = int.Parse(Arg(args, "--max-tokens") ?? "32");
        // Plain sampling by default: top-p on a random model's flat distribution takes the sampler's full-vocabulary
        // path (GUIDE.md), which would measure the sampler rather than the server.
        float temperature = float.Parse(Arg(args, "--temperature") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        float topP = float.Parse(Arg(args, "--top-p") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        string tokenizerDir = Arg(args, "--tokenizer") ?? FindQwen3Tokenizer();
        string dir = Path.Combine(Path.GetTempPath(), "r1-servebench-" + Guid.NewGuid().ToString("N")[..8]);
        try { return RunIn(dir, tokenizerDir, clients, requests, new SamplingOptions { Temperature = temperature, TopP = topP, MaxTokens = maxTokens, Seed = 1 }).GetAwaiter().GetResult(); }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    static async Task<int> RunIn(string dir, string tokenizerDir, int clients, int requests, SamplingOptions sampling)
    {
        int maxTokens = sampling.MaxTokens;
        var tok = HfTokenizer.FromFolder(tokenizerDir);
        var cfg = ModelPresets.Create("qwen2", "tiny", tok.VocabSize, eosTokenIds: [tok.EosTokenId!.Value]);
        using (var m = CausalLM.Create(cfg)) { m.InitializeRandom(1, std: 0.5); ModelFolder.Save(m, dir, tokenizerDir); }
        var options = new ServeOptions { Port = 0, MaxBatch = clients, MaxQueue = clients * 2, MaxContext = 256 };
        await using var server = OpenAiServer.FromFolder(dir, options);
        var uri = await server.StartAsync();
        Console.WriteLine($"r1 serve on {uri}: qwen2 tiny (vocab {cfg.VocabSize}), max batch {clients}; {clients} streaming clients, {requests} requests of {maxTokens} tokens, temperature {sampling.Temperature}, top-p {sampling.TopP}");
        var chat = new ChatClient(server.Model.Name, new ApiKeyCredential("bench"), new OpenAIClientOptions
        {
            Endpoint = new Uri(uri, "v1"), RetryPolicy = new ClientRetryPolicy(0), NetworkTimeout = TimeSpan.FromMinutes(5),
        });

        await Drive(chat, clients, clients, sampling); // warm-up: every slot used once, JIT and allocator settled
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long warmRss = ProcessMemory.Rss;
        var sw = Stopwatch.StartNew();
        var runs = await Drive(chat, clients, requests, sampling);
        double seconds = sw.Elapsed.TotalSeconds;
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long endRss = ProcessMemory.Rss;

        var ok = runs.Where(r => r.Error == null).ToArray();
        int errors = runs.Length - ok.Length;
        long tokens = ok.Sum(r => (long)r.Tokens);
        double[] ttft = ok.Select(r => r.Ttft).Order().ToArray();
        double[] perToken = ok.Where(r => r.Tokens > 1).Select(r => (r.Total - r.Ttft) / (r.Tokens - 1)).Order().ToArray();
        double engineTokS = EngineThroughput(dir, tok, clients, sampling);
        double serverTokS = tokens / seconds;
        double rssGrowth = (double)(endRss - warmRss) / warmRss;

        Console.WriteLine($"throughput   {serverTokS,8:F1} tok/s, {ok.Length / seconds:F2} req/s   in-process engine (batch {clients}, no HTTP) {engineTokS:F1} tok/s   ratio {serverTokS / engineTokS:P0}");
        Console.WriteLine($"TTFT         p50 {Pct(ttft, 50) * 1000,7:F1} ms   p99 {Pct(ttft, 99) * 1000,7:F1} ms");
        Console.WriteLine($"per token    p50 {Pct(perToken, 50) * 1000,7:F1} ms   p99 {Pct(perToken, 99) * 1000,7:F1} ms");
        Console.WriteLine($"errors       {errors} of {runs.Length}   target 0 {(errors == 0 ? "MET" : "MISSED")}{(errors > 0 ? "  first: " + runs.First(r => r.Error != null).Error : "")}");
        Console.WriteLine($"memory       RSS after warm-up {warmRss / 1e6:F0} MB, at end {endRss / 1e6:F0} MB, growth {rssGrowth:P1}   target ≤ 10% {(Math.Abs(rssGrowth) <= 0.10 ? "MET" : "MISSED")}");
        var json = new
        {
            clients, requests, max_tokens = maxTokens, temperature = sampling.Temperature, top_p = sampling.TopP, seconds, completion_tokens = tokens, tokens_per_s = serverTokS,
            engine_tokens_per_s = engineTokS, ratio_to_engine = serverTokS / engineTokS, requests_per_s = ok.Length / seconds,
            ttft_p50_s = Pct(ttft, 50), ttft_p99_s = Pct(ttft, 99), per_token_p50_s = Pct(perToken, 50), per_token_p99_s = Pct(perToken, 99),
            errors, rss_after_warmup = warmRss, rss_end = endRss, rss_growth = rssGrowth,
        };
        Directory.CreateDirectory("bench/results");
        File.WriteAllText("bench/results/serve-tiny.json", JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        return errors == 0 ? 0 : 1;
    }

    sealed record RequestRun(double Ttft, double Total, int Tokens, string? Error);

    /// <summary>clients tasks take requests from a shared counter until `requests` have been sent.</summary>
    static async Task<RequestRun[]> Drive(ChatClient chat, int clients, int requests, SamplingOptions sampling)
    {
        int next = -1;
        var runs = new RequestRun[requests];
        string[] questions = ["What is 2 + 2?", "Write a haiku about the sea.", "Explain recursion briefly.", "List three prime numbers."];
        async Task Client()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests)
            {
                var opts = new ChatCompletionOptions { Temperature = sampling.Temperature, TopP = sampling.TopP, MaxOutputTokenCount = sampling.MaxTokens };
                var sw = Stopwatch.StartNew();
                double ttft = -1;
                int tokens = 0;
                try
                {
                    await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage(questions[i % questions.Length])], opts))
                    {
                        if (ttft < 0 && u.ContentUpdate.Any(p => p.Text.Length > 0)) ttft = sw.Elapsed.TotalSeconds;
                        if (u.Usage != null) tokens = u.Usage.OutputTokenCount;
                    }
                    runs[i] = new RequestRun(ttft < 0 ? sw.Elapsed.TotalSeconds : ttft, sw.Elapsed.TotalSeconds, tokens, tokens == 0 ? "no usage chunk" : null);
                }
                catch (Exception e) { runs[i] = new RequestRun(0, sw.Elapsed.TotalSeconds, 0, e.Message); }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(Client)));
        return runs;
    }

    /// <summary>The same token work in process: one batch of `clients` prompts through the batched engine.</summary>
    static double EngineThroughput(string dir, HfTokenizer tok, int batch, SamplingOptions opts)
    {
        using var model = ModelFolder.Load(dir);
        var gen = new TextGenerator(model, tok, [tok.EosTokenId!.Value]);
        var prompts = Enumerable.Range(0, batch).Select(i => $"<|im_start|>user\nQuestion {i}?<|im_end|>\n<|im_start|>assistant\n").ToArray();
        gen.Generate(prompts, opts with { MaxTokens = 2 });
        var sw = Stopwatch.StartNew();
        var results = gen.Generate(prompts, opts);
        return results.Sum(r => r.TokenIds.Length) / sw.Elapsed.TotalSeconds;
    }

    static double Pct(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];

    static string FindQwen3Tokenizer()
    {
        var env = Environment.GetEnvironmentVariable("R1SHARP_SHARED");
        if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "tokenizers", "qwen3");
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string c = Path.Combine(d.FullName, "shared", "tokenizers", "qwen3");
            if (File.Exists(Path.Combine(c, "tokenizer.json"))) return c;
        }
        throw new R1SharpException("cannot find shared/tokenizers/qwen3 (pass --tokenizer DIR or set R1SHARP_SHARED)");
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
