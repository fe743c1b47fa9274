using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace R1Sharp.Models;

// Qwen2 / Qwen2.5 (transformers' modeling_qwen2.py): Llama's decoder with a bias on the q, k and v projections
// (none on o), and RMSNorm eps 1e-6. The architecture of DeepSeek-R1-Distill-Qwen-1.5B/7B/14B/32B.

/// <summary>config.json of model_type "qwen2"; defaults are DeepSeek-R1-Distill-Qwen-1.5B's (Qwen2.5-Math-1.5B).</summary>
public sealed record Qwen2Config : LlamaConfig
{
    public Qwen2Config()
    {
        ModelType = "qwen2";
        VocabSize = 151936; HiddenSize = 1536; NumHiddenLayers = 28; MaxPositionEmbeddings = 131072;
        IntermediateSize = 8960; NumAttentionHeads = 12; NumKeyValueHeads = 2;
        RmsNormEps = 1e-6; RopeTheta = 10000.0; RopeScaling = null;
        AttentionBias = null; MlpBias = null; // no such keys in Qwen2's config.json
    }

    /// <summary>Qwen2 always has q/k/v biases and no o bias; config.json has no key for it.</summary>
    [JsonIgnore] public override bool QkvBias => true;
    [JsonIgnore] public override bool OutputBias => false;
    [JsonIgnore] public override string ArchitectureName => "Qwen2ForCausalLM";

    public static new ModelFamily Family { get; } = new("qwen2", "Qwen2ForCausalLM", FromJson<Qwen2Config>,
        (c, dtype) => new Qwen2ForCausalLM((Qwen2Config)c, dtype), (size, vocab) => Preset(size, vocab), DenseSizes, "qwen2");

    public static new Qwen2Config Preset(string size, int vocabSize)
    {
        var (h, l, nh, kv, ff, tied) = DenseShape(size);
        return new Qwen2Config
        {
            VocabSize = vocabSize, HiddenSize = h, NumHiddenLayers = l, NumAttentionHeads = nh, NumKeyValueHeads = kv,
            IntermediateSize = ff, TieWordEmbeddings = tied, MaxPositionEmbeddings = 32768,
            RopeTheta = size is "tiny" or "small" ? 10000.0 : 1000000.0, Architectures = ["Qwen2ForCausalLM"],
        };
    }

    public override void Validate(string source)
    {
        base.Validate(source);
        if (RopeScaling is { Type: not ("default" or "yarn") } rs) throw new ConfigValueException(source, rs.TypeKeyName, $"{Excerpt.Quote(rs.Type)} is not supported for qwen2 (expected yarn)");
        CheckNoSlidingWindow(source);
    }
}

/// <summary>Qwen2ForCausalLM: Llama's modules, built with Qwen2's biases.</summary>
public sealed class Qwen2ForCausalLM(Qwen2Config config, ScalarType dtype = ScalarType.Float32) : LlamaForCausalLM(config, dtype);
