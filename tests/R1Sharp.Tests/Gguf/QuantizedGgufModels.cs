using System.Text.Json.Nodes;
using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Gguf;

[CollectionDefinition(Name)]
public sealed class QuantizedGgufCollection : ICollectionFixture<QuantizedGgufModels>
{
    public const string Name = "quantized gguf models";
}

/// <summary>
/// Small random-weight Qwen2 (untied, q/k/v biases), Llama (untied, every bias, interleaved RoPE: its q/k rows are
/// permuted in the file) and Qwen3 (tied, q/k norms) models with hidden size 256, so their matrices take the K-quants
/// (rows of whole 256-value blocks), each saved as a folder, exported to GGUF f32, and quantized by `r1 quantize`'s code
/// to Q4_K_M and Q8_0. Their tokenizer is byte-level BPE with Qwen2's pre-tokenizer and a vocabulary of 320, so the
/// embedding and output matrices stay small.
/// </summary>
public sealed class QuantizedGgufModels : IDisposable
{
    public static readonly string[] Architectures = ["qwen2", "llama", "qwen3"];
    public static readonly string[] Types = ["q4_k_m", "q8_0"];
    const int Vocab = 320;
    readonly TempDir _dir = new();

    public string TokenizerDir => _dir.File("tokenizer");
    public HfTokenizer Tokenizer { get; }

    public QuantizedGgufModels()
    {
        WriteTokenizer(TokenizerDir);
        Tokenizer = HfTokenizer.FromFolder(TokenizerDir);
        foreach (var arch in Architectures)
        {
            using (var model = Build(arch))
                ModelFolder.Save(model, Folder(arch), TokenizerDir);
            GgufExport.Export(Folder(arch), F32(arch));
            foreach (var type in Types) GgufExport.Export(Folder(arch), Quantized(arch, type), GgufExport.ParseType(type));
        }
    }

    public string Folder(string arch) => _dir.File(arch);
    public string F32(string arch) => _dir.File(arch + ".f32.gguf");
    public string Quantized(string arch, string type) => _dir.File($"{arch}.{type}.gguf");
    public string Scratch(string name) => _dir.File(name);

    static CausalLM Build(string arch)
    {
        var cfg = (LlamaConfig)ModelPresets.Create(arch, "tiny", Vocab, null, [258]) with
        {
            HiddenSize = 256, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 512, NumHiddenLayers = 2,
            TieWordEmbeddings = arch == "qwen3",
        };
        if (arch == "llama") cfg = cfg with { AttentionBias = true };
        if (arch == "qwen3") cfg = cfg with { HeadDim = 64 };
        var model = CausalLM.Create(cfg);
        model.InitializeRandom(5, std: 0.1);
        using var noGrad = no_grad();
        var gen = new Generator(6);
        foreach (var (name, p) in model.named_parameters())
            if (name.EndsWith(".bias") || name.EndsWith("norm.weight"))
            {
                using var r = normal(name.EndsWith(".bias") ? 0 : 1, 0.1, p.shape, generator: gen);
                p.copy_(r);
            }
        return model;
    }

    /// <summary>Byte-level BPE over the 256 byte symbols with a few merges, Qwen2's Split regex, three added tokens
    /// (ids 256-258) and a ChatML template.</summary>
    static void WriteTokenizer(string dir)
    {
        Directory.CreateDirectory(dir);
        var vocab = new JsonObject();
        int id = 0;
        foreach (char c in ByteLevel.ByteToChar) vocab[c.ToString()] = id++;
        string[][] merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"], ["Ġ", "a"]];
        var added = new JsonArray();
        foreach (var t in new[] { "<|endoftext|>", "<|im_start|>", "<|im_end|>" })
            added.Add(new JsonObject { ["id"] = id++, ["content"] = t, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        foreach (var m in merges) vocab[m[0] + m[1]] = id++;
        const string qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = qwen2 }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false, ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray()),
            },
        };
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast", ["bos_token"] = null, ["eos_token"] = "<|im_end|>", ["pad_token"] = "<|endoftext|>",
            ["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
    }

    public void Dispose() => _dir.Dispose();
}
