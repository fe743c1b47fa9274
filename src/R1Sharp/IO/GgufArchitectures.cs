using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using R1Sharp.Models;

namespace R1Sharp.IO;

/// <summary>
/// How one model family is laid out in llama.cpp's GGUF: its general.architecture name, tensor names, whether its q/k
/// rows are permuted for llama.cpp's interleaved RoPE, the metadata it writes, the config.json it reads back, and
/// tensors that are no parameter (Llama 3's rope_freqs).
/// </summary>
public sealed record GgufArchitecture(
    string Name,
    string ModelType,
    IReadOnlyList<(string Hf, string Gguf)> LayerTensors,
    IReadOnlyList<(string Hf, string Gguf)> GlobalTensors,
    bool InterleavedRope,
    /// <summary>The architecture's metadata, given general.file_type (llama_ftype: what most tensors are stored as).</summary>
    Action<GgufWriter, ModelConfig, uint> WriteMetadata,
    Func<GgufFile, JsonObject> ReadConfig,
    Func<ModelConfig, IReadOnlyList<GgufTensorSpec>> ExtraTensors)
{
    /// <summary>config.json keys by the metadata key (or tensor) they are read from, so an error about a value read
    /// from a GGUF file names what the file calls it.</summary>
    public IReadOnlyDictionary<string, string> MetadataKeys { get; init; } = new Dictionary<string, string>();

    /// <summary>Tensors the architecture writes that have no HF parameter (checked on import, then skipped).</summary>
    public IReadOnlySet<string> NonParameterTensors { get; init; } = new HashSet<string>();

    /// <summary>Every tensor to write, for an architecture whose tensors are not one per HF parameter (deepseek2: experts
    /// stacked, kv_b_proj split); null: one per parameter through the name tables.</summary>
    public Func<CausalLM, GgmlType, IEnumerable<GgufTensorSpec>>? Tensors { get; init; }

    /// <summary>Fills a model's parameters from a file of this architecture when <see cref="Tensors"/> is custom.</summary>
    public Action<GgufFile, CausalLM>? LoadTensors { get; init; }

    /// <summary>Heads to permute a q/k tensor's rows by (HF name), or null when it is left as it is.</summary>
    public int? RopePermuteHeads(string hf, ModelConfig c)
    {
        if (!InterleavedRope || c is not LlamaConfig l) return null;
        if (hf.EndsWith("self_attn.q_proj.weight") || hf.EndsWith("self_attn.q_proj.bias")) return l.NumAttentionHeads;
        if (hf.EndsWith("self_attn.k_proj.weight") || hf.EndsWith("self_attn.k_proj.bias")) return l.NumKeyValueHeads;
        return null;
    }
}

