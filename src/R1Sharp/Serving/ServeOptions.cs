namespace R1Sharp.Serving;

/// <summary>How `r1 serve` runs. Port 0 asks the OS for a free port (tests); the bound one is reported after start.</summary>
public sealed record ServeOptions
{
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8000;
    /// <summary>Sequences decoded together: rows of the shared KV cache.</summary>
    public int MaxBatch { get; init; } = 8;
    /// <summary>Sequences allowed to wait for a free row; past that a request gets 429.</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>Tokens per row (prompt + completion). Null: the model's context, capped at 4096 to bound the cache.</summary>
    public int? MaxContext { get; init; }
    /// <summary>Bearer token every /v1 request must carry; null serves without authentication.</summary>
    public string? ApiKey { get; init; }
    /// <summary>The id /v1/models lists and requests must name; null takes the model folder's name.</summary>
    public string? ModelName { get; init; }
}
