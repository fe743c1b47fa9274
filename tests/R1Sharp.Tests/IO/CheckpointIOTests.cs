using System.Text.Json;
using R1Sharp.IO;
using TorchSharp;
using static R1Sharp.Tests.IO.SafetensorsTestUtil;

namespace R1Sharp.Tests.IO;

public class CheckpointIOTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    /// <summary>A small state dict in HF naming: 3 float tensors of 4 KB each, a bf16 one and an int buffer.</summary>
    static Dictionary<string, torch.Tensor> StateDict()
    {
        var g = new torch.Generator(11);
        return new()
        {
            ["model.embed_tokens.weight"] = torch.randn(32, 32, generator: g),
            ["model.layers.0.self_attn.q_proj.weight"] = torch.randn(32, 32, generator: g),
            ["model.layers.0.mlp.down_proj.weight"] = torch.randn(32, 32, generator: g),
            ["model.norm.weight"] = torch.randn(32, generator: g).to(torch.ScalarType.BFloat16),
            ["model.position_ids"] = torch.arange(16),
        };
    }

    static Dictionary<string, torch.Tensor> ZerosLike(Dictionary<string, torch.Tensor> sd) =>
        sd.ToDictionary(kv => kv.Key, kv => torch.zeros_like(kv.Value));

    string[] FolderFiles() => Directory.GetFiles(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Fact]
    public void SmallModelSavesAsOneFileAndLoadsBitExact()
    {
        var sd = StateDict();
        CheckpointIO.Save(_dir.Path, sd);
        Assert.Equal(["model.safetensors"], FolderFiles());
        Assert.Equal([_dir.File("model.safetensors")], CheckpointIO.WeightFiles(_dir.Path));
        using (var f = SafetensorsFile.Open(_dir.File("model.safetensors")))
            Assert.Equal("pt", f.Metadata["format"]);

        var loaded = ZerosLike(sd);
        CheckpointIO.LoadInto(_dir.Path, loaded);
        foreach (var (name, t) in sd) Assert.True(BitEqual(t, loaded[name]), name);
    }

    [Fact]
    public void LargeModelIsShardedWithATransformersStyleIndex()
    {
        var sd = StateDict();
        CheckpointIO.Save(_dir.Path, sd, maxShardBytes: 8192); // two 4 KB matrices fit in a shard
        Assert.Equal(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"], FolderFiles());

        string indexText = File.ReadAllText(_dir.File("model.safetensors.index.json"));
        Assert.StartsWith("{\n  \"metadata\": {\n    \"total_size\": 12480\n  },\n  \"weight_map\": {\n", indexText);
        Assert.EndsWith("}\n", indexText);
        using var index = JsonDocument.Parse(indexText);
        var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToList();
        Assert.Equal(sd.Keys.Order(StringComparer.Ordinal), map.Select(p => p.Name)); // sorted keys, as json.dumps(sort_keys=True)
        Assert.Equal("model-00001-of-00002.safetensors", map.Single(p => p.Name == "model.layers.0.self_attn.q_proj.weight").Value.GetString());
        Assert.Equal("model-00002-of-00002.safetensors", map.Single(p => p.Name == "model.norm.weight").Value.GetString());
        long totalBytes = sd.Values.Sum(t => t.numel() * t.element_size());
        Assert.Equal(totalBytes, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());

        Assert.Equal(2, CheckpointIO.WeightFiles(_dir.Path).Count);
        var loaded = ZerosLike(sd);
        CheckpointIO.LoadInto(_dir.Path, loaded);
        foreach (var (name, t) in sd) Assert.True(BitEqual(t, loaded[name]), name);
    }

    [Fact]
    public void ShardPlanFollowsTransformers()
    {
        // Greedy in the given order; a tensor larger than the limit sits alone in its shard.
        long[] sizes = [4, 4, 4, 20, 1, 1];
        var tensors = sizes.Select((n, i) => new KeyValuePair<string, torch.Tensor>($"t{i}", torch.zeros(n, dtype: torch.ScalarType.Byte))).ToList();
        CheckpointIO.Save(_dir.Path, tensors, maxShardBytes: 8);
        using var index = JsonDocument.Parse(File.ReadAllText(_dir.File("model.safetensors.index.json")));
        var shardOf = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()![6..11]);
        Assert.Equal(["00001", "00001", "00002", "00003", "00004", "00004"], tensors.Select(t => shardOf[t.Key]));
        Assert.Equal(34, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
    }

    [Fact]
    public void SaveConvertsFloatTensorsToTheRequestedDType()
    {
        var sd = StateDict();
        CheckpointIO.Save(_dir.Path, sd, dtype: torch.ScalarType.BFloat16);
        using (var f = SafetensorsFile.Open(_dir.File("model.safetensors")))
        {
            Assert.Equal("BF16", f.Entries["model.embed_tokens.weight"].DType);
            Assert.Equal("I64", f.Entries["model.position_ids"].DType); // integers are never converted
        }
        var loaded = ZerosLike(sd); // float32 parameters widen the stored bf16 exactly
        CheckpointIO.LoadInto(_dir.Path, loaded);
        using var expected = sd["model.embed_tokens.weight"].to(torch.ScalarType.BFloat16).to(torch.ScalarType.Float32);
        Assert.True(BitEqual(expected, loaded["model.embed_tokens.weight"]));
        Assert.True(BitEqual(sd["model.position_ids"], loaded["model.position_ids"]));
    }

    [Fact]
    public void SwitchingLayoutRemovesTheOldWeightFiles()
    {
        var sd = StateDict();
        File.WriteAllText(_dir.File("config.json"), "{}");
        CheckpointIO.Save(_dir.Path, sd, maxShardBytes: 4096);
        Assert.Equal(4, CheckpointIO.WeightFiles(_dir.Path).Count);
        CheckpointIO.Save(_dir.Path, sd);
        Assert.Equal(["config.json", "model.safetensors"], FolderFiles());
        CheckpointIO.Save(_dir.Path, sd, maxShardBytes: 8192);
        Assert.Equal(["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"], FolderFiles());
    }

    [Fact]
    public void DuplicateNamesAreRefusedBeforeWriting()
    {
        using var a = torch.ones(4);
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.Save(_dir.Path, [new("w", a), new("x", a), new("w", a)], maxShardBytes: 16));
        Assert.Contains("'w'", e.Message);
        Assert.Empty(FolderFiles());
    }

    [Fact]
    public void LoadsIntoAModuleInPlace()
    {
        using var source = torch.nn.Linear(6, 4);
        CheckpointIO.Save(_dir.Path, source.state_dict());
        using var target = torch.nn.Linear(6, 4);
        var weight = target.weight!;
        CheckpointIO.LoadInto(_dir.Path, target.state_dict());
        Assert.Same(weight, target.weight);
        Assert.True(BitEqual(source.weight!, target.weight!));
        Assert.True(BitEqual(source.bias!, target.bias!));
        Assert.True(target.weight!.requires_grad);
    }

    [Fact]
    public void MissingTensorNamesTensorAndShape()
    {
        var sd = StateDict();
        CheckpointIO.Save(_dir.Path, sd);
        var wanted = ZerosLike(sd);
        wanted["lm_head.weight"] = torch.zeros(64, 32);
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(_dir.Path, wanted));
        Assert.Contains("'lm_head.weight'", e.Message);
        Assert.Contains("[64, 32]", e.Message);
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void WrongShapeNamesFileTensorAndBothShapesAndCopiesNothing()
    {
        var sd = StateDict();
        CheckpointIO.Save(_dir.Path, sd, maxShardBytes: 8192);
        var wanted = ZerosLike(sd);
        wanted["model.norm.weight"] = torch.zeros(48, dtype: torch.ScalarType.BFloat16);
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(_dir.Path, wanted));
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        Assert.Contains("'model.norm.weight'", e.Message);
        Assert.Contains("expected shape [48]", e.Message);
        Assert.Contains("found [32]", e.Message);
        // Checked before copying: the parameters that were fine are still untouched.
        Assert.Equal(0f, wanted["model.embed_tokens.weight"].abs().sum().item<float>());
    }

    [Fact]
    public void ExtraTensorIsAnErrorUnlessIgnored()
    {
        var sd = StateDict();
        CheckpointIO.Save(_dir.Path, sd);
        var wanted = ZerosLike(sd);
        wanted.Remove("model.position_ids");
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(_dir.Path, wanted));
        Assert.Contains("'model.position_ids'", e.Message);
        Assert.Contains("model.safetensors", e.Message);

        CheckpointIO.LoadInto(_dir.Path, wanted, ignoreExtra: name => name.EndsWith("position_ids"));
        Assert.True(BitEqual(sd["model.norm.weight"], wanted["model.norm.weight"]));
    }

    [Fact]
    public void IndexNamingAMissingShard()
    {
        CheckpointIO.Save(_dir.Path, StateDict(), maxShardBytes: 8192);
        File.Delete(_dir.File("model-00002-of-00002.safetensors"));
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.WeightFiles(_dir.Path));
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Contains("'model-00002-of-00002.safetensors'", e.Message);
        Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(_dir.Path, ZerosLike(StateDict())));
    }

    [Fact]
    public void IndexThatDisagreesWithTheShards()
    {
        CheckpointIO.Save(_dir.Path, StateDict(), maxShardBytes: 8192);
        string indexPath = _dir.File("model.safetensors.index.json");
        File.WriteAllText(indexPath, File.ReadAllText(indexPath).Replace(
            "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"", "\"model.norm.weight\": \"model-00001-of-00002.safetensors\""));
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.LoadInto(_dir.Path, ZerosLike(StateDict())));
        Assert.Contains("'model.norm.weight'", e.Message);
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
    }

    [Fact]
    public void BadIndexJson()
    {
        File.WriteAllText(_dir.File("model.safetensors.index.json"), "{\"weight_map\": ");
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.WeightFiles(_dir.Path));
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Contains("bad JSON", e.Message);
    }

    [Fact]
    public void FolderWithoutWeights()
    {
        var e = Assert.Throws<R1SharpException>(() => CheckpointIO.WeightFiles(_dir.Path));
        Assert.Contains(_dir.Path, e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("model.safetensors.index.json", e.Message);

        var missing = Assert.Throws<R1SharpException>(() => CheckpointIO.WeightFiles(_dir.File("no-such-folder")));
        Assert.Contains("no-such-folder", missing.Message);
    }
}
