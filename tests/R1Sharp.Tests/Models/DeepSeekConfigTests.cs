using System.Text.Json;
using System.Text.Json.Nodes;
using R1Sharp.IO;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>DeepSeek-V3/R1 and V2-Lite's published config.json files read into their records and back, their
/// parameter counts against the papers, Hugging Face's parameter names, and YaRN against DeepSeek's formulas.</summary>
public class DeepSeekConfigTests
{
    /// <summary>deepseek-ai/DeepSeek-R1's config.json (DeepSeek-V3's architecture, FP8 weights).</summary>
    public const string DeepSeekR1 = """
        {
          "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
          "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV3Config", "AutoModel": "modeling_deepseek.DeepseekV3Model",
                       "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"},
          "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 3,
          "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432, "kv_lora_rank": 512,
          "max_position_embeddings": 163840, "model_type": "deepseek_v3", "moe_intermediate_size": 2048, "moe_layer_freq": 1,
          "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1, "norm_topk_prob": true, "num_attention_heads": 128,
          "num_experts_per_tok": 8, "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
          "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
          "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
          "rms_norm_eps": 1e-06,
          "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                           "original_max_position_embeddings": 4096, "type": "yarn"},
          "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": true,
          "tie_word_embeddings": false, "topk_group": 4, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
          "transformers_version": "4.46.3", "use_cache": true, "v_head_dim": 128, "vocab_size": 129280
        }
        """;

    /// <summary>deepseek-ai/DeepSeek-V2-Lite's config.json.</summary>
    public const string DeepSeekV2Lite = """
        {
          "architectures": ["DeepseekV2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "aux_loss_alpha": 0.001,
          "bos_token_id": 100000, "eos_token_id": 100001, "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 2048,
          "initializer_range": 0.02, "intermediate_size": 10944, "kv_lora_rank": 512, "max_position_embeddings": 163840,
          "model_type": "deepseek_v2", "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64,
          "n_shared_experts": 2, "norm_topk_prob": false, "num_attention_heads": 16, "num_experts_per_tok": 6,
          "num_hidden_layers": 27, "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": null, "qk_nope_head_dim": 128,
          "qk_rope_head_dim": 64,
          "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                           "original_max_position_embeddings": 4096, "type": "yarn"},
          "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": true, "tie_word_embeddings": false,
          "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16", "transformers_version": "4.33.1", "use_cache": true,
          "v_head_dim": 128, "vocab_size": 102400
        }
        """;

    [Fact]
    public void TheR1ConfigReadsIntoItsRecordWritesBackEveryKeyAndCountsThePapersParameters()
    {
        var raw = (JsonObject)JsonNode.Parse(DeepSeekR1)!;
        var c = Assert.IsType<DeepseekV3Config>(ModelRegistry.ReadConfig(raw, "config.json"));
        Assert.Equal((1536, 512, 128, 64, 128), (c.QLoraRank, c.KvLoraRank, c.QkNopeHeadDim, c.QkRopeHeadDim, c.VHeadDim));
        Assert.Equal((256, 1, 8, 8, 4), (c.NRoutedExperts, c.NSharedExperts, c.NumExpertsPerTok, c.NGroup, c.TopkGroup));
        Assert.Equal(("noaux_tc", "sigmoid", 2.5, 3, 1), (c.TopkMethod, c.ScoringFunc, c.RoutedScalingFactor, c.FirstKDenseReplace, c.MtpLayers));
        Assert.Equal([128, 128], c.QuantizationConfig!.WeightBlockSize);
        Assert.True(c.Interleaved);
        Assert.False(c.IsMoeLayer(2));
        Assert.True(c.IsMoeLayer(3));
        // DeepSeek-V3 technical report: 671 B parameters, 37 B activated per token; its MTP module adds 14 B, of which
        // the embedding and head copies (2 × 0.93 B) are shared here (Hugging Face counts 685 B with them).
        Assert.InRange((c with { NumNextnPredictLayers = 0 }).ParameterCount(), 670.5e9, 671.5e9);
        Assert.InRange(c.ParameterCount() + 2L * c.VocabSize * c.HiddenSize, 684e9, 685.5e9);
        Assert.InRange(c.ActiveParameterCount(), 36e9, 38e9);
        var back = c.ToJson();
        foreach (var (key, value) in raw)
            Assert.True(Same(value, back[key]), $"{key}: {value?.ToJsonString()} came back as {back[key]?.ToJsonString()}");
    }