/// <summary>
/// The GGUF tables of the families in <see cref="ModelRegistry"/>, by llama.cpp's architecture name. The dense
/// decoders (qwen2, llama, qwen3) share llama.cpp's keys ({arch}.block_count, …) and tensor names; qwen3 adds its q/k
/// norms, and llama.cpp's "llama" graph uses interleaved RoPE while qwen2/qwen3 use the NEOX (rotate_half) layout.
/// </summary>
public static class GgufArchitectures
{
    static readonly (string Hf, string Gguf)[] DenseLayer =
    [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
        ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
        ("self_attn.o_proj.weight", "attn_output.weight"), ("self_attn.o_proj.bias", "attn_output.bias"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.gate_proj.bias", "ffn_gate.bias"),
        ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.up_proj.bias", "ffn_up.bias"),
        ("mlp.down_proj.weight", "ffn_down.weight"), ("mlp.down_proj.bias", "ffn_down.bias"),
    ];

    static readonly (string Hf, string Gguf)[] Globals =
    [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];

    public static IReadOnlyList<GgufArchitecture> All { get; } =
    [
        Dense("qwen2", "qwen2", DenseLayer, interleavedRope: false),
        Dense("llama", "llama", DenseLayer, interleavedRope: true),
        Dense("qwen3", "qwen3", [.. DenseLayer, ("self_attn.q_norm.weight", "attn_q_norm.weight"), ("self_attn.k_norm.weight", "attn_k_norm.weight")], interleavedRope: false),
        GgufDeepseek2.For("deepseek_v3"),
        GgufDeepseek2.For("deepseek_v2"),
    ];

    public static GgufArchitecture ForModelType(string modelType) =>
        All.FirstOrDefault(a => a.ModelType == modelType) ?? throw new R1SharpException($"model type \"{modelType}\" has no GGUF architecture (supported: {string.Join(", ", All.Select(a => a.ModelType))})");

    public static GgufArchitecture ForFile(GgufFile g)
    {
        string a = g.GetString("general.architecture");
        return All.FirstOrDefault(x => x.Name == a)
            ?? throw new R1SharpException($"{g.Path}: general.architecture {Excerpt.Quote(a)} is not supported (expected one of {string.Join(", ", All.Select(x => x.Name))})");
    }

    static GgufArchitecture Dense(string name, string modelType, (string, string)[] layer, bool interleavedRope) =>
        new(name, modelType, layer, Globals, interleavedRope, DenseMetadata.Write, g => DenseMetadata.ReadConfig(g, name, modelType), DenseMetadata.ExtraTensors)
        {
            NonParameterTensors = new HashSet<string> { "rope_freqs.weight" },
            MetadataKeys = DenseMetadata.Keys(name),
        };
}

/// <summary>llama.cpp's metadata for the dense decoders ({arch}.context_length, …), both ways, and Llama 3's rope
/// scaling as a rope_freqs tensor, as convert_hf_to_gguf.py writes it.</summary>
static class DenseMetadata
{
    /// <summary>Keys under "r1sharp." carry what GGUF has no key for, so import can rebuild config.json exactly.</summary>
    public const string RopeScalingPrefix = "r1sharp.rope_scaling.";

    public static void Write(GgufWriter w, ModelConfig config, uint fileType)
    {
        var c = (LlamaConfig)config;
        string a = GgufArchitectures.ForModelType(c.ModelType).Name;
        w.Add("general.architecture", GgufValue.Str(a));
        w.Add("general.file_type", GgufValue.U32(fileType));
        w.Add($"{a}.context_length", GgufValue.U32((uint)c.MaxPositionEmbeddings));
        w.Add($"{a}.embedding_length", GgufValue.U32((uint)c.HiddenSize));
        w.Add($"{a}.block_count", GgufValue.U32((uint)c.NumHiddenLayers));
        w.Add($"{a}.feed_forward_length", GgufValue.U32((uint)c.IntermediateSize));
        w.Add($"{a}.attention.head_count", GgufValue.U32((uint)c.NumAttentionHeads));
        w.Add($"{a}.attention.head_count_kv", GgufValue.U32((uint)c.NumKeyValueHeads));
        w.Add($"{a}.attention.key_length", GgufValue.U32((uint)c.HeadDim));
        w.Add($"{a}.attention.value_length", GgufValue.U32((uint)c.HeadDim));
        w.Add($"{a}.rope.dimension_count", GgufValue.U32((uint)c.HeadDim));
        w.Add($"{a}.rope.freq_base", GgufValue.F32((float)c.RopeTheta));
        w.Add($"{a}.attention.layer_norm_rms_epsilon", GgufValue.F32((float)c.RmsNormEps));
        if (c.RopeScaling is { Type: "yarn" } yarn)
        {
            // llama.cpp's YaRN (ggml_rope_yarn_corr_dims, floor/ceil as transformers' truncate) with cos and sin scaled by
            // 0.1·ln(factor) + 1, transformers' default attention_factor.
            if (yarn.AttentionFactor is not null || yarn.Mscale is not null || yarn.MscaleAllDim is not null || yarn.Truncate == false)
                throw new R1SharpException($"{c.ModelType} model: rope_scaling yarn with attention_factor, mscale or truncate false has no llama.cpp equivalent for {a}");
            w.Add($"{a}.rope.scaling.type", GgufValue.Str("yarn"));
            w.Add($"{a}.rope.scaling.factor", GgufValue.F32((float)yarn.YarnFactor(c.MaxPositionEmbeddings)));
            w.Add($"{a}.rope.scaling.original_context_length", GgufValue.U32((uint)(yarn.OriginalMaxPositionEmbeddings ?? c.MaxPositionEmbeddings)));
            w.Add($"{a}.rope.scaling.yarn_beta_fast", GgufValue.F32((float)(yarn.BetaFast is { } bf && bf != 0 ? bf : 32)));
            w.Add($"{a}.rope.scaling.yarn_beta_slow", GgufValue.F32((float)(yarn.BetaSlow is { } bs && bs != 0 ? bs : 1)));
        }
        if (c.RopeScaling is { Type: "llama3" } rs)
        {
            // Not rope.scaling.*: llama.cpp would apply those as linear scaling on top of rope_freqs.
            w.Add(RopeScalingPrefix + "type", GgufValue.Str(rs.Type));
            w.Add(RopeScalingPrefix + "factor", new GgufValue(GgufValueType.Float64, rs.Factor));
            w.Add(RopeScalingPrefix + "low_freq_factor", new GgufValue(GgufValueType.Float64, rs.LowFreqFactorOrDefault));
            w.Add(RopeScalingPrefix + "high_freq_factor", new GgufValue(GgufValueType.Float64, rs.HighFreqFactorOrDefault));
            w.Add(RopeScalingPrefix + "original_max_position_embeddings", GgufValue.U32((uint)rs.OriginalMaxPositionEmbeddingsOrDefault));
        }
    }

