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
    /// <summary>Largest request body accepted; a larger one is refused with 413 before it is read. 4 MB holds a prompt of
    /// a million characters, several times what a 128k-token context can take.</summary>
    public long MaxRequestBytes { get; init; } = 4 << 20;
    /// <summary>Time a completion request may take from its first byte to its last; then its sequences are cancelled
    /// (their slots freed) and the client gets 504, or an error event if the stream had started.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>A LoRA adapter folder applied to the served model itself (--adapter).</summary>
    public string? Adapter { get; init; }
    /// <summary>LoRA adapters served by name over the base (--lora NAME=DIR), chosen by a request's model field.</summary>
    public IReadOnlyList<(string Name, string Dir)> Loras { get; init; } = [];

    /// <summary>Refuses values Kestrel would reject later with its own wording, naming the option.</summary>
    public void Validate()
    {
        if (Port is < 0 or > 65535) throw new R1SharpException($"--port must be between 0 and 65535, got {Port}");
        if (MaxBatch < 1) throw new R1SharpException($"--max-batch must be ≥ 1, got {MaxBatch}");
        if (MaxQueue < 0) throw new R1SharpException($"--max-queue must be ≥ 0, got {MaxQueue}");
        if (MaxContext is < 2) throw new R1SharpException($"--max-context must be ≥ 2, got {MaxContext}");
        if (MaxRequestBytes < 1024) throw new R1SharpException($"--max-request-bytes must be ≥ 1024, got {MaxRequestBytes}");
        foreach (var g in Loras.GroupBy(l => l.Name).Where(g => g.Count() > 1)) throw new R1SharpException($"--lora {g.Key}: the name is given twice");
        if (!(RequestTimeout > TimeSpan.Zero) || RequestTimeout > TimeSpan.FromDays(1))
            throw new R1SharpException($"--request-timeout must be between 0 and 86400 seconds, got {RequestTimeout.TotalSeconds}");
    }
}
