using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.IO;

/// <summary>
/// llama.cpp's "deepseek2" architecture (DeepSeek-V2, V2-Lite, V3, R1), both ways, as convert_hf_to_gguf.py's
/// DeepseekV2Model writes it: MLA converted to MQA over the latent (head_count_kv 1, key_length kv_lora_rank +
/// qk_rope, value_length kv_lora_rank, the real head sizes as key_length_mla/value_length_mla) with kv_b_proj split
/// per head into attn_k_b (W_UK transposed) and attn_v_b (W_UV), the form llama.cpp's absorbed attention reads; routed
/// experts stacked into ffn_{gate,up,down}_exps; the router's function, groups, normalisation and scale as expert_*
/// keys; YaRN with DeepSeek's mscale_all_dim as 0.1 × yarn_log_multiplier. The RoPE halves of DeepSeek's checkpoints
/// are interleaved pairs, llama.cpp's "norm" RoPE, so nothing is permuted (rope_interleave false permutes them).
/// MTP modules are left out, as convert_hf_to_gguf.py does for DeepSeek (skip_mtp): the bundled llama.cpp refuses a
/// file whose blk.{N}.nextn.* tensors it does not load ("wrong number of tensors"), so the imported folder has
/// num_nextn_predict_layers 0. What GGUF has no key for (the V2/V3 release, topk_method, exact floats) is kept in
/// r1sharp.deepseek.config so import rebuilds config.json.
/// </summary>
static partial class GgufDeepseek2
{
    const string A = "deepseek2";
    const string P = "r1sharp.deepseek.";

    static readonly (string Hf, string Gguf)[] Layer =
    [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.q_a_proj.weight", "attn_q_a.weight"),
        ("self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"),
        ("self_attn.q_b_proj.weight", "attn_q_b.weight"),
        ("self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"),
        ("self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"),
        ("self_attn.kv_b_proj.weight", "attn_kv_b.weight"), // only in older files; export splits it
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
        ("mlp.gate.weight", "ffn_gate_inp.weight"),
        ("mlp.gate.e_score_correction_bias", "exp_probs_b.bias"),
        ("mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"),
        ("mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"),
        ("mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"),
        ("enorm.weight", "nextn.enorm.weight"),
        ("hnorm.weight", "nextn.hnorm.weight"),
        ("eh_proj.weight", "nextn.eh_proj.weight"),
        ("shared_head.norm.weight", "nextn.shared_head_norm.weight"),
    ];

    static readonly (string Hf, string Gguf)[] Globals =
    [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];

    [GeneratedRegex(@"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$")] private static partial Regex Expert();
    [GeneratedRegex(@"^model\.layers\.(\d+)\.self_attn\.kv_b_proj\.weight$")] private static partial Regex KvB();
    [GeneratedRegex(@"^model\.layers\.(\d+)\.self_attn\.(q_proj|q_b_proj|kv_a_proj_with_mqa)\.weight$")] private static partial Regex RopeRows();

    public static GgufArchitecture For(string modelType) =>
        new(A, modelType, Layer, Globals, InterleavedRope: false, WriteMetadata, ReadConfig, _ => []) { Tensors = WriteTensors, LoadTensors = Load, MetadataKeys = Keys };

