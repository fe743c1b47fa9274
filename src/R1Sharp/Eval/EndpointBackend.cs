using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using R1Sharp.Text;

namespace R1Sharp.Eval;

/// <summary>
/// Samples from any OpenAI-compatible chat endpoint (r1 serve, vLLM, SGLang, DeepSeek's API) through the official
/// OpenAI .NET SDK's pipeline. At most <c>concurrency</c> requests are in flight. Retries and the request timeout are
/// the SDK's own pipeline policies, configured by <see cref="EndpointPolicy"/>: a few quick retries on network errors
/// and 408/429/5xx, none after a timeout. The body is sent and read as JSON by us (the SDK's protocol method), so an
/// answer that is not a chat completion is an error naming the endpoint rather than an empty sample graded wrong.
/// Each sample is its own request (n=1) with its own seed, so a resumed run asks for exactly the missing samples. The
/// server renders the chat template, so whether the assistant turn opens with &lt;think&gt; is the server's choice.
/// </summary>
public sealed class EndpointBackend : IEvalBackend
{
    readonly ChatClient client;
    readonly int concurrency;
    readonly EndpointPolicy policy;
    // Start times (Stopwatch ticks) of the requests in flight, for the progress line that shows a long wait.
    readonly ConcurrentDictionary<long, long> inFlight = new();
    long nextRequest;
    public string ModelName { get; }
    public Uri Endpoint { get; }

