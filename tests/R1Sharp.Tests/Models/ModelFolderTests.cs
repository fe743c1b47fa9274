using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

public class ModelFolderTests
{
    [Theory]
    [InlineData("qwen2", "f32")]
    [InlineData("llama", "bf16")]
    public void SaveThenLoadIsBitIdentical(string arch, string dtype)
    {
        using var dir = new TempDir();
        var type = ModelFolder.ParseDType(dtype);
        var cfg = ModelPresets.Create(arch, "tiny", 320, bosTokenId: 1, eosTokenIds: [2, 3]);
        using var model = CausalLM.Create(cfg, type);
        model.InitializeRandom(11);
        string folder = Path.Combine(dir.Path, "m");
        ModelFolder.Save(model, folder, SharedData.Path("tokenizers", "qwen3"));

        foreach (var f in new[] { "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(folder, f)), f);
        using var loaded = ModelFolder.Load(folder);
        Assert.Equal(type, loaded.DType);
        Assert.Equal((cfg with { TorchDtype = loaded.Config.TorchDtype }).ToJson().ToJsonString(), loaded.Config.ToJson().ToJsonString());
        Assert.Equal([2, 3], loaded.Config.EosTokenIds);
        var a = model.StateDict();
        var b = loaded.StateDict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, t) in a)
            Assert.True(t.bytes.ToArray().AsSpan().SequenceEqual(b[name].bytes.ToArray()), name);
    }

    [Fact]
    public void ParameterNamesAreHuggingFaces()
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 128);
        using var model = CausalLM.Create(cfg);
        var names = model.StateDict().Keys.ToHashSet();
        Assert.Contains("model.embed_tokens.weight", names);
        Assert.Contains("model.layers.1.self_attn.q_proj.bias", names);
        Assert.Contains("model.layers.0.mlp.down_proj.weight", names);
        Assert.Contains("model.layers.0.post_attention_layernorm.weight", names);
        Assert.Contains("model.norm.weight", names);
        Assert.DoesNotContain("lm_head.weight", names); // tied
        Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", names);
        using var llama = CausalLM.Create(ModelPresets.Create("llama", "small", 128));
        Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", llama.StateDict().Keys);
        Assert.DoesNotContain("model.layers.0.self_attn.q_proj.bias", llama.StateDict().Keys);
    }

    [Fact]
    public void MissingFolderAndConfigGiveOneClearMessage()
    {
        using var dir = new TempDir();
        var e1 = Assert.Throws<R1SharpException>(() => ModelFolder.Load(Path.Combine(dir.Path, "nope")));
        Assert.Contains("model folder not found", e1.Message);
        var e2 = Assert.Throws<R1SharpException>(() => ModelFolder.Load(dir.Path));
        Assert.Contains("no config.json", e2.Message);
        File.WriteAllText(dir.File("config.json"), "{ not json");
        File.WriteAllText(dir.File("model.safetensors"), "");
        var e3 = Assert.Throws<R1SharpException>(() => ModelFolder.Load(dir.Path));
        Assert.Contains("config.json", e3.Message);
    }

    [Fact]
    public void WrongShapeInCheckpointNamesTheTensor()
    {
        using var dir = new TempDir();
        var cfg = ModelPresets.Create("qwen2", "tiny", 256);
        using (var model = CausalLM.Create(cfg)) ModelFolder.Save(model, dir.Path);
        // Same folder, but the config now claims a larger vocabulary: the embedding no longer fits.
        var raw = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        raw["vocab_size"] = 320;
        File.WriteAllText(dir.File("config.json"), raw.ToJsonString());
        var e = Assert.Throws<R1SharpException>(() => ModelFolder.Load(dir.Path));
        Assert.Contains("model.embed_tokens.weight", e.Message);
    }
}
