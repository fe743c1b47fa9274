using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace R1Sharp.Models;

// Qwen3 (Yang et al. 2025; transformers' modeling_qwen3.py): Llama's decoder with an RMSNorm over each head of the
// queries and keys before RoPE (q_norm, k_norm: one weight of head_dim, shared by the heads), no q/k/v bias, and a
// head_dim set on its own rather than hidden_size / heads. The architecture of DeepSeek-R1-0528-Qwen3-8B.

/// <summary>config.json of model_type "qwen3"; defaults are Qwen3-8B's (the base of DeepSeek-R1-0528-Qwen3-8B).</summary>
public sealed record Qwen3Config : LlamaConfig
{
    public Qwen3Config()
    {
        ModelType = "qwen3";
        VocabSize = 151936; HiddenSize = 4096; NumHiddenLayers = 36; MaxPositionEmbeddings = 40960;
        IntermediateSize = 12288; NumAttentionHeads = 32; NumKeyValueHeads = 8; HeadDim = 128;
        RmsNormEps = 1e-6; RopeTheta = 1000000.0; RopeScaling = null;
        MlpBias = null; // Qwen3's config.json has attention_bias but no mlp_bias
    }

    [JsonIgnore] public override string ArchitectureName => "Qwen3ForCausalLM";

    public static IReadOnlyList<string> Sizes { get; } = ["tiny", "small", "0.6b", "1.7b", "4b", "8b"];

    public static new ModelFamily Family { get; } = new("qwen3", "Qwen3ForCausalLM", FromJson<Qwen3Config>,
        (c, dtype) => new Qwen3ForCausalLM((Qwen3Config)c, dtype), (size, vocab) => Preset(size, vocab), Sizes, "qwen3");

    /// <summary>tiny and small for tests (head_dim deliberately not hidden / heads), then Qwen3-0.6B/1.7B/4B/8B.</summary>
    public static new Qwen3Config Preset(string size, int vocabSize)
    {
        (int h, int l, int nh, int kv, int hd, int ff, bool tied) = size switch
        {
            "tiny" => (64, 2, 4, 2, 32, 176, true),
            "small" => (256, 4, 8, 2, 64, 704, true),
            "0.6b" => (1024, 28, 16, 8, 128, 3072, true),
            "1.7b" => (2048, 28, 16, 8, 128, 6144, true),
            "4b" => (2560, 36, 32, 8, 128, 9728, true),
            "8b" => (4096, 36, 32, 8, 128, 12288, false),
            _ => throw new R1SharpException($"unknown size \"{size}\" for qwen3 (expected one of {string.Join(", ", Sizes)})"),
        };
        return new Qwen3Config
        {
            VocabSize = vocabSize, HiddenSize = h, NumHiddenLayers = l, NumAttentionHeads = nh, NumKeyValueHeads = kv, HeadDim = hd,
            IntermediateSize = ff, TieWordEmbeddings = tied, Architectures = ["Qwen3ForCausalLM"],
            RopeTheta = size is "tiny" or "small" ? 10000.0 : 1000000.0, MaxPositionEmbeddings = size is "tiny" or "small" ? 32768 : 40960,
        };
    }

    public override void Validate(string source)
    {
        base.Validate(source);
        // DeepSeek-R1-0528-Qwen3-8B's config asks for YaRN (factor 4 over 32768 positions), as transformers applies it.
        if (RopeScaling is { Type: not ("default" or "yarn") } rs) throw new ConfigValueException(source, rs.TypeKeyName, $"{Excerpt.Quote(rs.Type)} is not supported for qwen3 (expected yarn)");
        CheckNoSlidingWindow(source);
    }

    protected override long LayerExtraParameters() => 2L * HeadDim;
}

/// <summary>Qwen3Attention: LlamaAttention with q_norm and k_norm applied per head before RoPE.</summary>
public sealed class Qwen3Attention : LlamaAttention
{
    public readonly RmsNorm q_norm, k_norm;

    public Qwen3Attention(Qwen3Config c, int layer, ScalarType dtype) : base(c, layer, dtype)
    {
        q_norm = new RmsNorm(c.HeadDim, c.RmsNormEps, dtype);
        k_norm = new RmsNorm(c.HeadDim, c.RmsNormEps, dtype);
        register_module("q_norm", q_norm);
        register_module("k_norm", k_norm);
    }

    protected override (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        var (q, k, v) = base.Project(x);
        var (qn, kn) = (q_norm.forward(q), k_norm.forward(k));
        if (!is_grad_enabled()) { q.Dispose(); k.Dispose(); } // inference: the projections are read (see Project)
        return (qn, kn, v);
    }
}

/// <summary>Qwen3ForCausalLM: Llama's stack with <see cref="Qwen3Attention"/> in every layer.</summary>
public sealed class Qwen3ForCausalLM(Qwen3Config config, ScalarType dtype = ScalarType.Float32)
    : LlamaForCausalLM(config, i => new Qwen3Attention(config, i, dtype), dtype);
