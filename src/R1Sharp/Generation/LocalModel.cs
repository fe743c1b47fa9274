using System.Text.Json.Nodes;
using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>
/// A model loaded for use: weights, tokenizer, chat template, end tokens and the recommended sampling, from a Hugging
/// Face folder or a GGUF file (quantized weights read in place, tokenizer and template from its metadata, DeepSeek's
/// recommended sampling as `r1 import gguf` would write it). The one entry point that the CLI, evaluation and the
/// server share.
/// </summary>
public sealed class LocalModel : IDisposable
{
    /// <summary>The model folder or GGUF file.</summary>
    public string Folder { get; }
    public CausalLM Model { get; }
    public HfTokenizer Tokenizer { get; }
    public ChatTemplate? Template { get; }
    public JsonObject? GenerationConfig { get; }
    public TextGenerator Generator { get; }
    /// <summary>The LoRA adapter folder applied over the weights, if any.</summary>
    public string? Adapter { get; private set; }

    readonly SamplingOptions defaultSampling;

    LocalModel(string folder, CausalLM model, HfTokenizer tokenizer, ChatTemplate? template, JsonObject? genConfig, SamplingOptions sampling)
    {
        Folder = folder; Model = model; Tokenizer = tokenizer; Template = template; GenerationConfig = genConfig; defaultSampling = sampling;
        Generator = new TextGenerator(model, tokenizer,
            TextGenerator.CollectEosIds(model.Config, tokenizer, genConfig, Path.Combine(folder, ModelFolder.GenerationConfigFile)));
    }

    /// <param name="dir">a Hugging Face model folder, or a GGUF file</param>
    /// <param name="device">"cpu", "cuda", "cuda:1"; null is the CPU</param>
    /// <param name="dtype">"f32", "bf16"; null keeps the checkpoint's dtype (float16 runs as float32 on the CPU)</param>
    /// <param name="adapter">a PEFT LoRA adapter folder applied over the weights (not merged); null: none</param>
    public static LocalModel Load(string dir, string? device = null, string? dtype = null, string? adapter = null)
    {
        var lm = LoadBase(dir, device, dtype);
        if (adapter is null) return lm;
        try { Models.Lora.LoraModel.Of(lm.Model).Load(adapter); }
        catch { lm.Dispose(); throw; }
        lm.Adapter = adapter;
        return lm;
    }

    static LocalModel LoadBase(string dir, string? device, string? dtype)
    {
        if (GgufModel.IsGgufFile(dir)) return LoadGguf(dir, device, dtype);
        ModelFolder.Validate(dir);
        if (!File.Exists(Path.Combine(dir, "tokenizer.json"))) throw new R1SharpException($"{dir}: no tokenizer.json in the model folder");
        var tokenizer = HfTokenizer.FromFolder(dir);
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        ChatTemplate? template = null;
        if (File.Exists(configPath) && JsonNode.Parse(File.ReadAllText(configPath)) is JsonObject tc && tc.ContainsKey("chat_template"))
            template = ChatTemplate.FromTokenizerConfig(configPath);
        var genConfig = ModelFolder.ReadGenerationConfig(dir);
        // generation_config.json's sampling is checked before the weights load, so a bad value costs no wait.
        var sampling = SamplingOptions.FromGenerationConfig(genConfig, Path.Combine(dir, ModelFolder.GenerationConfigFile));
        var dev = ParseDevice(device);
        var model = ModelFolder.Load(dir, dev, dtype is null ? null : ModelFolder.ParseDType(dtype));
        try { return new LocalModel(dir, model, tokenizer, template, genConfig, sampling); }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    static LocalModel LoadGguf(string path, string? device, string? dtype)
    {
        if (!string.IsNullOrEmpty(device) && device != "cpu") throw new R1SharpException($"{path}: GGUF files run on the CPU (--device {device} needs a Hugging Face folder)");
        var scalar = dtype is null ? (ScalarType?)null : ModelFolder.ParseDType(dtype);
        HfTokenizer tokenizer;
        ChatTemplate? template;
        using (var g = GgufFile.Open(path)) (tokenizer, template) = GgufVocab.ReadTokenizer(g);
        // Building the tokenizer from the metadata leaves ~60 MB of garbage (the header's arrays: the vocabulary and
        // merges as strings, boxed token types) that an ordinary collection frees but keeps committed: give it back to
        // the system before the file's pages come in, once per load.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var model = GgufModel.Load(path, scalar);
        var genConfig = ModelFolder.DefaultGenerationConfig(model.Config);
        return new LocalModel(path, model, tokenizer, template, genConfig, SamplingOptions.FromGenerationConfig(genConfig, path));
    }

    /// <summary>The weights alone of a model folder or GGUF file (e.g. for a server's weight swap).</summary>
    public static CausalLM LoadWeights(string path, Device device, ScalarType dtype) =>
        GgufModel.IsGgufFile(path) ? GgufModel.Load(path, dtype) : ModelFolder.Load(path, device, dtype);

    public static Device ParseDevice(string? name)
    {
        if (string.IsNullOrEmpty(name) || name == "cpu") return CPU;
        if (name.StartsWith("cuda"))
        {
            if (!cuda.is_available()) throw new R1SharpException($"device \"{name}\" requested, but this libtorch has no CUDA (reference a CUDA libtorch package to use the GPU)");
            return new Device(name);
        }
        throw new R1SharpException($"unknown device \"{name}\" (expected cpu, cuda or cuda:N)");
    }

    /// <summary>Sampling from generation_config.json (DeepSeek recommends temperature 0.6, top-p 0.95), else plain
    /// sampling (<see cref="SamplingOptions.FromGenerationConfig"/>).</summary>
    public SamplingOptions DefaultSampling() => defaultSampling;

    /// <summary>The prompt for a conversation: the chat template's rendering with the generation prompt, or, for a
    /// model without a template, the last user message as it is.</summary>
    public (string Prompt, bool OpensThink) RenderChat(IReadOnlyList<ChatMessage> messages)
    {
        if (Template is null) return (messages.Last(m => m.Role == "user").Content, false);
        string prompt = Template.Render(messages, addGenerationPrompt: true);
        return (prompt, prompt.TrimEnd(' ').EndsWith(ReasoningSplit.Open + "\n") || prompt.EndsWith(ReasoningSplit.Open));
    }

    public void Dispose() => Model.Dispose();
}
