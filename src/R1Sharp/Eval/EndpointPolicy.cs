using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http;
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace R1Sharp.Eval;

/// <summary>
/// How R1Sharp talks to an OpenAI-compatible endpoint (`r1 eval --endpoint`, GRPO's rollout servers): through the
/// OpenAI SDK's pipeline (System.ClientModel), configured rather than replaced. A few quick retries on network errors
/// and on 408/429/5xx (honouring Retry-After), no retry after a request timed out (a server that did not answer in
/// <see cref="RequestTimeout"/> will not answer the same request faster next time), and errors described in one line
/// that names the endpoint and the cause.
/// </summary>
public sealed record EndpointPolicy
{
    /// <summary>A long reasoning sample (tens of thousands of tokens) on a busy server takes minutes; past ten, the
    /// server is more likely stuck than thinking.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromMinutes(10);

    /// <summary>How long one request may take, answer included; then it fails (no retry).</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;
    /// <summary>Retries after the first try, on network errors and 408/429/500/502/503/504.</summary>
    public int MaxRetries { get; init; } = 3;
    /// <summary>The first retry waits this long, each next one twice as long (0.25, 0.5, 1 s by default).</summary>
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    public void Validate(string option)
    {
        if (!(RequestTimeout > TimeSpan.Zero) || RequestTimeout > TimeSpan.FromDays(1))
            throw new R1SharpException($"{option} must be between 0 and 86400 seconds, got {RequestTimeout.TotalSeconds}");
        if (MaxRetries < 0) throw new R1SharpException($"retries must be ≥ 0, got {MaxRetries}");
    }

    /// <summary>Seconds from a command-line or recipe value: finite and positive.</summary>
    public static TimeSpan Seconds(double seconds, string option) =>
        double.IsFinite(seconds) && seconds > 0 && seconds <= 86400 ? TimeSpan.FromSeconds(seconds)
            : throw new R1SharpException($"{option} must be a number of seconds between 0 and 86400, got {seconds}");

    public ClientRetryPolicy CreateRetryPolicy() => new QuickRetries(this);

    /// <summary>The one line a user reads when a request to <paramref name="endpoint"/> failed for good.</summary>
    public string Describe(Exception e)
    {
        // The pipeline wraps the failures of several tries; the last one says what is wrong now.
        while (e is AggregateException { InnerExceptions.Count: > 0 } a) e = a.InnerExceptions[^1];
        switch (e)
        {
            case ClientResultException { Status: > 0 } c:
                return $"HTTP {c.Status}: {ServerMessage(c.GetRawResponse())}";
            case ClientResultException { InnerException: { } inner }:
                return Describe(inner);
            case OperationCanceledException:
                return $"no answer within {RequestTimeout.TotalSeconds:0.#} s (the request timeout; raise it if the server is only slow)";
            case HttpRequestException h:
                var socket = FindSocketError(h);
                string cause = socket switch
                {
                    SocketError.ConnectionRefused => "connection refused (is the server running, and on this port?)",
                    SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "the host name does not resolve",
                    SocketError.TimedOut or SocketError.HostUnreachable or SocketError.NetworkUnreachable => "the host cannot be reached",
                    SocketError.ConnectionReset => "the server closed the connection",
                    _ => h.Message,
                };
                return MaxRetries > 0 ? $"{cause}; gave up after {MaxRetries + 1} tries" : cause;
            default:
                return e.Message.Split('\n')[0];
        }
    }

    static SocketError? FindSocketError(Exception e)
    {
        for (Exception? x = e; x != null; x = x.InnerException)
            if (x is SocketException s) return s.SocketErrorCode;
        return null;
    }

    /// <summary>What the server said about its error: OpenAI's {"error": {"message"}}, a {"message"} or {"detail"}
    /// (FastAPI), else an escaped excerpt of the body.</summary>
    public static string ServerMessage(PipelineResponse? response)
    {
        if (response is null) return "no response";
        string text;
        try { text = response.Content.ToString(); } catch (Exception) { return "(unreadable body)"; }
        if (text.Trim().Length == 0) return $"{response.ReasonPhrase} (empty body)";
        try
        {
            var json = JsonNode.Parse(text);
            var error = json?["error"];
            string? message = error is JsonValue ev && ev.TryGetValue(out string? es) ? es
                : error?["message"] is JsonValue mv && mv.TryGetValue(out string? ms) ? ms
                : json?["message"] is JsonValue m2 && m2.TryGetValue(out string? s2) ? s2
                : json?["detail"] is JsonValue d && d.TryGetValue(out string? ds) ? ds : null;
            if (message != null) return Excerpt.Quote(message, 300);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { }
        return Excerpt.Quote(text, 200);
    }

    /// <summary>The SDK's retry loop with short waits, Retry-After honoured (capped), and no retry after a timeout.</summary>
    sealed class QuickRetries(EndpointPolicy policy) : ClientRetryPolicy(policy.MaxRetries)
    {
        static readonly TimeSpan MaxServerDelay = TimeSpan.FromSeconds(60);

        protected override bool ShouldRetry(PipelineMessage message, Exception? exception)
        {
            if (exception is OperationCanceledException) return false; // a timeout, or the caller gave up
            return base.ShouldRetry(message, exception);
        }

        protected override TimeSpan GetNextDelay(PipelineMessage message, int tryCount)
        {
            var headers = message.Response?.Headers;
            if (headers != null)
            {
                if (headers.TryGetValue("retry-after-ms", out string? ms) && double.TryParse(ms, System.Globalization.CultureInfo.InvariantCulture, out double m) && m >= 0)
                    return Min(TimeSpan.FromMilliseconds(m));
                if (headers.TryGetValue("Retry-After", out string? s) && double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out double sec) && sec >= 0)
                    return Min(TimeSpan.FromSeconds(sec));
            }
            return policy.FirstRetryDelay * (1 << Math.Clamp(tryCount - 1, 0, 10));
        }

        static TimeSpan Min(TimeSpan t) => t < MaxServerDelay ? t : MaxServerDelay;
    }
}
