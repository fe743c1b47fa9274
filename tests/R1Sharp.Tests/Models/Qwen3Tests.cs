using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tests.Cli;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>Qwen3 through the model interface: its config.json, parameter names, the q/k norms' effect written out by
/// hand, and the tools (init, generate, GRPO) on it. Logit parity with llama.cpp is in GgufParityTests.</summary>
public class Qwen3Tests
{
    /// <summary>DeepSeek-R1-0528-Qwen3-8B's architecture keys as Qwen/Qwen3-8B publishes them (without its YaRN entry).</summary>
    const string Qwen3_8B = """
        {
          "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643,
          "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
          "intermediate_size": 12288, "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
          "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
          "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": false,
          "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false,
          "vocab_size": 151936
        }
        """;

    [Fact]
    public void TheQwen3_8BConfigReadsIntoItsRecordAndWritesBackEveryKey()
    {
        var raw = (JsonObject)JsonNode.Parse(Qwen3_8B)!;
        var cfg = Assert.IsType<Qwen3Config>(ModelRegistry.ReadConfig(raw, "config.json"));
        Assert.Equal((4096, 36, 32, 8, 128, 12288), (cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim, cfg.IntermediateSize));
        Assert.Equal(1e-6, cfg.RmsNormEps);
        Assert.Equal(1000000.0, cfg.RopeTheta);
        Assert.False(cfg.QkvBias);
        Assert.Equal([151645], cfg.EosTokenIds);
        Assert.Equal("bfloat16", cfg.TorchDtype);
        // 8.19 B parameters, as Qwen3-8B's model card says (8.2 B).
        Assert.InRange(cfg.ParameterCount(), 8.18e9, 8.20e9);
        // Every key, modelled or not, is written back with its value.
        var back = cfg.ToJson();
        foreach (var (key, value) in raw)
            Assert.True(Same(value, back[key]), $"{key}: {value?.ToJsonString()} came back as {back[key]?.ToJsonString()}");
    }

    /// <summary>Equal JSON, numbers compared as numbers (1e-06 and 1E-06, 1000000 and 1000000.0 are one value).</summary>
    static bool Same(JsonNode? a, JsonNode? b) =>
        a is JsonValue x && b is JsonValue y && x.GetValueKind() == JsonValueKind.Number && y.GetValueKind() == JsonValueKind.Number
            ? x.GetValue<double>() == y.GetValue<double>()
            : JsonNode.DeepEquals(a, b);

    [Fact]
    public void ParametersAreHuggingFacesQwen3Names()
    {
        using var model = CausalLM.Create(ModelPresets.Create("qwen3", "tiny", 256));
        var shapes = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var c = (Qwen3Config)model.Config;
        Assert.Equal([c.HeadDim], shapes["model.layers.0.self_attn.q_norm.weight"]);
        Assert.Equal([c.HeadDim], shapes["model.layers.1.self_attn.k_norm.weight"]);
        Assert.Equal([c.NumAttentionHeads * c.HeadDim, c.HiddenSize], shapes["model.layers.0.self_attn.q_proj.weight"]);
        Assert.Equal([c.HiddenSize, c.NumAttentionHeads * c.HeadDim], shapes["model.layers.0.self_attn.o_proj.weight"]);
        Assert.DoesNotContain("model.layers.0.self_attn.q_proj.bias", shapes.Keys);
        Assert.Equal(c.ParameterCount(), model.parameters().Sum(p => p.numel()));
    }

