using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Serving;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Serving;

/// <summary>Builds tiny model folders and servers on free loopback ports, and talks to them with the official OpenAI
/// SDK (retries off, so a 429 is seen as it is) or raw HTTP where the SDK has no API (completions, raw SSE).</summary>
public static class ServingTestKit
{
    public static string Qwen3Tokenizer => SharedData.Path("tokenizers", "qwen3");
    static readonly Lazy<HfTokenizer> tokenizer = new(() => HfTokenizer.FromFolder(Qwen3Tokenizer)); // thread-safe, loaded once

    /// <summary>A random qwen2-tiny folder with the Qwen3 tokenizer and chat template. A large init std makes greedy
    /// choices confident, so batched and unbatched runs agree exactly.</summary>
    public static string TinyFolder(TempDir dir, string name, long seed)
    {
        var tok = tokenizer.Value;
        var cfg = ModelPresets.Create("qwen2", "tiny", tok.VocabSize, eosTokenIds: [tok.EosTokenId!.Value]);
        using var m = CausalLM.Create(cfg);
        m.InitializeRandom(seed, std: 0.5);
        string path = System.IO.Path.Combine(dir.Path, name);
        ModelFolder.Save(m, path, Qwen3Tokenizer);
        return path;
    }

    public static async Task<OpenAiServer> Start(OpenAiServer server)
    {
        await server.StartAsync();
        return server;
    }

    public static ServeOptions Options(int maxBatch = 4, int maxQueue = 8, int context = 256, string? apiKey = null) =>
        new() { Port = 0, MaxBatch = maxBatch, MaxQueue = maxQueue, MaxContext = context, ApiKey = apiKey };

    public static ChatClient Chat(OpenAiServer server, string key = "unused") =>
        new(server.Model.Name, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(server.BaseAddress!, "v1"),
            RetryPolicy = new ClientRetryPolicy(0),
            NetworkTimeout = TimeSpan.FromSeconds(60),
            Transport = HangUpTransport,
        });

    /// <summary>A client that hangs up when it stops reading a response. The default handler instead drains up to
    /// 1 MB of the rest for 2 s to reuse the connection, so a streaming client that breaks out of its loop stays
    /// connected (a server test once saw 128 tokens pass after the "hang-up").</summary>
    static readonly HttpClientPipelineTransport HangUpTransport = new(new HttpClient(new SocketsHttpHandler
    {
        MaxResponseDrainSize = 0,
        ResponseDrainTimeout = TimeSpan.Zero,
    }) { Timeout = Timeout.InfiniteTimeSpan });

    public static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public static async Task<(int Status, JsonObject Body)> Post(OpenAiServer server, string path, string json, string? key = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress!, path)) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        // A large body waits for "100 Continue", as curl sends one: a server that refuses it (413) answers before the
        // body is sent, instead of closing the connection under a client still writing it (a broken pipe here).
        if (json.Length > 64 << 10) req.Headers.ExpectContinue = true;
        using var rsp = await Http.SendAsync(req);
        return ((int)rsp.StatusCode, (JsonObject)JsonNode.Parse(await rsp.Content.ReadAsStringAsync())!);
    }

    public static async Task<JsonObject> Get(OpenAiServer server, string path) =>
        (JsonObject)JsonNode.Parse(await Http.GetStringAsync(new Uri(server.BaseAddress!, path)))!;

    /// <summary>Reads a whole SSE stream: the data payloads before [DONE] (which must come last).</summary>
    public static async Task<List<JsonObject>> Sse(OpenAiServer server, string path, string json)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(server.BaseAddress!, path)) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var rsp = await Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", rsp.Content.Headers.ContentType?.MediaType);
        var chunks = new List<JsonObject>();
        bool done = false;
        foreach (var line in (await rsp.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (!line.StartsWith("data: ")) { Assert.True(line.Length == 0, $"unexpected SSE line: {line}"); continue; }
            Assert.False(done, "data after [DONE]");
            string data = line[6..];
            if (data == "[DONE]") done = true;
            else chunks.Add((JsonObject)JsonNode.Parse(data)!);
        }
        Assert.True(done, "stream did not end with [DONE]");
        return chunks;
    }

    /// <summary>Waits (bounded) until /health satisfies a condition.</summary>
    public static async Task<JsonObject> WaitHealth(OpenAiServer server, Func<JsonObject, bool> ok, double seconds = 10)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var h = await Get(server, "/health");
            if (ok(h)) return h;
            if (DateTime.UtcNow > until) throw new TimeoutException($"health never matched: {h.ToJsonString()}");
            await Task.Delay(20);
        }
    }

    /// <summary>A model folder loaded for in-process reference runs, sharing the kit's tokenizer (loading the 150k
    /// Qwen3 vocabulary once per test run keeps the suite quick).</summary>
    public static (CausalLM Model, TextGenerator Generator) Reference(string folder)
    {
        var m = ModelFolder.Load(folder);
        var tok = tokenizer.Value;
        return (m, new TextGenerator(m, tok, [tok.EosTokenId!.Value]));
    }

    /// <summary>The greedy reply of an in-process model to one user message, rendered with the Qwen3 template.</summary>
    public static TextCompletion GreedyReply(TextGenerator gen, string question, int maxTokens, IReadOnlyList<string>? stop = null)
    {
        var template = ChatTemplate.FromTokenizerConfig(System.IO.Path.Combine(Qwen3Tokenizer, "tokenizer_config.json"));
        string prompt = template.Render([new R1Sharp.Text.ChatMessage("user", question)], addGenerationPrompt: true);
        return gen.Generate([prompt], new SamplingOptions { Temperature = 0, MaxTokens = maxTokens, Stop = stop ?? [] })[0];
    }

    public static ServedModel Served(string name, ChatTemplate? template = null)
    {
        var tok = tokenizer.Value;
        template ??= ChatTemplate.FromTokenizerConfig(System.IO.Path.Combine(Qwen3Tokenizer, "tokenizer_config.json"));
        return new ServedModel(name, tok, template, new HashSet<int> { tok.EosTokenId!.Value }, new SamplingOptions());
    }
}

