namespace R1Sharp.Tests.BadInput;

/// <summary>One config.json value: the families whose config has the key, the key ("rope_scaling.factor" for a nested
/// one), the value as JSON, and whether it is a legitimate value that must be accepted. Every other row must be refused
/// with one line naming the file and the key.</summary>
public sealed record ConfigRow(string Families, string Key, string Json, bool Accepted = false)
{
    public bool AppliesTo(string family) => Families == "all" || Families.Split(',').Contains(family)
        || Families == "dense" && ConfigRows.Dense.Contains(family) || Families == "deepseek" && family.StartsWith("deepseek_");
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
    static readonly string[] Shape = ["vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads"];
    static readonly string[] DenseShape = ["num_key_value_heads", "head_dim"];
    /// <summary>DeepSeek's MLA and MoE sizes (n_routed_experts and q_lora_rank may be null: no MoE, no query LoRA).</summary>
    static readonly string[] DeepSeekShape = ["kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "moe_intermediate_size", "q_lora_rank", "n_routed_experts"];

    public static readonly ConfigRow[] All =
    [
        .. Shape.SelectMany(k => Each("all", k, "0", "-64", Fraction, OutOfRange, Huge, Infinite, Word, "true", "null", "[64]")),
        .. DenseShape.SelectMany(k => Each("dense", k, "0", "-64", Fraction, OutOfRange, Huge, Infinite, Word, "true", "null", "[64]")).Where(r => !(r.Key == "head_dim" && r.Json == "null")),
        Ok("dense", "head_dim", "null"), // derived from hidden_size / num_attention_heads, as transformers does
        .. Each("dense", "num_key_value_heads", "3"),  // does not divide 4 heads
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
        .. Each("llama,qwen3,deepseek", "attention_bias", "0", Word),
        Ok("llama,qwen3", "attention_bias", "null"),
        .. Each("llama", "mlp_bias", "0", Word),
        .. Each("all", "rope_scaling", "0", Word, "true", "[1]"),
        Ok("all", "rope_scaling", "null"),
        .. Each("qwen2,qwen3,deepseek", "rope_scaling", """{"rope_type": "llama3", "factor": 8}"""),
        .. Each("all", "rope_scaling", """{"rope_type": "dynamic", "factor": 4}"""),
        Ok("dense", "rope_scaling", """{"type": "yarn", "factor": 4}"""), // transformers' YaRN for every family (issue 16)
        .. Each("dense", "rope_scaling", """{"type": "yarn", "factor": 0}""", """{"type": "yarn", "factor": -4}"""),
        .. Each("llama", "rope_scaling.rope_type", "0", "\"linear\""),
        Ok("llama", "rope_scaling.rope_type", "\"yarn\""),
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
        .. Each("all", "quantization_config", """{"quant_method": "gptq"}""", """{"fmt": "e5m2"}""", """{"weight_block_size": [0, 128]}""", """{"weight_block_size": [128]}""", Word),
        Ok("all", "quantization_config", """{"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}"""),

        // DeepSeek-V3/V2 (issue 16): MLA's ranks and head sizes, DeepSeekMoE's experts and routing, YaRN, MTP. The
        // tiny presets: 8 routed experts, 2 per token; V3 routes noaux_tc over 4 groups (2 used), V2 greedily.
        .. DeepSeekShape.SelectMany(k => Each("deepseek", k, "0", "-64", Fraction, OutOfRange, Huge, Infinite, Word, "true", "[64]")),
        .. Each("deepseek", "kv_lora_rank", "null"),
        .. Each("deepseek", "qk_rope_head_dim", "15"),               // RoPE rotates pairs
        .. Each("deepseek", "qk_nope_head_dim", "2147483647"),       // nope + rope past an int dimension
        .. Each("deepseek", "kv_lora_rank", "2147483647"),           // a cache row (rank + rope) past an int dimension
        Ok("deepseek", "q_lora_rank", "null"),                       // V2-Lite: the query is one projection
        Ok("deepseek", "n_routed_experts", "null"),                  // every layer dense
        .. Each("deepseek", "n_routed_experts", "1"),                // fewer than num_experts_per_tok 2
        .. Each("deepseek_v3", "n_routed_experts", "6", "4"),        // 4 groups do not divide 6; 4 leaves 1 per group for noaux_tc
        Ok("deepseek_v2", "n_routed_experts", "6"),                  // greedy routing has no groups
        .. Each("deepseek", "num_experts_per_tok", "0", "-1", "9", Fraction, Word, "null"),
        .. Each("deepseek_v3", "num_experts_per_tok", "5"),          // more than topk_group 2 groups × 2 experts
        Ok("deepseek_v2", "num_experts_per_tok", "8"),
        .. Each("deepseek_v3", "n_group", "0", "-1", "3", "8", "null", Word), // 8 groups of 1 expert: noaux_tc scores a group by its best 2
        .. Each("deepseek_v3", "topk_group", "0", "-1", "5", "null"),
        .. Each("deepseek", "n_shared_experts", "-1", Fraction, Huge, Word),
        Ok("deepseek", "n_shared_experts", "0"),
        Ok("deepseek", "n_shared_experts", "null"),
        .. Each("deepseek", "routed_scaling_factor", "0", "-1", "1e300", Infinite, Word, "null"),
        .. Each("deepseek", "topk_method", "0", Word, "null"),
        .. Each("deepseek", "scoring_func", "0", Word, "\"tanh\""),
        .. Each("deepseek", "first_k_dense_replace", "-1", Fraction, Word),
        Ok("deepseek", "first_k_dense_replace", Huge),               // every layer dense
        .. Each("deepseek", "moe_layer_freq", "0", "-1", Fraction, Word),
        .. Each("deepseek", "num_nextn_predict_layers", "-1", Fraction, Huge, Word),
        Ok("deepseek", "num_nextn_predict_layers", "null"),
        .. Each("deepseek", "norm_topk_prob", "0", Word),
        .. Each("deepseek", "rope_interleave", "0", Word),
        .. Each("deepseek", "rope_scaling.factor", "0", "-4", "1e300", Infinite, Word, "null"),
        Ok("deepseek", "rope_scaling.factor", "0.5"),                // transformers only warns below 1
        .. Each("deepseek", "rope_scaling.original_max_position_embeddings", "0", "-64", Fraction, OutOfRange, Word),
        .. Each("deepseek", "rope_scaling.beta_fast", "-1", "1e300", Infinite, Word),
        .. Each("deepseek", "rope_scaling.beta_slow", "-1", Word),
        .. Each("deepseek", "rope_scaling.mscale_all_dim", Infinite, Word),
        .. Each("deepseek", "rope_scaling.attention_factor", "0", "-1", Word),
        Ok("deepseek", "rope_scaling.attention_factor", "1"),
        .. Each("deepseek", "rope_scaling.rope_type", "0", "\"llama3\""),
    ];

    public static readonly string[] Dense = ["qwen2", "llama", "qwen3"];
    public static readonly string[] Families = [.. Dense, "deepseek_v3", "deepseek_v2"];

    public static IEnumerable<object[]> Cases() =>
        from family in Families
        from i in Enumerable.Range(0, All.Length)
        where All[i].AppliesTo(family)
        select new object[] { family, i, All[i].ToString() };
}