    /// <summary>Where each config.json key comes from in llama.cpp's deepseek2 keys (our own files also carry the whole
    /// config.json in r1sharp.deepseek.config, written consistently with these).</summary>
    static readonly IReadOnlyDictionary<string, string> Keys = new Dictionary<string, string>
    {
        ["vocab_size"] = "token_embd.weight's row count", ["hidden_size"] = $"{A}.embedding_length", ["intermediate_size"] = $"{A}.feed_forward_length",
        ["num_hidden_layers"] = $"{A}.block_count", ["num_attention_heads"] = $"{A}.attention.head_count", ["max_position_embeddings"] = $"{A}.context_length",
        ["rms_norm_eps"] = $"{A}.attention.layer_norm_rms_epsilon", ["rope_theta"] = $"{A}.rope.freq_base",
        ["q_lora_rank"] = $"{A}.attention.q_lora_rank", ["kv_lora_rank"] = $"{A}.attention.kv_lora_rank", ["qk_rope_head_dim"] = $"{A}.rope.dimension_count",
        ["qk_nope_head_dim"] = $"{A}.attention.key_length_mla", ["v_head_dim"] = $"{A}.attention.value_length_mla",
        ["moe_intermediate_size"] = $"{A}.expert_feed_forward_length", ["n_routed_experts"] = $"{A}.expert_count", ["n_shared_experts"] = $"{A}.expert_shared_count",
        ["num_experts_per_tok"] = $"{A}.expert_used_count", ["n_group"] = $"{A}.expert_group_count", ["topk_group"] = $"{A}.expert_group_used_count",
        ["routed_scaling_factor"] = $"{A}.expert_weights_scale", ["num_nextn_predict_layers"] = $"{A}.nextn_predict_layers",
        ["rope_scaling.factor"] = $"{A}.rope.scaling.factor", ["rope_scaling.original_max_position_embeddings"] = $"{A}.rope.scaling.original_context_length",
        ["rope_scaling.beta_fast"] = $"{A}.rope.scaling.yarn_beta_fast", ["rope_scaling.beta_slow"] = $"{A}.rope.scaling.yarn_beta_slow",
        ["bos_token_id"] = "tokenizer.ggml.bos_token_id", ["eos_token_id"] = "tokenizer.ggml.eos_token_id",
    };

    static GgufArchitecture Arch => GgufArchitectures.ForModelType("deepseek_v3");

    /// <summary>What llama.cpp's deepseek2 graph cannot compute, refused before anything is written.</summary>
    static void CheckExportable(DeepseekV3Config c)
    {
        string? why = c.AttentionBias ? "attention_bias (llama.cpp's deepseek2 has no attention biases)"
            : c.NRoutedExperts is not null && c.MoeLayerFreq != 1 ? $"moe_layer_freq {c.MoeLayerFreq} (llama.cpp makes every layer after the leading dense ones MoE)"
            : c.RopeScaling is { Type: "yarn" } rs && rs.YarnAttentionFactor(c.MaxPositionEmbeddings) != 1
                ? "YaRN with mscale ≠ mscale_all_dim or an attention_factor (llama.cpp scales cos/sin and the softmax together)" : null;
        if (why != null) throw new R1SharpException($"{c.ModelType} model: {why} cannot be exported to llama.cpp's deepseek2");
    }

