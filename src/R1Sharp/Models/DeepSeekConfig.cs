using System.Text.Json;
using System.Text.Json.Serialization;

namespace R1Sharp.Models;

// The configuration of DeepSeek-V2/V3's architecture (DeepSeek-AI 2024, "DeepSeek-V2", "DeepSeek-V3 Technical Report";
// transformers' configuration_deepseek_v3.py): Multi-head Latent Attention (q_lora_rank, kv_lora_rank, the nope/rope
// split of a head), DeepSeekMoE (routed and shared experts, the routing of topk_method/scoring_func), leading dense
// layers, YaRN and multi-token prediction. DeepSeek-R1, R1-Zero, R1-0528 and V3.1 are this architecture.

/// <summary>config.json of model_type "deepseek_v3"; defaults are DeepSeek-V3's (and R1's) published config.</summary>
public record DeepseekV3Config : ModelConfig
{
    public DeepseekV3Config()
    {
        ModelType = "deepseek_v3";
        VocabSize = 129280; HiddenSize = 7168; NumHiddenLayers = 61; MaxPositionEmbeddings = 163840;
        BosTokenId = 0; EosTokenIds = [1];
    }

    public int IntermediateSize { get; init; } = 18432;
    public int MoeIntermediateSize { get; init; } = 2048;
    public int NumAttentionHeads { get; init; } = 128;
    /// <summary>Kept for the round trip; MLA has no key/value heads of its own (every head reads the one latent).</summary>
    public int NumKeyValueHeads { get; init; } = 128;
    /// <summary>Routed experts per MoE layer; null: every layer is dense.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? NRoutedExperts { get; init; } = 256;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? NSharedExperts { get; init; } = 1;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? NumExpertsPerTok { get; init; } = 8;
    public double RoutedScalingFactor { get; init; } = 2.5;
    /// <summary>Rank of the query compression; null (DeepSeek-V2-Lite): the query is one projection, q_proj.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? QLoraRank { get; init; } = 1536;
    public int KvLoraRank { get; init; } = 512;
    public int QkNopeHeadDim { get; init; } = 128;
    public int QkRopeHeadDim { get; init; } = 64;
    public int VHeadDim { get; init; } = 128;
    /// <summary>noaux_tc (V3: group-limited on sigmoid scores + e_score_correction_bias), group_limited_greedy (V2),
    /// greedy (V2-Lite).</summary>
    public string TopkMethod { get; init; } = "noaux_tc";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? NGroup { get; init; } = 8;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? TopkGroup { get; init; } = 4;
    public int FirstKDenseReplace { get; init; } = 3;
    public int MoeLayerFreq { get; init; } = 1;
    public bool NormTopkProb { get; init; } = true;
    public string ScoringFunc { get; init; } = "sigmoid";
    /// <summary>Multi-token-prediction modules, stored as model.layers.{num_hidden_layers + k} (V3: 1; V2: none).</summary>
    public int? NumNextnPredictLayers { get; init; } = 1;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public RopeScaling? RopeScaling { get; init; } = RopeScaling.Yarn();
    /// <summary>RoPE on interleaved pairs of the rope dimensions (transformers' default, true, when absent).</summary>
    public bool? RopeInterleave { get; init; }
    public bool AttentionBias { get; init; }
    public string HiddenAct { get; init; } = "silu";

    [JsonIgnore] public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;
    [JsonIgnore] public bool Interleaved => RopeInterleave ?? true;
    [JsonIgnore] public int MtpLayers => NumNextnPredictLayers ?? 0;
    [JsonIgnore] public int SharedExperts => NSharedExperts ?? 0;
    [JsonIgnore] public bool UsesScoreCorrectionBias => TopkMethod == "noaux_tc";
    /// <summary>Whether routed_scaling_factor also multiplies normalised weights: DeepSeek-V3's MoEGate scales always,
    /// V2's only when it does not normalise (modeling_deepseek.py of each release).</summary>
    [JsonIgnore] public virtual bool ScalesNormalizedWeights => true;
    [JsonIgnore] public override string ArchitectureName => "DeepseekV3ForCausalLM";