    public static IReadOnlyList<GgufTensorSpec> ExtraTensors(ModelConfig config)
    {
        if (config is not LlamaConfig { RopeScaling: { Type: "llama3" } rs } c) return [];
        var factors = Llama3RopeFactors(c.HeadDim, c.RopeTheta, rs);
        return [new GgufTensorSpec("rope_freqs.weight", [factors.Length], GgmlType.F32, s => s.Write(MemoryMarshal.AsBytes(factors.AsSpan())))];
    }

    /// <summary>Where each config.json key comes from in a GGUF file of architecture a.</summary>
    public static IReadOnlyDictionary<string, string> Keys(string a) => new Dictionary<string, string>
    {
        ["vocab_size"] = "token_embd.weight's row count", ["hidden_size"] = $"{a}.embedding_length", ["intermediate_size"] = $"{a}.feed_forward_length",
        ["num_hidden_layers"] = $"{a}.block_count", ["num_attention_heads"] = $"{a}.attention.head_count",
        ["num_key_value_heads"] = $"{a}.attention.head_count_kv", ["max_position_embeddings"] = $"{a}.context_length",
        ["rms_norm_eps"] = $"{a}.attention.layer_norm_rms_epsilon", ["rope_theta"] = $"{a}.rope.freq_base", ["head_dim"] = $"{a}.attention.key_length",
        ["bos_token_id"] = "tokenizer.ggml.bos_token_id", ["eos_token_id"] = "tokenizer.ggml.eos_token_id",
        ["rope_scaling.factor"] = RopeScalingPrefix + "factor", ["rope_scaling.low_freq_factor"] = RopeScalingPrefix + "low_freq_factor",
        ["rope_scaling.high_freq_factor"] = RopeScalingPrefix + "high_freq_factor",
        ["rope_scaling.original_max_position_embeddings"] = RopeScalingPrefix + "original_max_position_embeddings",
    };

