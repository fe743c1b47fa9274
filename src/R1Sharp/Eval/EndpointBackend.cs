#pragma warning disable OPENAI001 // ChatCompletionOptions.Seed is marked experimental in the SDK
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using R1Sharp.Text;

namespace R1Sharp.Eval;

/// <summary>
/// Samples from any OpenAI-compatible chat endpoint (r1 serve, vLLM, SGLang, DeepSeek's API) through the official
/// OpenAI .NET SDK. At most <c>concurrency</c> requests are in flight. Retries are the SDK's own pipeline policy,
/// given more attempts: exponential backoff with jitter, honouring Retry-After, on 408/429/500/502/503/504 and on
/// network errors and timeouts. Each sample is its own request (n=1) with its own seed, so a resumed run asks for
/// exactly the missing samples. The server renders the chat template, so whether the assistant turn opens with
/// &lt;think&gt; is the server's choice (R1 servers do).
/// </summary>
public sealed class EndpointBackend : IEvalBackend
{
    readonly ChatClient client;
    readonly int concurrency;
    public string ModelName { get; }
    public Uri Endpoint { get; }

    /// <param name="endpoint">base URL; a bare host (no path) gets "/v1" appended, as servers mount the API there</param>
    /// <param name="apiKey">bearer token; servers without authentication accept any</param>
    public EndpointBackend(string endpoint, string modelName, string? apiKey = null, int concurrency = 8, int maxRetries = 6, TimeSpan? timeout = null)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            throw new R1SharpException($"--endpoint \"{endpoint}\": expected an http(s) URL such as http://127.0.0.1:8000/v1");
        if (uri.AbsolutePath is "" or "/") uri = new Uri(uri, "/v1");
        if (concurrency < 1) throw new R1SharpException($"concurrency must be ≥ 1, got {concurrency}");
        Endpoint = uri;
        ModelName = modelName;
        this.concurrency = concurrency;
        client = new ChatClient(modelName, new ApiKeyCredential(string.IsNullOrEmpty(apiKey) ? "none" : apiKey), new OpenAIClientOptions
        {
            Endpoint = uri,
            RetryPolicy = new ClientRetryPolicy(maxRetries),
            // A reasoning model may think for many minutes; the SDK's 100 s default would cut long samples off.
            NetworkTimeout = timeout ?? TimeSpan.FromMinutes(30),
        });
    }

    public async Task RunAsync(IReadOnlyList<SampleJob> jobs, EvalSettings settings, Action<SampleJob, BackendCompletion> onCompletion, CancellationToken cancel)
    {
        using var gate = new SemaphoreSlim(concurrency);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var tasks = jobs.Select(async job =>
        {
            await gate.WaitAsync(stop.Token);
            try { onCompletion(job, await CompleteAsync(job, settings, stop.Token)); }
            catch when (!stop.IsCancellationRequested) { stop.Cancel(); throw; } // one hard failure stops the rest; finished samples are kept
            finally { gate.Release(); }
        }).ToArray();
        try { await Task.WhenAll(tasks); }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            // Report the failure that caused the cancellation, not the cancellations it caused.
            var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
            if (first != null) throw Describe(first);
            throw;
        }
        catch (Exception e) when (e is not OperationCanceledException && e is not R1SharpException) { throw Describe(e); }
    }

    async Task<BackendCompletion> CompleteAsync(SampleJob job, EvalSettings settings, CancellationToken cancel)
    {
        var options = new ChatCompletionOptions
        {
            Temperature = settings.Temperature,
            TopP = settings.TopP,
            MaxOutputTokenCount = settings.MaxTokens,
            Seed = job.Seed,
        };
        var result = await client.CompleteChatAsync([new UserChatMessage(job.UserTurn)], options, cancel);
        var c = result.Value;
        string content = string.Concat(c.Content.Select(p => p.Text));
        string? reasoning = ReasoningField(result.GetRawResponse().Content.ToString());
        return Split(content, reasoning, FinishReason(c.FinishReason), c.Usage?.OutputTokenCount ?? 0);
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

    /// <summary>reasoning_content (DeepSeek, r1 serve, SGLang) or reasoning (newer vLLM) of the first choice.</summary>
    static string? ReasoningField(string rawJson)
    {
        try
        {
            var message = JsonNode.Parse(rawJson)?["choices"]?[0]?["message"];
            return (string?)message?["reasoning_content"] ?? (string?)message?["reasoning"];
        }
        catch (Exception) { return null; }
    }

    static string FinishReason(ChatFinishReason r) => r switch
    {
        ChatFinishReason.Stop => "stop",
        ChatFinishReason.Length => "length",
        ChatFinishReason.ContentFilter => "content_filter",
        _ => r.ToString().ToLowerInvariant(),
    };

    Exception Describe(Exception e) => e switch
    {
        ClientResultException c => new R1SharpException($"endpoint {Endpoint}: HTTP {c.Status}: {c.Message.Split('\n')[0]}"),
        HttpRequestException or IOException or TaskCanceledException => new R1SharpException($"endpoint {Endpoint}: {e.Message}"),
        _ => e,
    };

    public void Dispose() { }
}