    /// <summary>Whether layer i (main or MTP) has a DeepSeekMoE feed-forward rather than a dense MLP
    /// (transformers: n_routed_experts set, i ≥ first_k_dense_replace and i % moe_layer_freq == 0).</summary>
    public bool IsMoeLayer(int layer) => NRoutedExperts is > 0 && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    /// <summary>The softmax scale of MLA: 1/√(qk_nope + qk_rope), times mscale(factor, mscale_all_dim)² under YaRN
    /// (DeepSeek's own modeling_deepseek.py for V2 and V3, model.py, and transformers' DeepseekV3Attention;
    /// transformers' native deepseek_v2 leaves it out, llama.cpp's deepseek2 applies it).</summary>
    [JsonIgnore]
    public double SoftmaxScale
    {
        get
        {
            double scale = 1.0 / Math.Sqrt(QkHeadDim);
            if (RopeScaling is { Type: "yarn" } rs && rs.MscaleAllDim is { } all && all != 0)
            {
                double m = RopeScaling.YarnMscale(rs.Factor, all);
                scale *= m * m;
            }
            return scale;
        }
    }

    public static IReadOnlyList<string> Sizes { get; } = ["tiny", "small"];

    public static ModelFamily Family { get; } = new("deepseek_v3", "DeepseekV3ForCausalLM", FromJson<DeepseekV3Config>,
        (c, dtype) => new DeepseekV3ForCausalLM((DeepseekV3Config)c, dtype), (size, vocab) => Preset(size, vocab), Sizes, "deepseek2");

    /// <summary>tiny and small: every feature of V3 at test scale (a dense first layer, q-LoRA, sigmoid noaux_tc routing
    /// over groups, a shared expert, YaRN, one MTP module).</summary>
    public static DeepseekV3Config Preset(string size, int vocabSize) => size switch
    {
        "tiny" => new DeepseekV3Config
        {
            VocabSize = vocabSize, HiddenSize = 64, NumHiddenLayers = 3, IntermediateSize = 128, MoeIntermediateSize = 32,
            NumAttentionHeads = 4, NumKeyValueHeads = 4, QLoraRank = 48, KvLoraRank = 32, QkNopeHeadDim = 16, QkRopeHeadDim = 16, VHeadDim = 16,
            NRoutedExperts = 8, NSharedExperts = 1, NumExpertsPerTok = 2, NGroup = 4, TopkGroup = 2, FirstKDenseReplace = 1,
            MaxPositionEmbeddings = 4096, RopeScaling = RopeScaling.Yarn(4, 1024), TieWordEmbeddings = false,
            Architectures = ["DeepseekV3ForCausalLM"], BosTokenId = null, EosTokenIds = [],
        },
        "small" => new DeepseekV3Config
        {
            VocabSize = vocabSize, HiddenSize = 256, NumHiddenLayers = 4, IntermediateSize = 704, MoeIntermediateSize = 128,
            NumAttentionHeads = 8, NumKeyValueHeads = 8, QLoraRank = 128, KvLoraRank = 64, QkNopeHeadDim = 32, QkRopeHeadDim = 16, VHeadDim = 32,
            NRoutedExperts = 16, NSharedExperts = 1, NumExpertsPerTok = 4, NGroup = 4, TopkGroup = 2, FirstKDenseReplace = 1,
            MaxPositionEmbeddings = 16384, RopeScaling = RopeScaling.Yarn(4, 4096), TieWordEmbeddings = false,
            Architectures = ["DeepseekV3ForCausalLM"], BosTokenId = null, EosTokenIds = [],
        },
        _ => throw new R1SharpException($"unknown size \"{size}\" for deepseek_v3 (expected one of {string.Join(", ", Sizes)})"),
    };

