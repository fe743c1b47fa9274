using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Gguf;

/// <summary>The GGUF test classes share one <see cref="GgufTestModels"/>, built once per test run.</summary>
[CollectionDefinition(Name)]
public sealed class GgufModelsCollection : ICollectionFixture<GgufTestModels>
{
    public const string Name = "gguf test models";
}

/// <summary>
/// Tiny random-weight Qwen2 and Llama folders with the real Qwen3 tokenizer, each exported to GGUF f32, built once per
/// test run. Shapes are small but complete: GQA (4 heads, 2 kv heads, head_dim 32), q/k/v biases with random
/// values (Llama's too, so the q/k bias permutation is exercised), Llama 3 rope scaling, tied (Qwen2) and untied
/// (Llama) output. std 0.1 makes attention far from uniform, so a RoPE mistake shows in the logits.
/// </summary>
public sealed class GgufTestModels : IDisposable
{
    public static string Qwen3Tokenizer => SharedData.Path("tokenizers", "qwen3");
    readonly TempDir _dir = new();
    public HfTokenizer Tokenizer { get; } = HfTokenizer.FromFolder(Qwen3Tokenizer);

    public GgufTestModels()
    {
        foreach (var arch in Architectures)
        {
            string folder = Folder(arch);
            using var model = Build(arch, Tokenizer);
            ModelFolder.Save(model, folder, Qwen3Tokenizer);
            GgufExport.Export(folder, Gguf(arch));
        }
    }

    /// <summary>The families exported for llama.cpp: Qwen2 (q/k/v bias), Llama (interleaved RoPE, all biases), Qwen3
    /// (per-head q/k norms, head_dim independent of hidden_size / heads).</summary>
    public static readonly string[] Architectures = ["qwen2", "llama", "qwen3"];

    public string Folder(string arch) => _dir.File(arch);
    public string Gguf(string arch) => _dir.File(arch + ".gguf");
    public string Scratch(string name) => _dir.File(name);

    public static CausalLM Build(string arch, HfTokenizer tok, int seed = 11)
    {
        int vocab = (tok.VocabSize + 63) / 64 * 64;
        bool llama = arch == "llama";
        var cfg = (LlamaConfig)ModelPresets.Create(arch, "tiny", vocab, tok.BosTokenId, tok.EosTokenId is { } e ? [e] : []) with
        {
            HiddenSize = 128, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 256,
            NumHiddenLayers = 2, TieWordEmbeddings = !llama,
        };
        if (llama) cfg = cfg with { AttentionBias = true }; // q/k/v and o biases: Llama's option, exported as llama.cpp reads it
        if (arch == "qwen3") cfg = cfg with { HeadDim = 48 }; // not hidden_size / heads: Qwen3 sizes heads on their own
        var model = CausalLM.Create(cfg);
        model.InitializeRandom(seed, std: 0.1);
        using var noGrad = no_grad();
        var gen = new TorchSharp.torch.Generator((ulong)seed + 1);
        foreach (var (name, p) in model.named_parameters())
            if (name.EndsWith(".bias") || name.EndsWith("norm.weight"))
            {
                using var r = normal(name.EndsWith(".bias") ? 0 : 1, 0.1, p.shape, generator: gen);
                p.copy_(r);
            }
        return model;
    }

    public void Dispose() => _dir.Dispose();
}
