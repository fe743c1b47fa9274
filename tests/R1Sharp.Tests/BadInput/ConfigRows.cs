namespace R1Sharp.Tests.BadInput;

/// <summary>One config.json value: the families whose config has the key, the key ("rope_scaling.factor" for a nested
/// one), the value as JSON, and whether it is a legitimate value that must be accepted. Every other row must be refused
/// with one line naming the file and the key.</summary>
public sealed record ConfigRow(string Families, string Key, string Json, bool Accepted = false)
{
    public bool AppliesTo(string family) => Families == "all" || Families.Split(',').Contains(family);
    public override string ToString() => $"{Key} = {Json}{(Accepted ? " (accepted)" : "")}";
}

/// <summary>
/// Every config.json key that shapes the computation set to zero, negative, fractional, huge (in and out of range)
/// and of the wrong type, for each family (issue 18). Values a real configuration may hold (rope_theta 64.5, a null
/// head_dim, max_position_embeddings 10⁹, whose cost the KV cache check judges when it is used) are rows too, marked
/// accepted, so a check that refuses too much fails as well.
/// </summary>
public static class ConfigRows
{
    const string Huge = "1000000000", OutOfRange = "4294967360", Fraction = "64.5", Infinite = "1e999", Word = "\"x\"";

    static IEnumerable<ConfigRow> Each(string families, string key, params string[] refused) => refused.Select(v => new ConfigRow(families, key, v));
    static ConfigRow Ok(string families, string key, string json) => new(families, key, json, Accepted: true);

    /// <summary>Integer keys that size tensors: every kind of bad value; the huge ones are refused by the memory check
    /// (or a rule such as heads dividing), before anything is allocated.</summary>
    static readonly string[] Shape = ["vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim"];

    public static readonly ConfigRow[] All =
    [
        .. Shape.SelectMany(k => Each("all", k, "0", "-64", Fraction, OutOfRange, Huge, Infinite, Word, "true", "null", "[64]")).Where(r => !(r.Key == "head_dim" && r.Json == "null")),
        Ok("all", "head_dim", "null"), // derived from hidden_size / num_attention_heads, as transformers does
        .. Each("all", "num_key_value_heads", "3"),  // does not divide 4 heads
        .. Each("llama,qwen2", "hidden_size", "6"),       // head_dim 6 / 4 heads = 1, odd: RoPE rotates pairs
        Ok("qwen3", "hidden_size", "6"),                  // Qwen3 sizes its heads on their own (head_dim 32)
        .. Each("all", "max_position_embeddings", "0", "-64", Fraction, OutOfRange, Infinite, Word, "null"),
        Ok("all", "max_position_embeddings", Huge),
        .. Each("all", "rms_norm_eps", "0", "-1e-6", "1", "1e300", Infinite, Word, "null", "true"),
        Ok("all", "rms_norm_eps", "0.5"),
        .. Each("all", "rope_theta", "0", "-10000", "0.5", "1", "1e300", Infinite, Word, "null"),
        Ok("all", "rope_theta", Fraction),
        Ok("all", "rope_theta", "1e30"),
        .. Each("all", "initializer_range", "-0.02", "1e300", Infinite, Word, "null"),
        Ok("all", "initializer_range", "0"),
        .. Each("all", "bos_token_id", "-64", Fraction, OutOfRange, Huge, Word, "true"),
        Ok("all", "bos_token_id", "0"),
        Ok("all", "bos_token_id", "null"),
        .. Each("all", "eos_token_id", "-64", Fraction, OutOfRange, Huge, Word, "true", "[1, \"x\"]", "[1, 1000000000]", "{}"),
        Ok("all", "eos_token_id", "[0, 1]"),
        Ok("all", "eos_token_id", "null"),
        .. Each("all", "tie_word_embeddings", "0", Fraction, Word, "null"),
        .. Each("all", "torch_dtype", "0", Word, "\"int8\"", "true"),
        Ok("all", "torch_dtype", "null"),                 // transformers' None: float32
        .. Each("all", "hidden_act", "0", Word, "\"gelu\"", "null"),
        .. Each("all", "model_type", "0", Word, "true"),
        Ok("all", "model_type", "null"),                  // the family from architectures
        .. Each("all", "architectures", "0", Word),
        .. Each("llama,qwen3", "attention_bias", "0", Word),
        Ok("llama,qwen3", "attention_bias", "null"),
        .. Each("llama", "mlp_bias", "0", Word),
        .. Each("all", "rope_scaling", "0", Word, "true", "[1]"),
        Ok("all", "rope_scaling", "null"),
        .. Each("qwen2,qwen3", "rope_scaling", """{"rope_type": "llama3", "factor": 8}""", """{"type": "yarn", "factor": 4}"""),
        .. Each("llama", "rope_scaling.rope_type", "0", "\"yarn\""),
        .. Each("llama", "rope_scaling.factor", "0", "-8", "0.5", "1e300", Infinite, Word, "null"),
        Ok("llama", "rope_scaling.factor", Fraction),
        .. Each("llama", "rope_scaling.low_freq_factor", "0", "-1", "4", "1e300", Infinite, Word),
        Ok("llama", "rope_scaling.low_freq_factor", "0.5"),
        Ok("llama", "rope_scaling.low_freq_factor", "null"),
        .. Each("llama", "rope_scaling.high_freq_factor", "0", "-4", "0.5", "1e300", Infinite, Word),
        Ok("llama", "rope_scaling.high_freq_factor", Fraction),
        .. Each("llama", "rope_scaling.original_max_position_embeddings", "0", "-64", Fraction, OutOfRange, Word),
        Ok("llama", "rope_scaling.original_max_position_embeddings", Huge),
        .. Each("qwen2,qwen3", "use_sliding_window", "true", "0", Word),
        Ok("qwen2,qwen3", "use_sliding_window", "false"),
        Ok("qwen2,qwen3", "use_sliding_window", "null"),
    ];

    public static readonly string[] Families = ["qwen2", "llama", "qwen3"];

    public static IEnumerable<object[]> Cases() =>
        from family in Families
        from i in Enumerable.Range(0, All.Length)
        where All[i].AppliesTo(family)
        select new object[] { family, i, All[i].ToString() };
}