    /// <param name="endpoint">base URL; a bare host (no path) gets "/v1" appended, as servers mount the API there</param>
    /// <param name="apiKey">bearer token; servers without authentication accept any</param>
    public EndpointBackend(string endpoint, string modelName, string? apiKey = null, int concurrency = 8, EndpointPolicy? policy = null)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            throw new R1SharpException($"--endpoint {Excerpt.Quote(endpoint)}: expected an http(s) URL such as http://127.0.0.1:8000/v1");
        if (uri.AbsolutePath is "" or "/") uri = new Uri(uri, "/v1");
        if (concurrency < 1) throw new R1SharpException($"concurrency must be ≥ 1, got {concurrency}");
        this.policy = policy ?? new EndpointPolicy();
        this.policy.Validate("--request-timeout");
        Endpoint = uri;
        ModelName = modelName;
        this.concurrency = concurrency;
        client = new ChatClient(modelName, new ApiKeyCredential(string.IsNullOrEmpty(apiKey) ? "none" : apiKey), new OpenAIClientOptions
        {
            Endpoint = uri,
            RetryPolicy = this.policy.CreateRetryPolicy(),
            NetworkTimeout = this.policy.RequestTimeout,
        });
    }

    /// <summary>What the requests in flight are waiting for, once the oldest has waited <paramref name="after"/>;
    /// null while answers come in time.</summary>
    public string? Waiting(TimeSpan after)
    {
        if (inFlight.IsEmpty) return null;
        var oldest = Stopwatch.GetElapsedTime(inFlight.Values.DefaultIfEmpty(Stopwatch.GetTimestamp()).Min());
        if (oldest < after) return null;
        return $"waiting for {Endpoint}: {inFlight.Count} request(s) in flight, the oldest for {oldest.TotalSeconds:F0} s (request timeout {policy.RequestTimeout.TotalSeconds:0.#} s)";
    }

    public async Task RunAsync(IReadOnlyList<SampleJob> jobs, EvalSettings settings, Action<SampleJob, BackendCompletion> onCompletion, CancellationToken cancel)
    {
        using var gate = new SemaphoreSlim(concurrency);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var tasks = jobs.Select(async job =>
        {
            await gate.WaitAsync(stop.Token);
            try { onCompletion(job, await CompleteAsync(job, settings, stop.Token)); }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                stop.Cancel(); // one hard failure stops the rest; finished samples are kept
                // Described here, where a timeout (an OperationCanceledException too) is still told from the stop it causes.
                throw Describe(e);
            }
            finally { gate.Release(); }
        }).ToArray();
        try { await Task.WhenAll(tasks); }
        catch (Exception e) when (!cancel.IsCancellationRequested)
        {
            // Report the failure that stopped the rest, described where it happened, not what the stop did to the
            // others: a request stopped mid-retry fails with its tries' exceptions, the last a cancellation, which
            // alone would read as a timeout (seen under load: "no answer within 600 s" after one second).
            var faults = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).ToList();
            if (faults.OfType<R1SharpException>().FirstOrDefault() is { } cause)
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
            if (faults.FirstOrDefault(f => f is not OperationCanceledException) is { } first) throw Describe(first);
            if (e is OperationCanceledException) throw;
            throw Describe(e);
        }
    }

    async Task<BackendCompletion> CompleteAsync(SampleJob job, EvalSettings settings, CancellationToken cancel)
    {
        var body = new JsonObject
        {
            ["model"] = ModelName,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = job.UserTurn }),
            ["temperature"] = settings.Temperature,
            ["top_p"] = settings.TopP,
            ["seed"] = job.Seed,
        };
        // No budget given: the server's default, which for vLLM, SGLang and r1 serve is what the context leaves.
        if (settings.MaxTokens is int max) body["max_completion_tokens"] = max;
        long id = Interlocked.Increment(ref nextRequest);
        inFlight[id] = Stopwatch.GetTimestamp();
        ClientResult result;
        try { result = await client.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(body.ToJsonString())), new RequestOptions { CancellationToken = cancel }); }
        finally { inFlight.TryRemove(id, out _); }
        return Parse(result.GetRawResponse().Content.ToString());
    }

    /// <summary>The first choice of a chat completion; any other shape is the endpoint's error, named.</summary>
    BackendCompletion Parse(string text)
    {
        JsonNode? json;
        try { json = JsonNode.Parse(text); }
        catch (JsonException) { throw new R1SharpException($"endpoint {Endpoint}: answered HTTP 200 with a body that is not JSON: {Excerpt.Quote(text)}"); }
        try
        {
            var choice = json?["choices"] is JsonArray { Count: > 0 } choices ? choices[0] as JsonObject : null;
            var message = choice?["message"] as JsonObject
                ?? throw new R1SharpException($"endpoint {Endpoint}: the answer is not a chat completion (no choices[0].message): {Excerpt.Quote(text)}");
            string content = message["content"] is null ? "" : message["content"]!.GetValue<string>();
            // reasoning_content (DeepSeek, r1 serve, SGLang) or reasoning (newer vLLM)
            string? reasoning = (message["reasoning_content"] ?? message["reasoning"])?.GetValue<string>();
            string finish = choice!["finish_reason"]?.GetValue<string>() ?? "stop";
            int tokens = json!["usage"]?["completion_tokens"]?.GetValue<int>() ?? 0;
            return Split(content, reasoning, finish, tokens);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            throw new R1SharpException($"endpoint {Endpoint}: the answer is not a chat completion ({e.Message}): {Excerpt.Quote(text)}");
        }
    }

    /// <summary>The answer to grade. A server that splits reasoning out (reasoning_content) leaves the answer in content;
    /// one that does not leaves "…&lt;/think&gt;answer" (template opened the tag) or "&lt;think&gt;…&lt;/think&gt;answer" in
    /// content, which we split the way the server would have.</summary>
    public static BackendCompletion Split(string content, string? reasoning, string finishReason, int tokens)
    {
        if (reasoning is not null || !content.Contains(ReasoningSplit.Close, StringComparison.Ordinal))
            return new BackendCompletion(content, reasoning, content, finishReason, tokens);
        bool opened = content.TrimStart().StartsWith(ReasoningSplit.Open, StringComparison.Ordinal);
        var split = ReasoningSplit.Split(content, startsInsideThink: !opened);
        return new BackendCompletion(content, split.Reasoning, split.Answer, finishReason, tokens);
    }

    Exception Describe(Exception e) => e is R1SharpException ? e : new R1SharpException($"endpoint {Endpoint}: {policy.Describe(e)}");

    public void Dispose() { }
}