    static void WriteMetadata(GgufWriter w, ModelConfig config, uint fileType)
    {
        var c = (DeepseekV3Config)config;
        CheckExportable(c);
        int k = c.NumExpertsPerTok ?? 0;
        bool moe = c.NRoutedExperts is > 0, normalise = c.NormTopkProb && k > 1;
        void U(string key, long v) => w.Add($"{A}.{key}", GgufValue.U32((uint)v));
        void F(string key, double v) => w.Add($"{A}.{key}", GgufValue.F32((float)v));
        w.Add("general.architecture", GgufValue.Str(A));
        w.Add("general.file_type", GgufValue.U32(fileType));
        U("context_length", c.MaxPositionEmbeddings);
        U("embedding_length", c.HiddenSize);
        U("block_count", c.NumHiddenLayers);
        U("feed_forward_length", c.IntermediateSize);
        U("attention.head_count", c.NumAttentionHeads);
        U("attention.head_count_kv", 1);
        F("rope.freq_base", c.RopeTheta);
        F("attention.layer_norm_rms_epsilon", c.RmsNormEps);
        U("leading_dense_block_count", moe ? c.FirstKDenseReplace : c.NumHiddenLayers);
        U("vocab_size", c.VocabSize);
        // llama.cpp reads q_lora_rank unless the layer count is V2-Lite's; 0 makes it load attn_q.
        U("attention.q_lora_rank", c.QLoraRank ?? 0);
        U("attention.kv_lora_rank", c.KvLoraRank);
        U("attention.key_length", c.KvLoraRank + c.QkRopeHeadDim);
        U("attention.value_length", c.KvLoraRank);
        U("attention.key_length_mla", c.QkHeadDim);
        U("attention.value_length_mla", c.VHeadDim);
        U("rope.dimension_count", c.QkRopeHeadDim);
        U("expert_feed_forward_length", c.MoeIntermediateSize);
        if (moe)
        {
            U("expert_count", c.NRoutedExperts!.Value);
            U("expert_used_count", k);
            U("expert_shared_count", c.SharedExperts);
            // llama.cpp normalises, then scales: V2's MoEGate does not scale normalised weights.
            F("expert_weights_scale", normalise && !c.ScalesNormalizedWeights ? 1.0 : c.RoutedScalingFactor);
            w.Add($"{A}.expert_weights_norm", GgufValue.Bool(normalise));
            U("expert_gating_func", c.ScoringFunc == "sigmoid" ? 2 : 1); // llama_expert_gating_func_type
            if (c.TopkMethod != "greedy" && c.NGroup is > 1 && c.TopkGroup < c.NGroup)
            {
                U("expert_group_count", c.NGroup.Value);
                U("expert_group_used_count", c.TopkGroup!.Value);
            }
        }
        if (c.RopeScaling is { Type: "yarn" } rs)
        {
            w.Add($"{A}.rope.scaling.type", GgufValue.Str("yarn"));
            F("rope.scaling.factor", rs.YarnFactor(c.MaxPositionEmbeddings));
            U("rope.scaling.original_context_length", rs.OriginalMaxPositionEmbeddings ?? c.MaxPositionEmbeddings);
            F("rope.scaling.yarn_beta_fast", rs.BetaFast is { } bf && bf != 0 ? bf : 32);
            F("rope.scaling.yarn_beta_slow", rs.BetaSlow is { } bs && bs != 0 ? bs : 1);
            // [TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]: stored as 0.1 × mscale_all_dim, as convert_hf_to_gguf.py writes it.
            if (rs.MscaleAllDim is { } all) F("rope.scaling.yarn_log_multiplier", 0.1 * all);
        }
        w.Add(P + "model_type", GgufValue.Str(c.ModelType));
        w.Add(P + "config", GgufValue.Str((c with { NumNextnPredictLayers = c.NumNextnPredictLayers is null ? null : 0 }).ToJson().ToJsonString()));
    }

    /// <summary>config.json from the file: our own files carry it whole (r1sharp.deepseek.config); for others
    /// (convert_hf_to_gguf.py's) it is rebuilt from llama.cpp's keys, the release and topk_method inferred from the
    /// gating function and the correction bias.</summary>
    static JsonObject ReadConfig(GgufFile g)
    {
        JsonObject raw;
        if (g.OptionalString(P + "config") is { } json)
        {
            try { raw = JsonNode.Parse(json) as JsonObject ?? throw new R1SharpException($"{g.Path}: {P}config is not a JSON object"); }
            catch (System.Text.Json.JsonException e) { throw new R1SharpException($"{g.Path}: {P}config is malformed JSON: {Excerpt.Quote(e.Message)}"); }
        }
        else raw = ConfigFromLlamaKeys(g);
        var embd = g.Tensor("token_embd.weight");
        raw["vocab_size"] = embd.Dims.Length > 1 ? embd.Dims[1] : 0;
        raw["tie_word_embeddings"] = !g.HasTensor("output.weight");
        if (g.OptionalInt("tokenizer.ggml.bos_token_id") is { } bos) raw["bos_token_id"] = bos;
        if (g.OptionalInt("tokenizer.ggml.eos_token_id") is { } eos) raw["eos_token_id"] = eos;
        return raw;
    }