/// <summary>
/// A stand-in model whose every slot emits a fixed token script, then the end token: a random tiny model never
/// writes &lt;think&gt; blocks, so this is how the reasoning split is exercised end to end through HTTP and the SDK.
/// A step delay makes long-running requests cheap (queue, disconnect) without burning the shared CPU.
/// </summary>
public sealed class ScriptedBackend(int slots, int capacity, int vocab, int[] script, int eos, int stepDelayMs = 0) : IDecodeBackend
{
    readonly int[] emitted = new int[slots];
    readonly int[] lengths = new int[slots];
    public int Slots => slots;
    public int Capacity => capacity;
    public int RowLength(int slot) => lengths[slot];
    public int Swaps { get; private set; }

    public Tensor Step(IReadOnlyList<int[]?> feeds)
    {
        if (stepDelayMs > 0) Thread.Sleep(stepDelayMs);
        var rows = new List<float[]>();
        for (int r = 0; r < slots; r++)
        {
            if (feeds[r] is not { } f) continue;
            lengths[r] += f.Length;
            var row = new float[vocab];
            int k = emitted[r]++;
            row[k < script.Length ? script[k] : eos] = 1e4f;
            rows.Add(row);
        }
        return tensor(rows.SelectMany(x => x).ToArray(), [rows.Count, vocab]);
    }

    public void Release(int slot) { emitted[slot] = 0; lengths[slot] = 0; }
    public IDisposable PrepareWeights(string modelPath) => new MemoryStream();
    public void SwapWeights(IDisposable prepared) { prepared.Dispose(); Swaps++; }
    public void Dispose() { }
}

/// <summary>A real model slowed down per step, so a weight reload reliably lands in the middle of a stream.</summary>
public sealed class SlowBackend(IDecodeBackend inner, int delayMs) : IDecodeBackend
{
    public int Slots => inner.Slots;
    public int Capacity => inner.Capacity;
    public int RowLength(int slot) => inner.RowLength(slot);
    public Tensor Step(IReadOnlyList<int[]?> feeds) { Thread.Sleep(delayMs); return inner.Step(feeds); }
    public void Release(int slot) => inner.Release(slot);
    public IDisposable PrepareWeights(string modelPath) => inner.PrepareWeights(modelPath);
    public void SwapWeights(IDisposable prepared) => inner.SwapWeights(prepared);
    public void Dispose() => inner.Dispose();
}
