using R1Sharp.Generation;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>Multi-head latent attention and DeepSeekMoE against their formulas written out by hand, the compressed
/// cache's size, the absorbed decode against the expanded prefill, and the decode engine on this family.</summary>
public class DeepSeekModelTests
{
    static DeepseekV3ForCausalLM Tiny(string arch = "deepseek_v3", int vocab = 300, int seed = 3, double std = 0.2)
    {
        var cfg = arch == "deepseek_v3" ? DeepseekV3Config.Preset("tiny", vocab) : DeepseekV2Config.Preset("tiny", vocab);
        var model = (DeepseekV3ForCausalLM)CausalLM.Create(cfg);
        model.InitializeRandom(seed, std);
        // Non-trivial norms and a skewed balancing bias, so that neither can be silently ignored.
        using var _ = no_grad();
        var g = new Generator((ulong)seed + 1);
        foreach (var (name, p) in model.named_parameters())
            if (name.EndsWith("norm.weight")) p.copy_(rand(p.shape, generator: g) + 0.5);
            else if (name.EndsWith("e_score_correction_bias")) p.copy_(randn(p.shape, generator: g) * 0.1);
        return model;
    }

    static (Tensor Positions, Tensor Mask) Full(int t)
    {
        int[] pad = [0];
        return (AttentionMask.Positions(pad, 0, t, CPU), AttentionMask.Build(pad, 0, t, t, CPU));
    }

