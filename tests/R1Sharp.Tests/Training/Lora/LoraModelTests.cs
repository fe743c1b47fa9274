using System.Text.Json.Nodes;
using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Lora;

public class LoraModelTests
{
    static LoraConfig AllLinear(int r = 4) => new() { R = r, LoraAlpha = 8, TargetModules = [LoraConfig.AllLinear], TargetIsPattern = true };

    [Fact]
    public void FreshAdapter_BIsZero_GivesTheBaseOutputExactly()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok);
        var b = LoraTestModels.Batch();
        var before = LoraTestModels.Logits(m, b);
        var lora = LoraModel.Of(m);
        lora.AddFresh(AllLinear(), seed: 1);
        // Every decoder linear carries one (7 per layer × 2 layers), the tied output head none.
        Assert.Equal(14 * 2, lora.NamedParameters().Count());
        Assert.All(lora.NamedParameters().Where(p => p.Name.EndsWith("lora_B.weight")), p => Assert.Equal(0f, p.Param.abs().max().item<float>()));
        Assert.True(before.SequenceEqual(LoraTestModels.Logits(m, b)));
    }

    [Fact]
    public void Merged_AndUnmerged_GiveTheSameLogits_AndAdaptersOffGiveTheBase()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok, tied: false);
        var b = LoraTestModels.Batch();
        var baseLogits = LoraTestModels.Logits(m, b);
        var lora = LoraModel.Of(m);
        lora.AddFresh(AllLinear() with { UseRslora = true }, seed: 1);
        LoraTestModels.RandomizeB(lora);
        var unmerged = LoraTestModels.Logits(m, b);
        Assert.True(LoraTestModels.MaxAbsDiff(baseLogits, unmerged) > 1e-3, "the adapter changed nothing");
        using (lora.Disabled()) Assert.True(baseLogits.SequenceEqual(LoraTestModels.Logits(m, b)));
        lora.MergeAndUnload();
        Assert.Null(m.Lora);
        var merged = LoraTestModels.Logits(m, b);
        Assert.True(LoraTestModels.MaxAbsDiff(unmerged, merged) < 1e-4, $"merged differs by {LoraTestModels.MaxAbsDiff(unmerged, merged)}");
    }

    [Fact]
    public void SavedAdapter_HasPeftsKeysAndConfig()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok, layers: 1);
        var lora = LoraModel.Of(m);
        lora.AddFresh(new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj", "v_proj"], TargetIsPattern = false }, seed: 1);
        using var dir = new TempDir();
        lora.Save(dir.File("adapter"), baseModel: "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B");
        // PEFT's save_pretrained: adapter_model.safetensors keys are base_model.model.<module>.lora_{A,B}.weight
        // (the adapter name "default" removed), A [r, in], B [out, r].
        using (var f = SafetensorsFile.Open(dir.File("adapter/adapter_model.safetensors")))
        {
            Assert.Equal(new[]
            {
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
            }, f.Entries.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(new long[] { 2, 64 }, f.Entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
            Assert.Equal(new long[] { 32, 2 }, f.Entry("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").Shape);
            Assert.Equal("F32", f.Entry("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").DType);
        }
        var config = JsonNode.Parse(File.ReadAllText(dir.File("adapter/adapter_config.json")))!.AsObject();
        Assert.Equal("LORA", (string?)config["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)config["task_type"]);
        Assert.Equal(2, (int)config["r"]!);
        Assert.Equal(4.0, (double)config["lora_alpha"]!);
        Assert.Equal(new[] { "q_proj", "v_proj" }, config["target_modules"]!.AsArray().Select(x => (string)x!));
        Assert.Equal("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", (string?)config["base_model_name_or_path"]);
        Assert.Equal("none", (string?)config["bias"]);
        Assert.False((bool)config["use_rslora"]!);
    }

    [Fact]
    public void APeftLayoutAdapterWrittenByHand_Loads_AndAppliesAlphaOverRTimesBA()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok, layers: 1);
        var b = LoraTestModels.Batch();
        using var dir = new TempDir();
        string adapter = dir.File("peft");
        Directory.CreateDirectory(adapter);
        // adapter_config.json as PEFT 0.13's LoraConfig.save_pretrained writes it (keys from PEFT's documentation).
        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), """
            {
              "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "Qwen/Qwen2.5-0.5B",
              "bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
              "layer_replication": null, "layers_pattern": null, "layers_to_transform": null, "loftq_config": {},
              "lora_alpha": 16, "lora_dropout": 0.05, "megatron_config": null, "megatron_core": "megatron.core",
              "modules_to_save": null, "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": null,
              "target_modules": ["o_proj"], "task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": false
            }
            """);
        var gen = new Generator(11);
        using var a = normal(0, 0.1, [4, 64], generator: gen);
        using var bb = normal(0, 0.1, [64, 4], generator: gen);
        SafetensorsWriter.Write(Path.Combine(adapter, "adapter_model.safetensors"),
        [
            KeyValuePair.Create("base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight", a),
            KeyValuePair.Create("base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight", bb),
        ], new Dictionary<string, string> { ["format"] = "pt" });

        // The reference: the same model with W_o ← W_o + (16/4)·B·A written into its weight by hand.
        using var reference = LoraTestModels.Model(tok, layers: 1);
        using (no_grad())
        {
            var o = reference.StateDict()["model.layers.0.self_attn.o_proj.weight"];
            o.add_(bb.matmul(a) * 4.0);
        }
        var expected = LoraTestModels.Logits(reference, b);
        var lora = LoraModel.Of(m);
        lora.Load(adapter);
        Assert.Equal(4, lora.Adapters[0].Config.R);
        var got = LoraTestModels.Logits(m, b);
        Assert.True(LoraTestModels.MaxAbsDiff(expected, got) < 1e-4, $"differs by {LoraTestModels.MaxAbsDiff(expected, got)}");
    }

    [Fact]
    public void AnAdapterForAnotherBase_IsOneClearError()
    {
        var tok = TinyGrpo.Tokenizer();
        using var dir = new TempDir();
        using (var small = LoraTestModels.Model(tok, hidden: 32, layers: 1))
        {
            LoraModel.Of(small).AddFresh(AllLinear(), seed: 1);
            small.Lora!.Save(dir.File("adapter"));
        }
        using var big = LoraTestModels.Model(tok, hidden: 64, layers: 1);
        var e = Assert.Throws<R1SharpException>(() => LoraModel.Of(big).Load(dir.File("adapter")));
        Assert.Contains("do not fit", e.Message);
        Assert.Contains("another base", e.Message);
        Assert.DoesNotContain("\n", e.Message);

        using var deeper = LoraTestModels.Model(tok, hidden: 32, layers: 1);
        File.Move(dir.File("adapter/adapter_model.safetensors"), dir.File("a.safetensors"));
        using (var f = SafetensorsFile.Open(dir.File("a.safetensors")))
            SafetensorsWriter.Write(dir.File("adapter/adapter_model.safetensors"),
                f.Entries.Keys.Select(k => KeyValuePair.Create(k.Replace("layers.0", "layers.5"), f.Read(k))).ToList());
        var e2 = Assert.Throws<R1SharpException>(() => LoraModel.Of(deeper).Load(dir.File("adapter")));
        Assert.Contains("model.layers.5", e2.Message);
    }

    [Theory]
    [InlineData("use_peft: true\nlora_r: 0", "lora_r must be a positive integer")]
    [InlineData("use_peft: true\nlora_r: -4", "lora_r must be a positive integer")]
    [InlineData("use_peft: true\nlora_alpha: 0", "lora_alpha must be > 0")]
    [InlineData("load_in_4bit: true", "only with use_peft")]
    public void BadLoraKeys_AreOneClearError(string keys, string message)
    {
        var e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse<GrpoConfig>(keys, "recipe.yaml"));
        Assert.StartsWith("recipe.yaml", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void AMissingTargetModule_IsOneClearError()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok, layers: 1);
        var e = Assert.Throws<R1SharpException>(() => LoraModel.Of(m).AddFresh(new LoraConfig { TargetModules = ["q_proj", "query_key_value"], TargetIsPattern = false }, 1, source: "recipe.yaml"));
        Assert.Contains("\"query_key_value\" is not a linear layer", e.Message);
        Assert.Contains("q_proj", e.Message);
        var e2 = Assert.Throws<R1SharpException>(() => LoraModel.Of(m).AddFresh(new LoraConfig { TargetModules = [".*\\.c_attn"], TargetIsPattern = true }, 1, source: "recipe.yaml"));
        Assert.Contains("matches no linear layer", e2.Message);
    }

    [Fact]
    public void RecipeKeys_AreTrlsNames()
    {
        var cfg = RecipeLoader.Parse<GrpoConfig>("""
            use_peft: true
            lora_r: 8
            lora_alpha: 16
            lora_dropout: 0.0
            lora_target_modules: [q_proj, k_proj, v_proj, o_proj]
            use_rslora: true
            gradient_checkpointing: true
            logprob_chunk_size: 64
            """, "r.yaml");
        var lora = PeftOptions.Lora(cfg)!;
        Assert.Equal(8, lora.R);
        Assert.Equal(16 / Math.Sqrt(8), lora.Scaling, 12);
        Assert.False(lora.TargetIsPattern);
        Assert.True(PeftOptions.Memory(cfg).GradientCheckpointing);
        var all = PeftOptions.Lora(RecipeLoader.Parse<R1Sharp.Training.Sft.SftConfig>("use_peft: true\nlora_target_modules: all-linear", "s.yaml"))!;
        Assert.True(all.TargetIsPattern);
        Assert.True(all.Targets("model.layers.3.mlp.down_proj", false));
        Assert.False(all.Targets("lm_head", true));
    }
}