    /// <summary>Checks every key that shapes MLA, the routing and YaRN, naming it: a zero rank or head size, more
    /// experts per token than there are, groups that do not divide the experts would otherwise fail inside a matmul or
    /// a top-k (or silently route nowhere).</summary>
    public override void Validate(string source)
    {
        base.Validate(source);
        Positive(source, "intermediate_size", IntermediateSize);
        Positive(source, "num_attention_heads", NumAttentionHeads);
        Positive(source, "kv_lora_rank", KvLoraRank);
        Positive(source, "qk_nope_head_dim", QkNopeHeadDim);
        Positive(source, "qk_rope_head_dim", QkRopeHeadDim);
        Positive(source, "v_head_dim", VHeadDim);
        Positive(source, "moe_layer_freq", MoeLayerFreq);
        if (QLoraRank is { } ql) Positive(source, "q_lora_rank", ql);
        // A query head is nope + rope wide and a cache row kv_lora_rank + rope: both are int dimensions.
        if ((long)QkNopeHeadDim + QkRopeHeadDim > int.MaxValue)
            throw new ConfigValueException(source, "qk_nope_head_dim", $"{QkNopeHeadDim} + qk_rope_head_dim {QkRopeHeadDim} is past 2^31 − 1");
        if ((long)KvLoraRank + QkRopeHeadDim > int.MaxValue)
            throw new ConfigValueException(source, "kv_lora_rank", $"{KvLoraRank} + qk_rope_head_dim {QkRopeHeadDim} is past 2^31 − 1");
        // As for Llama: an epsilon of 1 or more swamps mean(x²); RoPE's base must spread wavelengths, in float32.
        if (!(RmsNormEps > 0 && RmsNormEps < 1)) throw new ConfigValueException(source, "rms_norm_eps", $"must be a small positive number below 1, found {Show(RmsNormEps)}");
        if (!(RopeTheta > 1 && RopeTheta <= float.MaxValue))
            throw new ConfigValueException(source, "rope_theta", $"must be a number greater than 1 (RoPE's base, float32), found {Show(RopeTheta)}");
        if (QkRopeHeadDim % 2 != 0) throw new ConfigValueException(source, "qk_rope_head_dim", $"{QkRopeHeadDim} must be even for RoPE");
        if (FirstKDenseReplace < 0) throw new ConfigValueException(source, "first_k_dense_replace", $"must not be negative, found {FirstKDenseReplace}");
        if (MtpLayers < 0) throw new ConfigValueException(source, "num_nextn_predict_layers", $"must not be negative, found {MtpLayers}");
        if (HiddenAct != "silu") throw new ConfigValueException(source, "hidden_act", $"{Quoted(HiddenAct)} is not supported (expected \"silu\")");
        if (RopeScaling is { } rs)
        {
            if (rs.Type is not ("default" or "yarn")) throw new ConfigValueException(source, rs.TypeKeyName, $"{Excerpt.Quote(rs.Type)} is not supported for {ModelType} (expected yarn)");
            rs.Validate(source);
        }
        if (NRoutedExperts is null) return;
        int experts = NRoutedExperts.Value;
        Positive(source, "n_routed_experts", experts);
        Positive(source, "moe_intermediate_size", MoeIntermediateSize);
        if (NSharedExperts is { } shared && shared < 0) throw new ConfigValueException(source, "n_shared_experts", $"must not be negative, found {shared}");
        if (NumExpertsPerTok is not { } k || k <= 0 || k > experts)
            throw new ConfigValueException(source, "num_experts_per_tok", $"must be between 1 and n_routed_experts {experts}, found {NumExpertsPerTok?.ToString() ?? "null"}");
        if (ScoringFunc is not ("softmax" or "sigmoid"))
            throw new ConfigValueException(source, "scoring_func", $"{Quoted(ScoringFunc)} is not supported (expected \"softmax\" or \"sigmoid\")");
        if (TopkMethod is not ("greedy" or "group_limited_greedy" or "noaux_tc"))
            throw new ConfigValueException(source, "topk_method", $"{Quoted(TopkMethod)} is not supported (expected \"noaux_tc\", \"group_limited_greedy\" or \"greedy\")");
        if (!(RoutedScalingFactor > 0 && RoutedScalingFactor <= float.MaxValue))
            throw new ConfigValueException(source, "routed_scaling_factor", $"must be a positive number, found {Show(RoutedScalingFactor)}");
        if (TopkMethod == "greedy") return;
        int groups = NGroup ?? 0, used = TopkGroup ?? 0;
        if (groups <= 0 || experts % groups != 0)
            throw new ConfigValueException(source, "n_group", $"must divide n_routed_experts {experts} for topk_method {TopkMethod}, found {NGroup?.ToString() ?? "null"}");
        if (used <= 0 || used > groups)
            throw new ConfigValueException(source, "topk_group", $"must be between 1 and n_group {groups}, found {TopkGroup?.ToString() ?? "null"}");
        if (k > used * (experts / groups))
            throw new ConfigValueException(source, "num_experts_per_tok", $"{k} exceeds the {used * (experts / groups)} experts of topk_group {used} groups of {experts / groups}");
        // noaux_tc scores a group by its two best experts (DeepSeek-V3's model.py).
        if (TopkMethod == "noaux_tc" && experts / groups < 2)
            throw new ConfigValueException(source, "n_group", $"{groups} leaves {experts / groups} expert per group; topk_method noaux_tc scores a group by its best 2 (n_routed_experts / n_group ≥ 2)");
    }