    /// <summary>The first layer's attention written out with plain tensor operations from the Qwen3 paper's recipe
    /// (RMSNorm over each head of q and k, then rotate_half RoPE, GQA softmax attention), against the model's own.</summary>
    [Fact]
    public void AttentionEqualsTheFormulaWrittenOutByHand()
    {
        var cfg = (Qwen3Config)ModelPresets.Create("qwen3", "tiny", 300);
        using var model = (Qwen3ForCausalLM)CausalLM.Create(cfg);
        model.InitializeRandom(4, std: 0.3);
        using var _ = no_grad();
        var attn = (Qwen3Attention)model.model.layers[0].self_attn;
        var g = new Generator(9);
        attn.q_norm.weight.copy_(rand(cfg.HeadDim, generator: g) + 0.5);
        attn.k_norm.weight.copy_(rand(cfg.HeadDim, generator: g) + 0.5);
        int t = 7, h = cfg.NumAttentionHeads, kv = cfg.NumKeyValueHeads, d = cfg.HeadDim;
        var x = randn([1, t, cfg.HiddenSize], generator: g);
        int[] pad = [0];
        var positions = AttentionMask.Positions(pad, 0, t, CPU);
        var mask = AttentionMask.Build(pad, 0, t, t, CPU);
        var rope = new Rope(d, cfg.RopeTheta, null, cfg.MaxPositionEmbeddings);
        var (cos, sin) = rope.Gather(positions, ScalarType.Float32, CPU);
        var ours = attn.Forward(x, cos, sin, mask, null);

        Tensor Norm(Tensor v, Tensor w) => v * (v.pow(2).mean([-1L], keepdim: true) + cfg.RmsNormEps).rsqrt() * w;
        Tensor Rot(Tensor v) => cat([-v.narrow(-1, d / 2, d / 2), v.narrow(-1, 0, d / 2)], -1);
        var q = Norm(x.matmul(attn.q_proj.weight!.t()).view(1, t, h, d), attn.q_norm.weight).transpose(1, 2);
        var k = Norm(x.matmul(attn.k_proj.weight!.t()).view(1, t, kv, d), attn.k_norm.weight).transpose(1, 2);
        var v = x.matmul(attn.v_proj.weight!.t()).view(1, t, kv, d).transpose(1, 2);
        q = q * cos + Rot(q) * sin;
        k = k * cos + Rot(k) * sin;
        k = k.repeat_interleave(h / kv, dim: 1);
        v = v.repeat_interleave(h / kv, dim: 1);
        var scores = q.matmul(k.transpose(2, 3)) / Math.Sqrt(d) + mask.view(1, 1, t, t);
        var o = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(1, t, h * d);
        var expected = o.matmul(attn.o_proj.weight!.t());
        Assert.True(allclose(ours, expected, rtol: 1e-4, atol: 1e-5), $"max difference {(ours - expected).abs().max().item<float>()}");
        // And the norms matter: without them the output differs.
        attn.q_norm.weight.fill_(1); attn.k_norm.weight.fill_(1);
        Assert.False(allclose(attn.Forward(x, cos, sin, mask, null), expected, rtol: 1e-3, atol: 1e-3));
        rope.Dispose();
    }

    [Fact]
    public void GreedyWithCacheEqualsWithoutCache()
    {
        using var m = CausalLM.Create(ModelPresets.Create("qwen3", "tiny", 512));
        m.InitializeRandom(seed: 7, std: 0.5);
        var engine = new GenerationEngine(m);
        int[][] prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [100, 200, 300, 400]];
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 12 };
        var cached = engine.Generate(prompts, opts, []);
        var uncached = engine.Generate(prompts, opts, [], useCache: false);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(uncached[i].TokenIds, cached[i].TokenIds);
    }

    [Fact]
    public void InitGenerateAndAGrpoStepRunOnQwen3()
    {
        using var dir = new TempDir();
        string model = dir.File("qwen3");
        var init = CliRunner.Run("init", "--arch", "qwen3", "--size", "tiny", "--tokenizer", SharedData.Path("tokenizers", "qwen3"), "--out", model, "--json");
        Assert.True(init.ExitCode == 0, init.Stderr);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!;
        Assert.Equal("qwen3", (string?)config["model_type"]);
        Assert.Equal("Qwen3ForCausalLM", (string?)config["architectures"]![0]);
        var gen = CliRunner.Run("generate", "--model", model, "--prompt", "What is 2+3?", "--max-tokens", "5", "--temperature", "0", "--json");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        using (var doc = JsonDocument.Parse(gen.Stdout)) Assert.Equal(5, doc.RootElement.GetProperty("completion_tokens").GetInt32());

        // GRPO: the same trainer on a Qwen3 policy; the rewarded behaviour moves the weights of every kind of layer.
        var tok = TinyGrpo.Tokenizer();
        var cfg = (LlamaConfig)ModelPresets.Create("qwen3", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]);
        using var policy = CausalLM.Create(cfg);
        policy.InitializeRandom(3);
        var before = TinyGrpo.Weights(policy);
        var grpo = TinyGrpo.Config(dir.File("grpo"));
        grpo.MaxSteps = 2;
        using (var trainer = new GrpoTrainer(grpo, policy, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), q => q))
            while (!trainer.Done) Assert.True(double.IsFinite(trainer.Step()["loss"]));
        var after = TinyGrpo.Weights(policy);
        Assert.Contains(after, kv => kv.Key.EndsWith("q_norm.weight") && !kv.Value.SequenceEqual(before[kv.Key]));
    }
}