    public static JsonObject ReadConfig(GgufFile g, string a, string modelType)
    {
        long U(string k) => g.GetInt($"{a}.{k}");
        var embd = g.Tensor("token_embd.weight");
        long hidden = U("embedding_length"), heads = U("attention.head_count");
        if (heads <= 0) throw new R1SharpException($"{g.Path}: {a}.attention.head_count must be a positive integer, found {heads}");
        long headDim = g.OptionalInt($"{a}.attention.key_length") ?? hidden / heads;
        var raw = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelRegistry.Get(modelType).Architecture),
            ["model_type"] = modelType,
            ["vocab_size"] = embd.Dims.Length > 1 ? embd.Dims[1] : 0,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = U("feed_forward_length"),
            ["num_hidden_layers"] = U("block_count"),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = g.OptionalInt($"{a}.attention.head_count_kv") ?? heads,
            ["max_position_embeddings"] = g.OptionalInt($"{a}.context_length") ?? 32768,
            ["rms_norm_eps"] = Tidy(g.OptionalFiniteFloat($"{a}.attention.layer_norm_rms_epsilon") ?? 1e-6),
            ["rope_theta"] = Tidy(g.OptionalFiniteFloat($"{a}.rope.freq_base") ?? 10000),
            ["tie_word_embeddings"] = !g.HasTensor("output.weight"),
            ["hidden_act"] = "silu",
            ["rope_scaling"] = null,
        };
        // The keys this family's config.json has (Qwen3 always states head_dim; Qwen2 has no attention_bias).
        var keys = ModelRegistry.Get(modelType).Preset("tiny", 1).ToJson();
        if (headDim != hidden / heads || keys.ContainsKey("head_dim")) raw["head_dim"] = headDim;
        if (keys.ContainsKey("attention_bias")) raw["attention_bias"] = g.HasTensor("blk.0.attn_q.bias");
        if (keys.ContainsKey("mlp_bias")) raw["mlp_bias"] = g.HasTensor("blk.0.ffn_up.bias");
        if (g.OptionalInt("tokenizer.ggml.bos_token_id") is { } bos) raw["bos_token_id"] = bos;
        if (g.OptionalInt("tokenizer.ggml.eos_token_id") is { } eos) raw["eos_token_id"] = eos;
        if (g.HasTensor("rope_freqs.weight")) raw["rope_scaling"] = ReadRopeScaling(g, a, headDim, raw["rope_theta"]!.GetValue<double>());
        else if (g.OptionalString($"{a}.rope.scaling.type") == "yarn") raw["rope_scaling"] = ReadYarn(g, a);
        return raw;
    }

    /// <summary>llama.cpp's YaRN keys ({a}.rope.scaling.*) as config.json's rope_scaling, checked as config.json's
    /// would be but naming the metadata keys.</summary>
    public static JsonObject ReadYarn(GgufFile g, string a)
    {
        string p = $"{a}.rope.scaling.";
        long? original = g.OptionalInt(p + "original_context_length");
        if (original is <= 0 or > int.MaxValue)
            throw new R1SharpException($"{g.Path}: {p}original_context_length must be a positive integer below 2^31, found {original}");
        var rs = RopeScaling.Yarn(Tidy(g.OptionalFiniteFloat(p + "factor") ?? 1), (int)(original ?? 0), Tidy(g.OptionalFiniteFloat(p + "yarn_beta_fast") ?? 32),
            Tidy(g.OptionalFiniteFloat(p + "yarn_beta_slow") ?? 1), null, null) with { OriginalMaxPositionEmbeddings = (int?)original };
        var names = new Dictionary<string, string>
        {
            ["rope_scaling.factor"] = p + "factor", ["rope_scaling.beta_fast"] = p + "yarn_beta_fast", ["rope_scaling.beta_slow"] = p + "yarn_beta_slow",
        };
        try { rs.Validate(g.Path); }
        catch (ConfigValueException e) { throw new R1SharpException($"{g.Path}: {names.GetValueOrDefault(e.Key, e.Key)} {e.Detail}"); }
        return new JsonObject
        {
            ["rope_type"] = "yarn", ["factor"] = rs.Factor, ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
            ["beta_fast"] = rs.BetaFast, ["beta_slow"] = rs.BetaSlow,
        };
    }

    /// <summary>A float32 metadata value as the shortest decimal that reads back to it (0.1f as 0.1, not 0.10000000149).</summary>
    public static double Tidy(double v) => double.Parse(((float)v).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>Llama 3 scaling from our r1sharp.rope_scaling.* keys, else Llama 3.1's published parameters (factor 8,
    /// low 1, high 4, original context 8192), accepted only when they reproduce the file's rope_freqs.</summary>
    static JsonObject ReadRopeScaling(GgufFile g, string a, long headDim, double theta)
    {
        string p = RopeScalingPrefix;
        var info = g.Tensor("rope_freqs.weight");
        // The tensor's length is checked first: head_dim comes from the file and sizes what is computed here.
        if (info.Type != GgmlType.F32 || info.Elements != headDim / 2 || headDim <= 0)
            throw new R1SharpException($"{g.Path}: rope_freqs.weight should be {Math.Max(0, headDim / 2)} float32 values ({a}.attention.key_length / 2), found {info.Type} × {info.Elements}");
        long original = g.OptionalInt(p + "original_max_position_embeddings") ?? 8192;
        if (original is <= 0 or > int.MaxValue)
            throw new R1SharpException($"{g.Path}: {p}original_max_position_embeddings must be a positive integer below 2^31, found {original}");
        var rs = RopeScaling.Llama3(g.OptionalFiniteFloat(p + "factor") ?? 8, g.OptionalFiniteFloat(p + "low_freq_factor") ?? 1,
            g.OptionalFiniteFloat(p + "high_freq_factor") ?? 4, (int)original);
        try { rs.Validate(g.Path); }
        catch (ConfigValueException e) { throw new R1SharpException($"{g.Path}: {Keys(a)[e.Key]} {e.Detail}"); }
        var expected = Llama3RopeFactors((int)headDim, theta, rs);
        var actual = new float[expected.Length];
        g.ReadData(info, 0, MemoryMarshal.AsBytes(actual.AsSpan()));
        for (int i = 0; i < actual.Length; i++)
            if (Math.Abs(actual[i] - expected[i]) > 1e-4 * Math.Abs(expected[i]))
                throw new R1SharpException($"{g.Path}: rope_freqs.weight[{i}] is {actual[i]} but llama3 scaling ({rs.Factor}, {rs.LowFreqFactor}, {rs.HighFreqFactor}, {rs.OriginalMaxPositionEmbeddings}) gives {expected[i]}");
        return new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = rs.Factor, ["low_freq_factor"] = rs.LowFreqFactor,
            ["high_freq_factor"] = rs.HighFreqFactor, ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
        };
    }

    /// <summary>llama.cpp's rope_freqs for Llama 3 scaling: per frequency, the divisor convert_hf_to_gguf.py's
    /// LlamaModel computes (1 for short wavelengths, factor for long ones, a smooth blend between).</summary>
    public static float[] Llama3RopeFactors(int headDim, double theta, RopeScaling rs)
    {
        var result = new float[headDim / 2];
        double low = rs.LowFreqFactorOrDefault, high = rs.HighFreqFactorOrDefault, original = rs.OriginalMaxPositionEmbeddingsOrDefault;
        double lowWavelen = original / low, highWavelen = original / high;
        for (int i = 0; i < result.Length; i++)
        {
            double freq = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) result[i] = 1;
            else if (wavelen > lowWavelen) result[i] = (float)rs.Factor;
            else
            {
                double smooth = (original / wavelen - low) / (high - low);
                result[i] = (float)(1 / ((1 - smooth) / rs.Factor + smooth));
            }
        }
        return result;
    }
}
