using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Eval;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Text;

namespace R1Sharp.Training;

/// <summary>
/// Rollouts from OpenAI-compatible inference servers (`r1 serve`, SGLang, vLLM) over HTTP: each prompt group is one
/// POST /v1/completions with the prompt as token ids, n = G and seed = the group's first row seed, so a server that
/// seeds choice i with seed + i (r1 serve does) samples exactly what the trainer would have sampled itself. After each
/// update the trainer writes an HF checkpoint under the shared weights folder and POSTs SGLang's
/// /update_weights_from_disk {"model_path", "weight_version"} to every server; each rollout records the version the
/// server says produced it, and a server answering with any other version is an error, not silent off-policy data.
/// Groups go to whichever server has a free request slot, so a mixed fleet shares the work by speed.
/// Transport: System.ClientModel's pipeline (the OpenAI SDK's) configured by <see cref="EndpointPolicy"/>: a few quick
/// retries on 408/429/5xx and network failures (Retry-After honoured), a request timeout without retry, and every
/// failure one line naming the server, the route and the cause. A request waiting long is reported through OnLog.
/// </summary>
public sealed class EndpointRolloutSource : IRolloutSource
{
    readonly Server[] servers;
    readonly ClientPipeline pipeline;
    readonly string weightsDir;
    readonly string? tokenizerDir;
    readonly HfTokenizer tokenizer;
    readonly string? apiKey;
    readonly int concurrency;
    readonly EndpointPolicy policy;
    // Start times (Stopwatch ticks) of the requests in flight, for the log line that shows a long wait.
    readonly ConcurrentDictionary<long, (long Start, string What)> inFlight = new();
    long nextRequest;
    public string WeightVersion { get; private set; } = "";
    /// <summary>Messages for the user: weight hand-overs and retries.</summary>
    public Action<string>? OnLog { get; set; }

    /// <summary>A server by its root URL (ending in "/"); the OpenAI routes are under root/v1/.</summary>
    sealed record Server(Uri Root)
    {
        public string? Model { get; set; }
        public override string ToString() => Root.ToString().TrimEnd('/');
    }

    /// <param name="endpoints">server URLs, with or without the trailing /v1</param>
    /// <param name="weightsDir">a folder every server can read at the same path (shared storage)</param>
    /// <param name="tokenizerDir">tokenizer files copied into each published checkpoint</param>
    /// <param name="tokenizer">decodes nothing; encodes a completion's text when a server does not return token ids</param>
    public EndpointRolloutSource(IReadOnlyList<string> endpoints, string weightsDir, HfTokenizer tokenizer, string? tokenizerDir = null,
        string? apiKey = null, int concurrencyPerServer = 4, EndpointPolicy? policy = null)
    {
        this.policy = policy ?? new EndpointPolicy();
        this.policy.Validate("rollout_request_timeout");
        if (endpoints.Count == 0) throw new R1SharpException("--rollout-endpoints: give at least one server URL");
        if (concurrencyPerServer < 1) throw new R1SharpException($"concurrency per server must be ≥ 1, got {concurrencyPerServer}");
        servers = endpoints.Select(Parse).ToArray();
        this.weightsDir = Path.GetFullPath(weightsDir);
        this.tokenizer = tokenizer; this.tokenizerDir = tokenizerDir; this.apiKey = apiKey; concurrency = concurrencyPerServer;
        pipeline = ClientPipeline.Create(new ClientPipelineOptions
        {
            RetryPolicy = this.policy.CreateRetryPolicy(),
            NetworkTimeout = this.policy.RequestTimeout, // long reasoning rollouts outlast the SDK's 100 s default
        }, ReadOnlySpan<PipelinePolicy>.Empty, ReadOnlySpan<PipelinePolicy>.Empty, ReadOnlySpan<PipelinePolicy>.Empty);
    }

    static Server Parse(string url)
    {
        string u = url.Trim();
        if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            throw new R1SharpException($"--rollout-endpoints {Excerpt.Quote(url)}: expected an http(s) URL such as http://10.0.0.2:8000");
        string path = uri.AbsolutePath.TrimEnd('/');
        if (path.EndsWith("/v1", StringComparison.Ordinal)) path = path[..^3];
        var root = new UriBuilder(uri) { Path = path + "/" }.Uri;
        return new Server(root);
    }

    public IReadOnlyList<RolloutSample> Generate(IReadOnlyList<int[]> prompts, int groupSize, SamplingOptions options, IReadOnlyCollection<int> eosIds) =>
        GenerateAsync(prompts, groupSize, options, eosIds, CancellationToken.None).GetAwaiter().GetResult();