    static string Quoted(string? value) => value is null ? "null" : Excerpt.Quote(value);

    /// <summary>Counted per kind of layer, not per layer, so that num_hidden_layers 10⁹ is refused at once.</summary>
    public override long ParameterCount()
    {
        checked
        {
            long h = HiddenSize, main = NumHiddenLayers, all = main + MtpLayers;
            long moe = MoeLayersIn(0, all), dense = all - moe;
            return (long)VocabSize * h * (TieWordEmbeddings ? 1 : 2) + h
                + all * (AttentionParameters() + 2 * h)
                + dense * DenseParameters() + (moe == 0 ? 0 : moe * MoeParameters(activeOnly: false))
                + MtpLayers * (3 * h + 2 * h * h); // enorm, hnorm, shared_head.norm, eh_proj
        }
    }

    /// <summary>How many of layers [from, to) are MoE layers (<see cref="IsMoeLayer"/> without a loop).</summary>
    long MoeLayersIn(long from, long to)
    {
        if (NRoutedExperts is not > 0) return 0;
        long start = Math.Max(from, FirstKDenseReplace), freq = MoeLayerFreq;
        if (start >= to) return 0;
        long MultiplesBelow(long n) => (n + freq - 1) / freq; // multiples of freq in [0, n)
        return MultiplesBelow(to) - MultiplesBelow(start);
    }