    static JsonObject ConfigFromLlamaKeys(GgufFile g)
    {
        long U(string key) => g.GetInt($"{A}.{key}");
        static double Tidy(double v) => DenseMetadata.Tidy(v);
        long nextn = g.OptionalInt($"{A}.nextn_predict_layers") ?? 0, layers = U("block_count") - nextn;
        long rope = U("rope.dimension_count"), keyMla = g.OptionalInt($"{A}.attention.key_length_mla") ?? U("attention.key_length");
        long experts = g.OptionalInt($"{A}.expert_count") ?? 0, groups = g.OptionalInt($"{A}.expert_group_count") ?? 1;
        long leading = g.OptionalInt($"{A}.leading_dense_block_count") ?? 0;
        bool sigmoid = g.OptionalInt($"{A}.expert_gating_func") == 2;
        bool bias = g.Tensors.Any(t => t.Name.EndsWith(".exp_probs_b.bias"));
        string modelType = sigmoid || bias ? "deepseek_v3" : "deepseek_v2";
        var raw = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelRegistry.Get(modelType).Architecture),
            ["model_type"] = modelType,
            ["hidden_size"] = U("embedding_length"),
            ["intermediate_size"] = U("feed_forward_length"),
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = U("attention.head_count"),
            ["num_key_value_heads"] = U("attention.head_count"),
            ["max_position_embeddings"] = g.OptionalInt($"{A}.context_length") ?? 4096,
            ["rms_norm_eps"] = Tidy(g.OptionalFiniteFloat($"{A}.attention.layer_norm_rms_epsilon") ?? 1e-6),
            ["rope_theta"] = Tidy(g.OptionalFiniteFloat($"{A}.rope.freq_base") ?? 10000),
            ["q_lora_rank"] = g.OptionalInt($"{A}.attention.q_lora_rank") is { } ql and > 0 ? ql : null,
            ["kv_lora_rank"] = U("attention.kv_lora_rank"),
            ["qk_rope_head_dim"] = rope,
            ["qk_nope_head_dim"] = keyMla - rope,
            ["v_head_dim"] = g.OptionalInt($"{A}.attention.value_length_mla") ?? U("attention.value_length"),
            ["moe_intermediate_size"] = g.OptionalInt($"{A}.expert_feed_forward_length") ?? 0,
            ["n_routed_experts"] = experts > 0 && leading < layers ? experts : null,
            ["n_shared_experts"] = g.OptionalInt($"{A}.expert_shared_count") ?? 0,
            ["num_experts_per_tok"] = g.OptionalInt($"{A}.expert_used_count") ?? 1,
            ["first_k_dense_replace"] = Math.Min(leading, layers),
            ["moe_layer_freq"] = 1,
            ["n_group"] = groups,
            ["topk_group"] = g.OptionalInt($"{A}.expert_group_used_count") ?? groups,
            ["topk_method"] = bias ? "noaux_tc" : groups > 1 ? "group_limited_greedy" : "greedy",
            ["scoring_func"] = sigmoid ? "sigmoid" : "softmax",
            ["norm_topk_prob"] = g.TryBool($"{A}.expert_weights_norm") ?? false,
            ["routed_scaling_factor"] = Tidy(g.OptionalFiniteFloat($"{A}.expert_weights_scale") ?? 1.0),
            ["num_nextn_predict_layers"] = nextn,
            ["hidden_act"] = "silu",
            ["rope_scaling"] = null,
        };
        if (g.OptionalString($"{A}.rope.scaling.type") == "yarn")
        {
            var rs = new JsonObject
            {
                ["type"] = "yarn",
                ["factor"] = Tidy(g.OptionalFiniteFloat($"{A}.rope.scaling.factor") ?? 1),
                ["original_max_position_embeddings"] = g.OptionalInt($"{A}.rope.scaling.original_context_length"),
                ["beta_fast"] = Tidy(g.OptionalFiniteFloat($"{A}.rope.scaling.yarn_beta_fast") ?? 32),
                ["beta_slow"] = Tidy(g.OptionalFiniteFloat($"{A}.rope.scaling.yarn_beta_slow") ?? 1),
            };
            if (g.OptionalFiniteFloat($"{A}.rope.scaling.yarn_log_multiplier") is { } mul)
            {
                // Two nodes: a JSON node has one parent (a chained assignment would hand the same node to both keys).
                rs["mscale"] = Math.Round(mul / 0.1, 6);
                rs["mscale_all_dim"] = Math.Round(mul / 0.1, 6);
            }
            raw["rope_scaling"] = rs;
        }
        return raw;
    }

    static IEnumerable<GgufTensorSpec> WriteTensors(CausalLM model, GgmlType type)
    {
        var c = (DeepseekV3Config)model.Config;
        CheckExportable(c);
        var arch = Arch;
        var sd = model.StateDict();
        int heads = c.NumAttentionHeads, nope = c.QkNopeHeadDim, v = c.VHeadDim, rank = c.KvLoraRank;
        foreach (var (name, p) in sd)
        {
            if (MtpLayer(name, c)) continue;
            if (Expert().Match(name) is { Success: true } e)
            {
                if (e.Groups[2].Value != "0") continue; // the whole stack is written at expert 0
                string layer = e.Groups[1].Value, kind = e.Groups[3].Value;
                var parts = Enumerable.Range(0, c.NRoutedExperts!.Value).Select(x => sd[$"model.layers.{layer}.mlp.experts.{x}.{kind}_proj.weight"]).ToArray();
                yield return GgufExport.Spec($"blk.{layer}.ffn_{kind}_exps.weight", [parts.Length, .. p.shape], type, () => parts);
            }
            else if (KvB().Match(name) is { Success: true } kvb)
            {
                // kv_b_proj [H·(nope + v), rank] → per head W_UK [nope, rank] transposed and W_UV [v, rank]: llama.cpp's
                // attn_k_b [H, rank, nope] and attn_v_b [H, v, rank] (convert_hf_to_gguf.py's split).
                string layer = kvb.Groups[1].Value;
                var w = p;
                yield return GgufExport.Spec($"blk.{layer}.attn_k_b.weight", [heads, rank, nope], type, () => [w.detach().view(heads, nope + v, rank).narrow(1, 0, nope).transpose(1, 2)]);
                yield return GgufExport.Spec($"blk.{layer}.attn_v_b.weight", [heads, v, rank], type, () => [w.detach().view(heads, nope + v, rank).narrow(1, nope, v)]);
            }
            else
            {
                var tensor = p;
                bool permute = !c.Interleaved && RopeRows().IsMatch(name);
                yield return GgufExport.Spec(GgufNames.ToGguf(name, arch), p.shape, type, () => [permute ? RopeRowsToPairs(tensor.detach(), name, c, toPairs: true) : tensor]);
            }
        }
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")] private static partial Regex LayerIndex();

    static bool MtpLayer(string name, DeepseekV3Config c) =>
        LayerIndex().Match(name) is { Success: true } m && int.Parse(m.Groups[1].Value) >= c.NumHiddenLayers;

    /// <summary>For rope_interleave false (rotate_half layout): reorders the rope rows of a query or kv_a projection
    /// into the interleaved pairs llama.cpp rotates (row (half, i) → (i, half), as LlamaModel.permute), or back.</summary>
    static Tensor RopeRowsToPairs(Tensor w, string name, DeepseekV3Config c, bool toPairs)
    {
        int rope = c.QkRopeHeadDim;
        bool kvA = name.EndsWith("kv_a_proj_with_mqa.weight");
        long groups = kvA ? 1 : c.NumAttentionHeads, stride = kvA ? c.KvLoraRank + rope : c.QkHeadDim, offset = kvA ? c.KvLoraRank : c.QkNopeHeadDim;
        var perGroup = w.view(groups, stride, -1);
        var ropeRows = perGroup.narrow(1, offset, rope);
        var reordered = toPairs
            ? ropeRows.reshape(groups, 2, rope / 2, -1).transpose(1, 2).reshape(groups, rope, -1)
            : ropeRows.reshape(groups, rope / 2, 2, -1).transpose(1, 2).reshape(groups, rope, -1);
        return cat([perGroup.narrow(1, 0, offset), reordered, perGroup.narrow(1, offset + rope, stride - offset - rope)], 1).reshape(w.shape);
    }

    static void Load(GgufFile g, CausalLM model)
    {
        var c = (DeepseekV3Config)model.Config;
        var arch = Arch;
        var used = new HashSet<string>();
        using var noGrad = no_grad();
        int heads = c.NumAttentionHeads, nope = c.QkNopeHeadDim, v = c.VHeadDim, rank = c.KvLoraRank;
        foreach (var (name, p) in model.StateDict())
        {
            using var scope = NewDisposeScope();
            Tensor x;
            if (Expert().Match(name) is { Success: true } e)
            {
                var info = Use(g, $"blk.{e.Groups[1].Value}.ffn_{e.Groups[3].Value}_exps.weight", used);
                long[] expected = [c.NRoutedExperts!.Value, .. p.shape];
                if (!info.TorchShape.SequenceEqual(expected)) throw ShapeError(g, info, expected, name);
                x = GgufImport.ReadFloat32(g, info, long.Parse(e.Groups[2].Value) * p.numel(), p.shape);
            }
            else if (KvB().Match(name) is { Success: true } kvb && !g.HasTensor($"blk.{kvb.Groups[1].Value}.attn_kv_b.weight"))
            {
                var kInfo = Use(g, $"blk.{kvb.Groups[1].Value}.attn_k_b.weight", used);
                var vInfo = Use(g, $"blk.{kvb.Groups[1].Value}.attn_v_b.weight", used);
                if (!kInfo.TorchShape.SequenceEqual([heads, rank, nope])) throw ShapeError(g, kInfo, [heads, rank, nope], name);
                if (!vInfo.TorchShape.SequenceEqual([heads, v, rank])) throw ShapeError(g, vInfo, [heads, v, rank], name);
                x = cat([GgufImport.ReadFloat32(g, kInfo).transpose(1, 2), GgufImport.ReadFloat32(g, vInfo)], 1).reshape(p.shape);
            }
            else
            {
                var info = Use(g, GgufNames.ToGguf(name, arch), used);
                if (!info.TorchShape.SequenceEqual(p.shape)) throw ShapeError(g, info, p.shape, name);
                x = GgufImport.ReadFloat32(g, info);
                if (!c.Interleaved && RopeRows().IsMatch(name)) x = RopeRowsToPairs(x, name, c, toPairs: false);
            }
            p.copy_(x);
        }
        foreach (var t in g.Tensors)
            if (!used.Contains(t.Name))
                throw new R1SharpException($"{g.Path}: tensor {Excerpt.Quote(t.Name)} has no Hugging Face counterpart in this {c.ModelType} configuration");
    }

    static GgufTensorInfo Use(GgufFile g, string name, HashSet<string> used)
    {
        if (!g.HasTensor(name)) throw new R1SharpException($"{g.Path}: no tensor {Excerpt.Quote(name)}, which this {A} configuration needs");
        used.Add(name);
        return g.Tensor(name);
    }

    static R1SharpException ShapeError(GgufFile g, GgufTensorInfo info, long[] expected, string hf) =>
        new($"{g.Path}: tensor {Excerpt.Quote(info.Name)} has shape [{string.Join(", ", info.TorchShape)}], expected [{string.Join(", ", expected)}] for {hf}");
}
