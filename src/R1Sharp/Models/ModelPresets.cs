using System.Text.Json.Nodes;

namespace R1Sharp.Models;

/// <summary>
/// Named shapes for `r1 init`: tiny and small for tests and experiments, and the shapes of the real R1-family
/// models (random weights, for benchmarks). The vocabulary size comes from the tokenizer the model is built for.
/// </summary>
public static class ModelPresets
{
    public static IReadOnlyList<string> Sizes { get; } = ["tiny", "small", "0.5b", "1.5b", "7b", "8b"];

    public static ModelConfig Create(string arch, string size, int vocabSize, int? bosTokenId = null, IReadOnlyList<int>? eosTokenIds = null)
    {
        if (arch is not ("qwen2" or "llama")) throw new R1SharpException($"unknown architecture \"{arch}\" (expected qwen2 or llama)");
        bool llama = arch == "llama";
        // (hidden, layers, heads, kv heads, intermediate, tied): Qwen2.5-0.5B, R1-Distill-Qwen-1.5B/7B, R1-Distill-Llama-8B
        (int h, int l, int nh, int kv, int ff, bool tied) = size switch
        {
            "tiny" => (64, 2, 4, 2, 176, true),
            "small" => (256, 4, 8, 2, 704, true),
            "0.5b" => (896, 24, 14, 2, 4864, true),
            "1.5b" => (1536, 28, 12, 2, 8960, false),
            "7b" => (3584, 28, 28, 4, 18944, false),
            "8b" => (4096, 32, 32, 8, 14336, false),
            _ => throw new R1SharpException($"unknown size \"{size}\" (expected one of {string.Join(", ", Sizes)})"),
        };
        var raw = new JsonObject
        {
            ["architectures"] = new JsonArray(llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM"),
            ["model_type"] = arch,
            ["initializer_range"] = 0.02,
            ["use_cache"] = true,
        };
        return new ModelConfig
        {
            ModelType = arch,
            VocabSize = vocabSize,
            HiddenSize = h,
            IntermediateSize = ff,
            NumHiddenLayers = l,
            NumAttentionHeads = nh,
            NumKeyValueHeads = kv,
            HeadDim = h / nh,
            MaxPositionEmbeddings = llama ? 131072 : 32768,
            RmsNormEps = llama ? 1e-5 : 1e-6,
            RopeTheta = llama ? 500000.0 : (size is "tiny" or "small" ? 10000.0 : 1000000.0),
            RopeScaling = llama ? new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192) : null,
            TieWordEmbeddings = tied,
            QkvBias = !llama,
            OutputBias = false,
            MlpBias = false,
            TorchDtype = "float32",
            BosTokenId = bosTokenId,
            EosTokenIds = eosTokenIds ?? [],
            Raw = raw,
        };
    }
}