    /// <summary>MLA written out from DeepSeek-V2 §2.1 eqs. 9–19 with plain tensor operations: queries through q-LoRA,
    /// the latent through kv_a and its norm, per-head keys and values through kv_b, the rope halves rotated as
    /// complex pairs (transformers' deepseek_v2 apply_rotary_emb), softmax at DeepSeek's YaRN-corrected scale.</summary>
    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_v2")]
    public void AttentionEqualsThePapersFormulaInBothForms(string arch)
    {
        using var model = Tiny(arch);
        var c = (DeepseekV3Config)model.Config;
        var attn = model.model.layers[0].self_attn;
        int t = 9, heads = c.NumAttentionHeads, nope = c.QkNopeHeadDim, rope = c.QkRopeHeadDim, rank = c.KvLoraRank, v = c.VHeadDim;
        using var _ = no_grad();
        var x = randn([1, t, c.HiddenSize], generator: new Generator(17));
        var (positions, mask) = Full(t);
        using var ropeTables = new Rope(rope, c.RopeTheta, c.RopeScaling, c.MaxPositionEmbeddings);
        var (cos, sin) = ropeTables.Gather(positions, ScalarType.Float32, CPU);

        Tensor Norm(Tensor a, Tensor w) => a * (a.pow(2).mean([-1L], keepdim: true) + c.RmsNormEps).rsqrt() * w;
        // Rotation of consecutive pairs (a, b) by angle θ = pos·inv_freq: (a cos θ − b sin θ, a sin θ + b cos θ).
        var inv = tensor(Rope.InverseFrequencies(rope, c.RopeTheta, c.RopeScaling, c.MaxPositionEmbeddings));
        var angles = arange(t, dtype: ScalarType.Float32).unsqueeze(1) * inv.unsqueeze(0); // [t, rope/2]
        Tensor RotatePairs(Tensor a) // [.., t, rope]
        {
            var pairs = a.reshape([.. a.shape[..^1], rope / 2, 2]);
            var re = pairs.select(-1, 0); var im = pairs.select(-1, 1);
            return stack([re * angles.cos() - im * angles.sin(), re * angles.sin() + im * angles.cos()], -1).reshape(a.shape);
        }
        var q = c.QLoraRank is null ? x.matmul(attn.q_proj!.weight!.t())
            : Norm(x.matmul(attn.q_a_proj!.weight!.t()), attn.q_a_layernorm!.weight).matmul(attn.q_b_proj!.weight!.t());
        q = q.view(1, t, heads, nope + rope).transpose(1, 2);
        var ckv = x.matmul(attn.kv_a_proj_with_mqa.weight!.t());
        var latent = Norm(ckv.narrow(2, 0, rank), attn.kv_a_layernorm.weight);
        var kPe = RotatePairs(ckv.narrow(2, rank, rope)).unsqueeze(1).expand(1, heads, t, rope);
        var kv = latent.matmul(attn.kv_b_proj.weight!.t()).view(1, t, heads, nope + v).transpose(1, 2);
        var qFull = cat([q.narrow(3, 0, nope), RotatePairs(q.narrow(3, nope, rope))], -1);
        var kFull = cat([kv.narrow(3, 0, nope), kPe], -1);
        var scores = qFull.matmul(kFull.transpose(2, 3)) * c.SoftmaxScale + mask.view(1, 1, t, t);
        var o = scores.softmax(-1).matmul(kv.narrow(3, nope, v)).transpose(1, 2).reshape(1, t, heads * v);
        var expected = o.matmul(attn.o_proj.weight!.t());

        foreach (var form in new[] { MlaForm.Expanded, MlaForm.Absorbed })
        {
            var ours = attn.Forward(x, cos, sin, mask, null, form);
            Assert.True(allclose(ours, expected, rtol: 1e-4, atol: 1e-5), $"{form}: max difference {(ours - expected).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void TheCacheHoldsKvLoraRankPlusRopeValuesPerTokenAndLayer()
    {
        using var model = Tiny();
        var c = (DeepseekV3Config)model.Config;
        using var cache = model.CreateCache(1, 1);
        // layers × (kv_lora_rank + qk_rope_head_dim) × 4 bytes (float32); the MTP module is a training head, not cached.
        Assert.Equal(c.NumHiddenLayers * (c.KvLoraRank + c.QkRopeHeadDim) * 4L, cache.Bytes);
        using var bf16 = (DeepseekV3ForCausalLM)CausalLM.Create(c, ScalarType.BFloat16);
        using var cache16 = bf16.CreateCache(3, 10);
        Assert.Equal(3L * 10 * c.NumHiddenLayers * (c.KvLoraRank + c.QkRopeHeadDim) * 2, cache16.Bytes);
        // DeepSeek-V3 itself: 61 × 576 values per token, against 61 × 2 × 128 × 128 for multi-head attention with its heads.
        var v3 = new DeepseekV3Config();
        Assert.Equal(61 * 576, v3.NumHiddenLayers * (v3.KvLoraRank + v3.QkRopeHeadDim));
    }

    /// <summary>The absorbed decode (one token per step over the latent cache) gives the logits the expanded prefill
    /// of the whole sequence gives, position by position.</summary>
    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_v2")]
    public void AbsorbedDecodeEqualsExpandedPrefill(string arch)
    {
        using var model = Tiny(arch);
        int t = 24;
        var ids = randint(0, 300, [1, t], dtype: ScalarType.Int64, generator: new Generator(5));
        using var _ = no_grad();
        var (positions, mask) = Full(t);
        var prefill = model.Forward(ids, positions, mask);                       // no cache: expanded
        using var cache = model.CreateCache(1, t);
        cache.SetBatch(1);
        int[] pad = [0];
        for (int i = 0; i < t; i++)
        {
            var step = model.Forward(ids.narrow(1, i, 1), AttentionMask.Positions(pad, i, 1, CPU), AttentionMask.Build(pad, i, 1, i + 1, CPU), cache);
            cache.Advance(1);
            var want = prefill.narrow(1, i, 1);
            Assert.True(allclose(step, want, rtol: 1e-4, atol: 1e-5), $"position {i}: max difference {(step - want).abs().max().item<float>()}");
        }
        // Forcing the expanded form over the cache gives the same again (the choice is about speed only).
        model.AttentionForm = MlaForm.Expanded;
        using var cache2 = model.CreateCache(1, t);
        var first = model.Forward(ids.narrow(1, 0, t - 1), AttentionMask.Positions(pad, 0, t - 1, CPU), AttentionMask.Build(pad, 0, t - 1, t - 1, CPU), cache2);
        cache2.Advance(t - 1);
        var last = model.Forward(ids.narrow(1, t - 1, 1), AttentionMask.Positions(pad, t - 1, 1, CPU), AttentionMask.Build(pad, t - 1, 1, t, CPU), cache2);
        Assert.True(allclose(last, prefill.narrow(1, t - 1, 1), rtol: 1e-4, atol: 1e-5));
    }

    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_v2")]
    public void TheDecodeEngineGivesTheSameTokensWithAndWithoutTheCacheAndAloneOrBatched(string arch)
    {
        using var model = Tiny(arch, std: 0.5);
        var engine = new GenerationEngine(model);
        int[][] prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [100, 200, 250, 40]];
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 10 };
        var cached = engine.Generate(prompts, opts, []);
        var uncached = engine.Generate(prompts, opts, [], useCache: false);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(uncached[i].TokenIds, cached[i].TokenIds);
            Assert.Equal(engine.Generate([prompts[i]], opts, [])[0].TokenIds, cached[i].TokenIds);
        }
    }