    public async Task<IReadOnlyList<RolloutSample>> GenerateAsync(IReadOnlyList<int[]> prompts, int groupSize, SamplingOptions options,
        IReadOnlyCollection<int> eosIds, CancellationToken cancel)
    {
        if (WeightVersion.Length == 0) throw new InvalidOperationException("publish the policy's weights before the first rollout");
        var results = new RolloutSample[prompts.Count * groupSize];
        var queue = new ConcurrentQueue<int>(Enumerable.Range(0, prompts.Count));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        async Task Worker(Server s)
        {
            while (!stop.IsCancellationRequested && queue.TryDequeue(out int g))
            {
                var group = await CompleteAsync(s, prompts[g], groupSize, options with { Seed = options.Seed + (long)g * groupSize }, eosIds, stop.Token);
                group.CopyTo(results, g * groupSize);
            }
        }
        var workers = servers.SelectMany(s => Enumerable.Range(0, concurrency).Select(_ => Worker(s))).ToArray();
        using var heartbeat = OnLog is null ? null : new Timer(_ => { if (Waiting(TimeSpan.FromSeconds(30)) is { } w) OnLog?.Invoke(w); },
            null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));
        try { await Task.WhenAll(workers); }
        catch
        {
            stop.Cancel();
            // The first real failure, not the cancellations it caused.
            var first = workers.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
            if (first != null) throw first;
            throw;
        }
        return results;
    }

    async Task<RolloutSample[]> CompleteAsync(Server s, int[] prompt, int n, SamplingOptions o, IReadOnlyCollection<int> eosIds, CancellationToken cancel)
    {
        s.Model ??= await ModelNameAsync(s, cancel);
        var body = new JsonObject
        {
            ["model"] = s.Model,
            ["prompt"] = new JsonArray(prompt.Select(t => (JsonNode)t).ToArray()),
            ["n"] = n,
            ["max_tokens"] = o.MaxTokens,
            ["temperature"] = o.Temperature,
            ["top_p"] = o.TopP,
            ["seed"] = o.Seed,
            ["stream"] = false,
            // vLLM's name for "send the sampled token ids back" (r1 serve honours it too): re-encoding the text could
            // give other ids than the ones sampled, and the loss must score exactly what was sampled.
            ["return_token_ids"] = true,
            ["skip_special_tokens"] = false,
        };
        if (o.TopK > 0) body["top_k"] = o.TopK;
        var (json, header) = await SendAsync(s, "v1/completions", body, cancel);
        try { return ReadChoices(s, json, header, n, eosIds); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or OverflowException)
        {
            throw new R1SharpException($"rollout server {s}: POST /v1/completions answered a body that is not a completion ({e.Message}): {Excerpt.Quote(json.ToJsonString())}");
        }
    }

    RolloutSample[] ReadChoices(Server s, JsonObject json, string? header, int n, IReadOnlyCollection<int> eosIds)
    {
        string version = (string?)json["weight_version"] ?? (string?)json["metadata"]?["weight_version"] ?? header ?? WeightVersion;
        if (version != WeightVersion)
            throw new R1SharpException($"rollout server {s} answered with weight version \"{version}\" but the trainer published \"{WeightVersion}\": is another trainer reloading it, or did a reload fail?");
        var choices = json["choices"] as JsonArray ?? throw new R1SharpException($"rollout server {s}: the response has no choices");
        if (choices.Count != n) throw new R1SharpException($"rollout server {s}: asked for n = {n} completions, got {choices.Count}");
        var samples = new RolloutSample[n];
        foreach (var c in choices.OfType<JsonObject>())
        {
            int index = (int?)c["index"] ?? throw new R1SharpException($"rollout server {s}: a choice has no index");
            if (index < 0 || index >= n || samples[index] != null) throw new R1SharpException($"rollout server {s}: choice index {index} is out of range or repeated");
            string finish = (string?)c["finish_reason"] ?? FinishReason.Length;
            int[] ids = c["token_ids"] is JsonArray t ? t.Select(x => (int)(x ?? throw new FormatException("a token id is null"))).ToArray()
                : FromText((string?)c["text"] ?? "", finish, eosIds);
            if (ids.Any(id => id < 0 || id >= tokenizer.VocabSize))
                throw new R1SharpException($"rollout server {s}: choice {index} has token ids outside this tokenizer's vocabulary (0..{tokenizer.VocabSize - 1}): does it serve another model?");
            samples[index] = new RolloutSample(ids, finish == FinishReason.Length, version, s.ToString());
        }
        if (samples.Any(x => x is null)) throw new R1SharpException($"rollout server {s}: a choice is missing or not an object");
        return samples;
    }

    /// <summary>A server that returns only text: its ids are re-encoded, and a completion that stopped on an end token
    /// gets that token back (servers drop it from the text), so the policy still learns to stop.</summary>
    int[] FromText(string text, string finish, IReadOnlyCollection<int> eosIds)
    {
        var ids = tokenizer.Encode(text).ToList();
        if (finish == FinishReason.Stop && eosIds.Count > 0) ids.Add(eosIds.First());
        return ids.ToArray();
    }

    async Task<string> ModelNameAsync(Server s, CancellationToken cancel)
    {
        var (json, _) = await SendAsync(s, "v1/models", null, cancel);
        string? id = json["data"] is JsonArray { Count: > 0 } data && data[0] is JsonObject m && m["id"] is JsonValue v && v.TryGetValue(out string? x) ? x : null;
        return id ?? throw new R1SharpException($"rollout server {s}: GET /v1/models lists no model: {Excerpt.Quote(json.ToJsonString())}");
    }

    /// <summary>What the requests in flight wait for, once the oldest has waited <paramref name="after"/>.</summary>
    string? Waiting(TimeSpan after)
    {
        var snapshot = inFlight.Values.ToArray();
        if (snapshot.Length == 0) return null;
        var oldest = snapshot.MinBy(x => x.Start);
        var waited = Stopwatch.GetElapsedTime(oldest.Start);
        if (waited < after) return null;
        return $"waiting for {oldest.What}: {snapshot.Length} request(s) in flight, the oldest for {waited.TotalSeconds:F0} s (rollout_request_timeout {policy.RequestTimeout.TotalSeconds:0.#} s)";
    }

    /// <summary>Saves the policy as an HF folder under the shared weights folder and has every server load it. Older
    /// versions are deleted once all servers have moved on (the newest two are kept).</summary>
    public void PublishWeights(CausalLM policy, int step)
    {
        string version = IRolloutSource.VersionFor(step);
        string dir = Path.Combine(weightsDir, version);
        ModelFolder.Save(policy, dir, tokenizerDir);
        var acks = servers.Select(async s =>
        {
            var (json, _) = await SendAsync(s, "update_weights_from_disk", new JsonObject { ["model_path"] = dir, ["weight_version"] = version }, CancellationToken.None);
            if (json["success"] is JsonValue ok && ok.GetValueKind() == JsonValueKind.False)
                throw new R1SharpException($"rollout server {s} refused the weights in {dir}: {Excerpt.Quote(Str(json["message"]) ?? "")}");
            string? served = Str(json["weight_version"]);
            if (served != null && served != version)
                throw new R1SharpException($"rollout server {s} reports weight version \"{served}\" after loading \"{version}\"");
        }).ToArray();
        Task.WhenAll(acks).GetAwaiter().GetResult();
        WeightVersion = version;
        OnLog?.Invoke($"weights {version} served by {servers.Length} rollout server(s)");
        foreach (var old in Directory.GetDirectories(weightsDir, "step-*").Where(d => !d.Contains(".tmp-"))
                     .Select(d => (dir: d, step: int.TryParse(Path.GetFileName(d)[5..], out int k) ? k : int.MaxValue))
                     .Where(x => x.step < step - 1))
            try { Directory.Delete(old.dir, true); } catch (IOException) { }
    }

    async Task<(JsonObject Json, string? VersionHeader)> SendAsync(Server s, string path, JsonObject? body, CancellationToken cancel)
    {
        using var message = pipeline.CreateMessage();
        var request = message.Request;
        request.Method = body is null ? "GET" : "POST";
        request.Uri = new Uri(s.Root, path);
        if (!string.IsNullOrEmpty(apiKey)) request.Headers.Set("Authorization", "Bearer " + apiKey);
        if (body != null)
        {
            request.Headers.Set("Content-Type", "application/json");
            request.Content = BinaryContent.Create(BinaryData.FromString(body.ToJsonString()));
        }
        message.Apply(new RequestOptions { CancellationToken = cancel });
        long id = Interlocked.Increment(ref nextRequest);
        inFlight[id] = (Stopwatch.GetTimestamp(), $"rollout server {s} ({request.Method} /{path})");
        try { await pipeline.SendAsync(message); }
        catch (Exception e) when (!cancel.IsCancellationRequested)
        {
            throw new R1SharpException($"rollout server {s}: {request.Method} /{path} failed: {policy.Describe(e)}");
        }
        finally { inFlight.TryRemove(id, out _); }
        var response = message.Response!;
        if (response.IsError)
            throw new R1SharpException($"rollout server {s}: {request.Method} /{path} answered HTTP {response.Status}: {EndpointPolicy.ServerMessage(response)}");
        string text = response.Content.ToString();
        JsonObject? json;
        try { json = JsonNode.Parse(text) as JsonObject; }
        catch (JsonException) { throw new R1SharpException($"rollout server {s}: {request.Method} /{path} answered HTTP {response.Status} with a body that is not JSON: {Excerpt.Quote(text)}"); }
        if (json is null)
            throw new R1SharpException($"rollout server {s}: {request.Method} /{path} answered HTTP {response.Status} with JSON that is not an object: {Excerpt.Quote(text)}");
        response.Headers.TryGetValue("X-Weight-Version", out string? header);
        return (json, header);
    }

    /// <summary>A field as text whatever its JSON type (a version sent as a number still compares as a mismatch).</summary>
    static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? x) ? x : n?.ToJsonString();

    public void Dispose() { }
}
