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
        // An infinite temperature divides every logit to zero (a uniform draw over the vocabulary), NaN to NaN: neither
        // is sampling from the model, and both used to pass.
        if (!(Temperature >= 0 && float.IsFinite(Temperature))) throw new R1SharpException($"temperature must be a finite number ≥ 0, got {Show(Temperature)}");
        if (!(TopP > 0 && TopP <= 1)) throw new R1SharpException($"top_p must be in (0, 1], got {Show(TopP)}");
        if (TopK < 0) throw new R1SharpException($"top_k must be ≥ 0, got {TopK}");
        if (MaxTokens < 1) throw new R1SharpException($"max_tokens must be ≥ 1, got {MaxTokens}");
    }

    static string Show(float v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The sampling a model folder recommends in generation_config.json (transformers' GenerationConfig:
    /// do_sample, temperature, top_p, top_k; DeepSeek recommends temperature 0.6, top-p 0.95), over plain sampling.
    /// A key that is present must hold a usable value: one of the wrong type or out of range is an error naming the
    /// file and the key, not silently replaced by the default (temperature "hot" used to sample at 1, 1e300 at
    /// infinity once made a float). null means absent, as transformers reads None.</summary>
    public static SamplingOptions FromGenerationConfig(System.Text.Json.Nodes.JsonObject? config, string path)
    {
        var o = new SamplingOptions();
        if (config is null) return o;
        R1SharpException Bad(string key, string expected) =>
            new($"{path}: \"{key}\" expects {expected}, found {Excerpt.Json(config[key])}");
        float? Number(string key, Func<float, bool> ok, string expected)
        {
            if (config[key] is null) return null;
            if (config[key] is System.Text.Json.Nodes.JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
                && v.TryGetValue(out double d) && (float)d is var f && float.IsFinite(f) && ok(f)) return f;
            throw Bad(key, expected);
        }
        bool doSample = true;
        if (config["do_sample"] is { } ds)
            doSample = ds.GetValueKind() switch
            {
                System.Text.Json.JsonValueKind.True => true,
                System.Text.Json.JsonValueKind.False => false,
                _ => throw Bad("do_sample", "true or false"),
            };
        float? temperature = Number("temperature", t => t >= 0, "a finite number ≥ 0");
        float? topP = Number("top_p", p => p > 0 && p <= 1, "a number in (0, 1]");
        int? topK = null;
        if (config["top_k"] is { } tk)
            topK = tk is System.Text.Json.Nodes.JsonValue kv && kv.GetValueKind() == System.Text.Json.JsonValueKind.Number && kv.TryGetValue(out int k) && k >= 0
                ? k : throw Bad("top_k", "an integer ≥ 0");
        return o with { Temperature = doSample ? temperature ?? 1f : 0f, TopP = topP ?? 1f, TopK = topK ?? 0 };
    }
}