    /// <summary>The MoE layer against its definition computed token by token in the test: routing read back from the
    /// router's scores, each chosen expert applied alone, weighted sum plus the shared experts.</summary>
    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_v2")]
    public void MoeGroupedByExpertEqualsTheTokenByTokenSum(string arch)
    {
        using var model = Tiny(arch);
        var c = (DeepseekV3Config)model.Config;
        var moe = model.MoeLayers.First();
        using var _ = no_grad();
        var x = randn([2, 7, c.HiddenSize], generator: new Generator(8));
        var ours = moe.forward(x);
        var flat = x.reshape(-1, c.HiddenSize);
        var logits = flat.matmul(moe.gate.weight.t());
        var (indices, weights, _) = MoeRouting.Route(logits, c, moe.gate.e_score_correction_bias);
        var chosen = indices.data<long>().ToArray();
        int k = c.NumExpertsPerTok!.Value;
        var rows = new List<Tensor>();
        for (int i = 0; i < flat.size(0); i++)
        {
            var xi = flat.narrow(0, i, 1);
            var sum = moe.shared_experts!.forward(xi);
            for (int j = 0; j < k; j++) sum = sum + moe.experts[(int)chosen[i * k + j]].forward(xi) * weights[i, j].item<float>();
            rows.Add(sum);
        }
        var expected = cat(rows, 0).view(x.shape);
        Assert.True(allclose(ours, expected, rtol: 1e-5, atol: 1e-6), $"max difference {(ours - expected).abs().max().item<float>()}");
        // Routing is not degenerate: more than half the experts receive tokens.
        Assert.True(chosen.Distinct().Count() > c.NRoutedExperts!.Value / 2);
        moe.PerToken = true;
        Assert.True(allclose(moe.forward(x), expected, rtol: 1e-5, atol: 1e-6));
        moe.PerToken = false;
        // One token at a time, as a decode step of one sequence runs (its experts' products grouped in one dispatch).
        for (int i = 0; i < flat.size(0); i++)
        {
            var one = moe.forward(flat.narrow(0, i, 1).view(1, 1, c.HiddenSize)).view(1, c.HiddenSize);
            Assert.True(allclose(one, rows[i], rtol: 1e-5, atol: 1e-6), $"token {i}: max difference {(one - rows[i]).abs().max().item<float>()}");
        }
    }

    /// <summary>bfloat16, the dtype the checkpoints ship in: the decode engine runs and agrees with float32 on the first
    /// greedy tokens of a confident model.</summary>
    [Fact]
    public void Bf16DecodeRuns()
    {
        using var model = Tiny(std: 0.5);
        using var bf = (DeepseekV3ForCausalLM)CausalLM.Create(model.Config, ScalarType.BFloat16);
        using (no_grad()) foreach (var (name, p) in bf.StateDict()) p.copy_(model.StateDict()[name]);
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 6 };
        var a = new GenerationEngine(bf).Generate([[5, 6, 7, 8]], opts, []);
        var b = new GenerationEngine(model).Generate([[5, 6, 7, 8]], opts, []);
        Assert.Equal(6, a[0].TokenIds.Length);
        Assert.Equal(b[0].TokenIds[0], a[0].TokenIds[0]);
    }
}