    /// <summary>The largest part, named by its keys only (a message, not a table): the embeddings, or the layers with
    /// whichever of MLA, the dense MLP and the experts is widest.</summary>
    public override string DescribeSize(Func<string, string>? name = null)
    {
        name ??= k => k;
        string N(string key, object value) => $"{name(key)} {value}";
        double embeddings = (double)VocabSize * HiddenSize * (TieWordEmbeddings ? 1 : 2);
        double attention = Try(AttentionParameters), dense = Try(DenseParameters), moe = NRoutedExperts is > 0 ? Try(() => MoeParameters(activeOnly: false)) : 0;
        double perLayer = attention + Math.Max(dense, moe), layers = ((double)NumHiddenLayers + MtpLayers) * perLayer;
        if (embeddings > layers)
            return $"{N("vocab_size", VocabSize)} × {N("hidden_size", HiddenSize)}{(TieWordEmbeddings ? "" : " × 2 (untied lm_head)")} in the embeddings";
        string part = moe >= attention && moe >= dense
            ? $"experts: ({N("n_routed_experts", NRoutedExperts!)} + {N("n_shared_experts", SharedExperts)}) × 3 × {N("hidden_size", HiddenSize)} × {N("moe_intermediate_size", MoeIntermediateSize)}"
            : dense >= attention
            ? $"MLP: 3 × {N("hidden_size", HiddenSize)} × {N("intermediate_size", IntermediateSize)}"
            : $"MLA: {N("hidden_size", HiddenSize)}, {N("num_attention_heads", NumAttentionHeads)}{(QLoraRank is { } ql ? ", " + N("q_lora_rank", ql) : "")}, " +
              $"{N("kv_lora_rank", KvLoraRank)}, {N("qk_nope_head_dim", QkNopeHeadDim)}, {N("qk_rope_head_dim", QkRopeHeadDim)}, {N("v_head_dim", VHeadDim)}";
        string count = double.IsFinite(perLayer) && perLayer < 9.2e18 ? ((long)perLayer).ToString("N0", System.Globalization.CultureInfo.InvariantCulture) : "more than 2^63";
        return $"{N("num_hidden_layers", NumHiddenLayers)}{(MtpLayers > 0 ? " + " + N("num_nextn_predict_layers", MtpLayers) : "")} × up to {count} per layer ({part})";

        static double Try(Func<long> count)
        {
            try { return count(); }
            catch (OverflowException) { return double.PositiveInfinity; }
        }
    }

    long AttentionParameters()
    {
        checked
        {
            long h = HiddenSize, heads = NumAttentionHeads, r = KvLoraRank, qk = (long)QkNopeHeadDim + QkRopeHeadDim;
            long q = QLoraRank is { } ql ? h * ql + ql + ql * heads * qk : h * heads * qk;
            long bias = AttentionBias ? (QLoraRank ?? 0) + r + QkRopeHeadDim + h : 0;
            return q + h * (r + QkRopeHeadDim) + r + r * heads * ((long)QkNopeHeadDim + VHeadDim) + heads * VHeadDim * h + bias;
        }
    }

    long FeedForwardParameters(int layer, bool activeOnly) => IsMoeLayer(layer) ? MoeParameters(activeOnly) : DenseParameters();

    long DenseParameters() => checked(3L * HiddenSize * IntermediateSize);

    long MoeParameters(bool activeOnly)
    {
        checked
        {
            long h = HiddenSize, routed = NRoutedExperts!.Value;
            long experts = activeOnly ? NumExpertsPerTok!.Value : routed;
            return h * routed + (UsesScoreCorrectionBias && !activeOnly ? routed : 0) + (experts + SharedExperts) * 3 * h * MoeIntermediateSize;
        }
    }

    /// <summary>Parameters one token's forward pass reads: the selected experts only, the output head, not the
    /// embedding matrix (a lookup reads one row) nor the MTP modules: the papers' "activated parameters" (V3: 37 B of
    /// 671 B; V2-Lite: 2.4 B of 15.7 B).</summary>
    public long ActiveParameterCount()
    {
        long h = HiddenSize, total = (long)VocabSize * h + h;
        for (int i = 0; i < NumHiddenLayers; i++) total += AttentionParameters() + 2 * h + FeedForwardParameters(i, activeOnly: true);
        return total;
    }

    public override double ForwardFlops(long rows, long length, long logitColumns)
    {
        double perToken = 0;
        for (int i = 0; i < NumHiddenLayers; i++)
            perToken += AttentionParameters() + FeedForwardParameters(i, activeOnly: true)
                + NumAttentionHeads * (double)(QkHeadDim + VHeadDim) * length; // scores and weighted values, expanded form
        return 2 * (rows * length * perToken + rows * logitColumns * (double)HiddenSize * VocabSize);
    }
}

