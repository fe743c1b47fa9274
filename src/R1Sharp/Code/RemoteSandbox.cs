using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace R1Sharp.Code;

/// <summary>Settings of a sandbox service client (recipe keys sandbox_endpoint, sandbox_concurrency, …).</summary>
public sealed record RemoteSandboxOptions
{
    public required string Endpoint { get; init; }
    /// <summary>Requests in flight at once.</summary>
    public int Concurrency { get; init; } = 8;
    public SandboxLimits Limits { get; init; } = new();
    /// <summary>Retries after the first try, on transport errors, timeouts, 408/429/5xx and the service's own internal
    /// errors; never on a program's verdict.</summary>
    public int MaxRetries { get; init; } = 3;
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>How long one request may take beyond the program's own wall limit (compilation, queueing).</summary>
    public TimeSpan RequestSlack { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Our language names → the service's (Piston: python, csharp…; SandboxFusion: python, csharp…).</summary>
    public IReadOnlyDictionary<string, string>? LanguageNames { get; init; }

    public void Validate(string source)
    {
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https"))
            throw new R1SharpException($"{source}: sandbox_endpoint {Excerpt.Quote(Endpoint)} is not an http(s) URL");
        if (Concurrency < 1) throw new R1SharpException($"{source}: sandbox concurrency must be ≥ 1, got {Concurrency}");
        if (MaxRetries < 0) throw new R1SharpException($"{source}: retries must be ≥ 0, got {MaxRetries}");
        Limits.Validate(source);
    }
}

/// <summary>
/// What the Piston and SandboxFusion clients share: at most <see cref="Concurrency"/> requests in flight, one JSON POST
/// per run with a timeout of the program's wall limit plus slack, retries with exponential backoff on transport errors,
/// timeouts, 408/429/5xx and answers the service marks as its own failure — never on a program's verdict, which is the
/// answer — and, after the last retry, one error naming the endpoint and the cause. A program for a service is one
/// file: the harness is appended to the solution (C#: its usings hoisted to the top and DEBUG defined there, so that
/// Debug.Assert counts whatever flags the service compiles with).
/// </summary>
public abstract class RemoteSandbox : ICodeExecutor
{
    readonly HttpClient http;
    readonly SemaphoreSlim gate;
    public RemoteSandboxOptions Options { get; }
    public Uri Url { get; }
    public string Name => Url.ToString();
    public int Concurrency => Options.Concurrency;

    protected RemoteSandbox(RemoteSandboxOptions options, string path, HttpMessageHandler? handler = null)
    {
        options.Validate("sandbox");
        Options = options;
        var root = new Uri(options.Endpoint.TrimEnd('/') + "/");
        Url = new Uri(root, path);
        http = handler is null ? new HttpClient() : new HttpClient(handler);
        http.Timeout = Timeout.InfiniteTimeSpan; // per request, below
        gate = new SemaphoreSlim(options.Concurrency);
    }

    /// <summary>Languages the service is asked for: python, csharp, and those named in LanguageNames.</summary>
    public bool Supports(string language)
    {
        string l = CodeRows.Canonical(language);
        return l is CodeLanguage.Python or CodeLanguage.CSharp || (Options.LanguageNames?.ContainsKey(l) ?? false);
    }

    protected string ServiceLanguage(string language, Func<string, string?> builtIn)
    {
        string l = CodeRows.Canonical(language);
        if (Options.LanguageNames?.TryGetValue(l, out var named) == true) return named;
        return builtIn(l) ?? throw new R1SharpException($"language \"{language}\" is not supported by {Name} (add it to sandbox_languages with the service's name for it)");
    }

    /// <summary>The one source file a service runs.</summary>
    public static string SingleFile(CodeRun run)
    {
        if (run.Harness is null) return CodeRows.Canonical(run.Language) == CodeLanguage.CSharp ? "#define DEBUG\n" + run.Source : run.Source;
        if (CodeRows.Canonical(run.Language) != CodeLanguage.CSharp) return run.Source + "\n" + run.Harness;
        var usings = new StringBuilder("#define DEBUG\n");
        var rest = new StringBuilder();
        foreach (var part in new[] { run.Source, run.Harness })
            foreach (var line in part.Split('\n'))
            {
                if (line.TrimStart().StartsWith("using ", StringComparison.Ordinal) && line.TrimEnd().EndsWith(';') && !line.Contains('(')) usings.Append(line).Append('\n');
                else rest.Append(line).Append('\n');
            }
        return usings.ToString() + rest;
    }

    public async Task<RunResult> RunAsync(CodeRun run, CancellationToken cancel = default)
    {
        var limits = run.Limits ?? Options.Limits;
        var body = Request(run, limits); // an unsupported language fails here, before any request
        await gate.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            var timeout = TimeSpan.FromSeconds(limits.WallSeconds) + Options.RequestSlack;
            for (int attempt = 0; ; attempt++)
            {
                string? failure;
                try
                {
                    using var attemptCancel = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                    attemptCancel.CancelAfter(timeout);
                    using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
                    using var response = await http.PostAsync(Url, content, attemptCancel.Token).ConfigureAwait(false);
                    string text = await response.Content.ReadAsStringAsync(attemptCancel.Token).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        JsonNode? json;
                        try { json = JsonNode.Parse(text); }
                        catch (System.Text.Json.JsonException) { throw new R1SharpException($"sandbox {Url}: answered HTTP 200 with a body that is not JSON: {Excerpt.Quote(text)}"); }
                        var (result, serviceError) = Parse(json, limits, text);
                        if (result is not null) return result;
                        failure = $"the service failed to run the program: {serviceError}";
                    }
                    else if (Retryable(response.StatusCode)) failure = $"HTTP {(int)response.StatusCode}: {Excerpt.Quote(text)}";
                    else throw new R1SharpException($"sandbox {Url}: HTTP {(int)response.StatusCode}: {Excerpt.Quote(text, 200)}");
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    failure = $"no answer within {timeout.TotalSeconds:0.#} s";
                }
                catch (HttpRequestException e)
                {
                    failure = e.InnerException?.Message ?? e.Message;
                }
                if (attempt >= Options.MaxRetries)
                    throw new R1SharpException($"sandbox {Url}: {failure} (after {attempt + 1} tries)");
                await Task.Delay(Options.FirstRetryDelay * Math.Pow(2, attempt), cancel).ConfigureAwait(false);
            }
        }
        finally { gate.Release(); }
    }

    static bool Retryable(HttpStatusCode s) => s is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)s >= 500;

    /// <summary>The request body for one run.</summary>
    protected abstract JsonObject Request(CodeRun run, SandboxLimits limits);

    /// <summary>The verdict from the service's answer, or (null, why) when the service itself failed (retried).</summary>
    protected abstract (RunResult? Result, string? ServiceError) Parse(JsonNode? answer, SandboxLimits limits, string text);

    protected RunResult Malformed(string text, string what) => throw new R1SharpException($"sandbox {Url}: the answer is not a {what} result: {Excerpt.Quote(text)}");

    public void Dispose()
    {
        http.Dispose();
        gate.Dispose();
        GC.SuppressFinalize(this);
    }
}