    [Fact]
    public void TheV2LiteConfigKeepsItsNullQLoraRankAndCountsThePapersParameters()
    {
        var raw = (JsonObject)JsonNode.Parse(DeepSeekV2Lite)!;
        var c = Assert.IsType<DeepseekV2Config>(ModelRegistry.ReadConfig(raw, "config.json"));
        Assert.Null(c.QLoraRank);
        Assert.False(c.ScalesNormalizedWeights);
        Assert.Equal(0, c.MtpLayers);
        // DeepSeek-V2 paper, appendix: V2-Lite has 15.7 B parameters, 2.4 B activated.
        Assert.InRange(c.ParameterCount(), 15.65e9, 15.75e9);
        Assert.InRange(c.ActiveParameterCount(), 2.35e9, 2.5e9);
        var back = c.ToJson();
        Assert.True(back.ContainsKey("q_lora_rank") && back["q_lora_rank"] is null, "q_lora_rank must be written as null: transformers' default is 1536");
        foreach (var (key, value) in raw)
            Assert.True(Same(value, back[key]), $"{key}: {value?.ToJsonString()} came back as {back[key]?.ToJsonString()}");
    }

    [Theory]
    [InlineData("topk_method", "\"random\"", "\"topk_method\" \"random\" is not supported")]
    [InlineData("scoring_func", "\"relu\"", "\"scoring_func\" \"relu\" is not supported")]
    [InlineData("n_group", "3", "\"n_group\" must divide n_routed_experts 256")]
    [InlineData("topk_group", "9", "\"topk_group\" must be between 1 and n_group 8")]
    [InlineData("num_experts_per_tok", "300", "\"num_experts_per_tok\" must be between 1 and n_routed_experts 256")]
    [InlineData("qk_rope_head_dim", "63", "\"qk_rope_head_dim\" 63 must be even")]
    [InlineData("hidden_act", "\"gelu\"", "\"hidden_act\" \"gelu\" is not supported")]
    [InlineData("kv_lora_rank", "0", "\"kv_lora_rank\" must be a positive integer")]
    [InlineData("rope_scaling", "{\"type\": \"dynamic\", \"factor\": 2}", "\"rope_scaling.type\" \"dynamic\" is not supported for deepseek_v3")]
    [InlineData("quantization_config", "{\"quant_method\": \"fp8\", \"fmt\": \"e5m2\", \"weight_block_size\": [128, 128]}", "\"quantization_config.fmt\" \"e5m2\" is not supported")]
    public void AnUnsupportedValueIsOneErrorNamingTheKey(string key, string value, string expected)
    {
        var raw = (JsonObject)JsonNode.Parse(DeepSeekR1)!;
        raw[key] = JsonNode.Parse(value);
        var e = Assert.IsType<ConfigValueException>(Record.Exception(() => ModelRegistry.ReadConfig(raw, "config.json")));
        Assert.StartsWith("config.json: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Equal(key, e.Key.Split('.')[0]);
    }

    [Fact]
    public void ParametersAreHuggingFacesDeepSeekNames()
    {
        var cfg = DeepseekV3Config.Preset("tiny", 256);
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(1);
        var sd = model.StateDict();
        var shapes = sd.ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        int h = cfg.HiddenSize, heads = cfg.NumAttentionHeads;
        Assert.Equal([cfg.QLoraRank!.Value, h], shapes["model.layers.0.self_attn.q_a_proj.weight"]);
        Assert.Equal([cfg.QLoraRank.Value], shapes["model.layers.0.self_attn.q_a_layernorm.weight"]);
        Assert.Equal([heads * cfg.QkHeadDim, cfg.QLoraRank.Value], shapes["model.layers.0.self_attn.q_b_proj.weight"]);
        Assert.Equal([cfg.KvLoraRank + cfg.QkRopeHeadDim, h], shapes["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"]);
        Assert.Equal([cfg.KvLoraRank], shapes["model.layers.0.self_attn.kv_a_layernorm.weight"]);
        Assert.Equal([heads * (cfg.QkNopeHeadDim + cfg.VHeadDim), cfg.KvLoraRank], shapes["model.layers.0.self_attn.kv_b_proj.weight"]);
        Assert.Equal([h, heads * cfg.VHeadDim], shapes["model.layers.0.self_attn.o_proj.weight"]);
        Assert.Equal([cfg.IntermediateSize, h], shapes["model.layers.0.mlp.gate_proj.weight"]);      // dense first layer
        Assert.Equal([cfg.NRoutedExperts!.Value, h], shapes["model.layers.1.mlp.gate.weight"]);
        Assert.Equal([cfg.NRoutedExperts.Value], shapes["model.layers.1.mlp.gate.e_score_correction_bias"]);
        Assert.Equal([cfg.MoeIntermediateSize, h], shapes["model.layers.1.mlp.experts.7.up_proj.weight"]);
        Assert.Equal([h, cfg.MoeIntermediateSize], shapes["model.layers.2.mlp.shared_experts.down_proj.weight"]);
        int mtp = cfg.NumHiddenLayers;
        Assert.Equal([h, 2 * h], shapes[$"model.layers.{mtp}.eh_proj.weight"]);
        foreach (var n in new[] { "enorm", "hnorm", "shared_head.norm" }) Assert.Equal([h], shapes[$"model.layers.{mtp}.{n}.weight"]);
        Assert.Equal([cfg.KvLoraRank], shapes[$"model.layers.{mtp}.self_attn.kv_a_layernorm.weight"]);
        Assert.Equal(cfg.ParameterCount(), model.parameters().Sum(p => p.numel()));
        // The balancing bias starts at zero, in float32, outside the optimizer's reach.
        var bias = sd["model.layers.1.mlp.gate.e_score_correction_bias"];
        Assert.Equal(ScalarType.Float32, bias.dtype);
        Assert.False(bias.requires_grad);
        Assert.Equal(0f, bias.abs().sum().item<float>());
        // V2-Lite's shape: q_proj instead of q-LoRA, no correction bias, two shared experts.
        using var v2 = CausalLM.Create(DeepseekV2Config.Preset("tiny", 256));
        var v2Names = v2.StateDict().Keys.ToHashSet();
        Assert.Contains("model.layers.0.self_attn.q_proj.weight", v2Names);
        Assert.DoesNotContain("model.layers.0.self_attn.q_a_proj.weight", v2Names);
        Assert.DoesNotContain("model.layers.1.mlp.gate.e_score_correction_bias", v2Names);
        Assert.Equal([2L * 32, 64], v2.StateDict()["model.layers.1.mlp.shared_experts.gate_proj.weight"].shape);
    }

    /// <summary>A folder as DeepSeek publishes it: the MTP module carries copies of the embedding and the output head,
    /// which load as the shared ones (skipped), and nothing needs renaming.</summary>
    [Fact]
    public void ACheckpointFolderWithTheMtpModulesCopiesLoadsUnmapped()
    {
        using var dir = new TempDir();
        var cfg = DeepseekV3Config.Preset("tiny", 256);
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(5);
        var tensors = model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors[$"model.layers.{cfg.NumHiddenLayers}.embed_tokens.weight"] = model.Embeddings.weight!;
        tensors[$"model.layers.{cfg.NumHiddenLayers}.shared_head.head.weight"] = model.OutputWeight.Dense!;
        string folder = dir.File("r1");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), cfg.ToJson().ToJsonString());
        CheckpointIO.Save(folder, tensors);
        using var loaded = ModelFolder.Load(folder);
        Assert.IsType<DeepseekV3ForCausalLM>(loaded);
        foreach (var (name, p) in model.StateDict()) Assert.True(equal(p, loaded.StateDict()[name]).all().item<bool>(), name);
    }

    /// <summary>YaRN's frequencies from DeepSeek-V3's inference/model.py precompute_freqs_cis, transcribed in double
    /// precision: corrections dimensions floored/ceiled, a linear ramp between, freqs / factor outside the fast ones.</summary>
    static double[] DeepSeekYarn(int dim, double theta, double factor, int original, double betaFast, double betaSlow)
    {
        double Corr(double rot) => dim * Math.Log(original / (rot * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = Math.Max(Math.Floor(Corr(betaFast)), 0), high = Math.Min(Math.Ceiling(Corr(betaSlow)), dim - 1);
        if (low == high) high += 0.001;
        var freqs = new double[dim / 2];
        for (int i = 0; i < freqs.Length; i++)
        {
            double f = 1 / Math.Pow(theta, 2.0 * i / dim);
            double smooth = 1 - Math.Clamp((i - low) / (high - low), 0, 1);
            freqs[i] = f / factor * (1 - smooth) + f * smooth;
        }
        return freqs;
    }

    [Fact]
    public void YarnFrequenciesAndMscaleFollowDeepSeeksFormulas()
    {
        var c = new DeepseekV3Config(); // R1: factor 40 over 4096 positions, rope dim 64
        var ours = Rope.InverseFrequencies(c.QkRopeHeadDim, c.RopeTheta, c.RopeScaling, c.MaxPositionEmbeddings);
        var reference = DeepSeekYarn(64, 10000, 40, 4096, 32, 1);
        for (int i = 0; i < ours.Length; i++) Assert.True(Math.Abs(ours[i] - reference[i]) <= 1e-6 * reference[i], $"inv_freq[{i}] {ours[i]} vs {reference[i]}");
        // By hand: the correction dimensions are 64·ln(4096/(2π·32))/(2 ln 10⁴) = 10.47 → 10 and 22.51 → 23; below 10
        // frequencies are kept, from 23 on divided by the factor.
        Assert.Equal(1f, ours[0]);
        Assert.Equal((float)(Math.Pow(10000, -18.0 / 64)), ours[9], 6);
        Assert.Equal((float)(Math.Pow(10000, -62.0 / 64) / 40), ours[31], 9);
        Assert.True(ours[15] < Math.Pow(10000, -30.0 / 64) && ours[15] > Math.Pow(10000, -30.0 / 64) / 40);
        // Softmax scale: (0.1·ln 40 + 1)² / √192; cos and sin unscaled (mscale = mscale_all_dim).
        double m = 0.1 * Math.Log(40) + 1;
        Assert.Equal(m * m / Math.Sqrt(192), c.SoftmaxScale, 12);
        using var rope = new Rope(64, 10000, c.RopeScaling, c.MaxPositionEmbeddings);
        Assert.Equal(1f, rope.AttentionFactor);
        // V2-Lite's mscale_all_dim 0.707: (0.0707·ln 40 + 1)².
        double m2 = 0.0707 * Math.Log(40) + 1;
        Assert.Equal(m2 * m2 / Math.Sqrt(192), new DeepseekV2Config().SoftmaxScale, 12);
    }

    /// <summary>DeepSeek-R1-0528-Qwen3-8B asks for YaRN (factor 4 over 32768 positions): transformers applies the same
    /// computation to Qwen3 and Qwen2, with cos and sin scaled by 0.1·ln 4 + 1.</summary>
    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen2")]
    public void QwenFamiliesAcceptYarnAsTransformersAppliesIt(string arch)
    {
        var raw = ModelPresets.Create(arch, "tiny", 256).ToJson();
        raw["max_position_embeddings"] = 131072;
        raw["rope_scaling"] = JsonNode.Parse("""{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}""");
        var cfg = (LlamaConfig)ModelRegistry.ReadConfig(raw, "config.json");
        using var rope = new Rope(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScaling, cfg.MaxPositionEmbeddings);
        Assert.Equal((float)(0.1 * Math.Log(4) + 1), rope.AttentionFactor, 6);
        var inv = Rope.InverseFrequencies(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScaling, cfg.MaxPositionEmbeddings);
        var reference = DeepSeekYarn(cfg.HeadDim, cfg.RopeTheta, 4, 32768, 32, 1);
        for (int i = 0; i < inv.Length; i++) Assert.True(Math.Abs(inv[i] - reference[i]) <= 1e-6 * reference[i], $"inv_freq[{i}]");
        // And the model runs with it: its logits differ from the unscaled model's.
        using var scaled = CausalLM.Create(cfg);
        scaled.InitializeRandom(2, std: 0.2);
        using var plain = CausalLM.Create(cfg with { RopeScaling = null });
        foreach (var (name, p) in plain.StateDict()) using (no_grad()) p.copy_(scaled.StateDict()[name]);
        int[] pad = [0];
        var ids = tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [1, 8]);
        using var _ = no_grad();
        var a = scaled.Forward(ids, AttentionMask.Positions(pad, 0, 8, CPU), AttentionMask.Build(pad, 0, 8, 8, CPU));
        var b = plain.Forward(ids, AttentionMask.Positions(pad, 0, 8, CPU), AttentionMask.Build(pad, 0, 8, 8, CPU));
        Assert.False(allclose(a, b, rtol: 1e-3, atol: 1e-4));
    }

    /// <summary>Equal JSON, numbers compared as numbers, objects key by key.</summary>
    public static bool Same(JsonNode? a, JsonNode? b) => (a, b) switch
    {
        (null, null) => true,
        (JsonValue x, JsonValue y) when x.GetValueKind() == JsonValueKind.Number && y.GetValueKind() == JsonValueKind.Number
            => double.Parse(x.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture) == double.Parse(y.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture),
        (JsonObject x, JsonObject y) => x.Count == y.Count && x.All(kv => y.ContainsKey(kv.Key) && Same(kv.Value, y[kv.Key])),
        (JsonArray x, JsonArray y) => x.Count == y.Count && x.Zip(y).All(p => Same(p.First, p.Second)),
        _ => JsonNode.DeepEquals(a, b),
    };
}
