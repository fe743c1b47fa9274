namespace R1Sharp.Generation;

/// <summary>How to pick each next token. Temperature 0 means greedy (argmax). The order of the filters is
/// transformers' (temperature, then top-k, then top-p).</summary>
public sealed record SamplingOptions
{
    public float Temperature { get; init; } = 1.0f;
    public float TopP { get; init; } = 1.0f;
    /// <summary>0 disables top-k.</summary>
    public int TopK { get; init; }
    public int MaxTokens { get; init; } = 256;
    /// <summary>Row i of a batch samples from its own generator seeded with Seed + i, so a sequence's sample does not
    /// depend on what else is in the batch. Null takes a random seed.</summary>
    public long? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];

    public bool Greedy => Temperature <= 0f;

    public void Validate()
    {
        if (float.IsNaN(Temperature) || Temperature < 0) throw new R1SharpException($"temperature must be ≥ 0, got {Temperature}");
        if (!(TopP > 0 && TopP <= 1)) throw new R1SharpException($"top_p must be in (0, 1], got {TopP}");
        if (TopK < 0) throw new R1SharpException($"top_k must be ≥ 0, got {TopK}");
        if (MaxTokens < 1) throw new R1SharpException($"max_tokens must be ≥ 1, got {MaxTokens}");
    }
}