/// <summary>config.json of model_type "deepseek_v2"; defaults are DeepSeek-V2-Lite's (15.7 B parameters, 2.4 B
/// active: no q-LoRA, 64 experts of which 6 plus 2 shared, softmax scores, greedy routing).</summary>
public sealed record DeepseekV2Config : DeepseekV3Config
{
    public DeepseekV2Config()
    {
        ModelType = "deepseek_v2";
        VocabSize = 102400; HiddenSize = 2048; NumHiddenLayers = 27; MaxPositionEmbeddings = 163840;
        BosTokenId = 100000; EosTokenIds = [100001];
        IntermediateSize = 10944; MoeIntermediateSize = 1408; NumAttentionHeads = 16; NumKeyValueHeads = 16;
        NRoutedExperts = 64; NSharedExperts = 2; NumExpertsPerTok = 6; RoutedScalingFactor = 1.0;
        QLoraRank = null; KvLoraRank = 512; QkNopeHeadDim = 128; QkRopeHeadDim = 64; VHeadDim = 128;
        TopkMethod = "greedy"; NGroup = 1; TopkGroup = 1; FirstKDenseReplace = 1; MoeLayerFreq = 1; NormTopkProb = false;
        ScoringFunc = "softmax"; NumNextnPredictLayers = null;
        RopeScaling = RopeScaling.Yarn(40, 4096, 32, 1, 0.707, 0.707);
    }

    // [JsonIgnore] again: an override does not inherit it, and config.json has no such keys.
    [JsonIgnore] public override bool ScalesNormalizedWeights => false;
    [JsonIgnore] public override string ArchitectureName => "DeepseekV2ForCausalLM";

    public static new IReadOnlyList<string> Sizes { get; } = ["tiny", "small", "v2-lite"];

    public static new ModelFamily Family { get; } = new("deepseek_v2", "DeepseekV2ForCausalLM", FromJson<DeepseekV2Config>,
        (c, dtype) => new DeepseekV3ForCausalLM((DeepseekV2Config)c, dtype), (size, vocab) => Preset(size, vocab), Sizes, "deepseek2");

    /// <summary>tiny and small: V2-Lite's features at test scale (no q-LoRA, softmax greedy routing, two shared experts,
    /// a dense first layer); v2-lite: DeepSeek-V2-Lite's own shape.</summary>
    public static new DeepseekV2Config Preset(string size, int vocabSize) => size switch
    {
        "tiny" => new DeepseekV2Config
        {
            VocabSize = vocabSize, HiddenSize = 64, NumHiddenLayers = 3, IntermediateSize = 128, MoeIntermediateSize = 32,
            NumAttentionHeads = 4, NumKeyValueHeads = 4, KvLoraRank = 32, QkNopeHeadDim = 16, QkRopeHeadDim = 16, VHeadDim = 16,
            NRoutedExperts = 8, NSharedExperts = 2, NumExpertsPerTok = 2, MaxPositionEmbeddings = 4096,
            RopeScaling = RopeScaling.Yarn(4, 1024, 32, 1, 0.707, 0.707), Architectures = ["DeepseekV2ForCausalLM"], BosTokenId = null, EosTokenIds = [],
        },
        "small" => new DeepseekV2Config
        {
            VocabSize = vocabSize, HiddenSize = 256, NumHiddenLayers = 4, IntermediateSize = 704, MoeIntermediateSize = 128,
            NumAttentionHeads = 8, NumKeyValueHeads = 8, KvLoraRank = 64, QkNopeHeadDim = 32, QkRopeHeadDim = 16, VHeadDim = 32,
            NRoutedExperts = 16, NSharedExperts = 2, NumExpertsPerTok = 4, MaxPositionEmbeddings = 16384,
            RopeScaling = RopeScaling.Yarn(4, 4096, 32, 1, 0.707, 0.707), Architectures = ["DeepseekV2ForCausalLM"], BosTokenId = null, EosTokenIds = [],
        },
        "v2-lite" => new DeepseekV2Config { VocabSize = vocabSize, Architectures = ["DeepseekV2ForCausalLM"], BosTokenId = null, EosTokenIds = [] },
        _ => throw new R1SharpException($"unknown size \"{size}\" for deepseek_v2 (expected one of {string.Join(", ", Sizes)})"),
    };
}
