using R1Sharp.Kernels;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>The fused MLA decode step (<see cref="MlaDecode"/>: norm, RoPE and cache write of the new latent, then
/// absorbed attention in one kernel) against the unfused path through libtorch operators and the separate kernels
/// (<see cref="Ops.LatentAttention"/>), which AttentionEqualsThePapersFormulaInBothForms and LatentProductsTests check
/// against the formulas: the same step over two caches holding the same rows, one with the kernel off.</summary>
public class MlaDecodeTests
{
    [Theory]
    [InlineData("deepseek_v3", "f32", 1)]
    [InlineData("deepseek_v3", "bf16", 1)]
    [InlineData("deepseek_v2", "f32", 3)]
    [InlineData("deepseek_v2", "bf16", 3)]
    [InlineData("deepseek_v3", "bf16", 4)]
    public void FusedStepEqualsTheUnfusedStep(string arch, string dtypeName, int b)
    {
        var dtype = dtypeName == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var c = arch == "deepseek_v3" ? DeepseekV3Config.Preset("small", 300) : DeepseekV2Config.Preset("small", 300);
        foreach (bool interleave in new[] { true, false })
        {
            var cfg = c with { RopeInterleave = interleave };
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var attn = new DeepseekV3Attention(cfg, 1, dtype);
            var g = new Generator(11);
            foreach (var (name, p) in attn.named_parameters())
                p.copy_(name.EndsWith("norm.weight") ? rand(p.shape, generator: g) + 0.5 : randn(p.shape, generator: g) * 0.1);
            // Rows of different lengths (the engine's continuous batching), the same contents in both caches.
            int capacity = 40;
            var lengths = Enumerable.Range(0, b).Select(r => 17 + 5 * r).ToArray();
            using var fused = new MlaCache(cfg.NumHiddenLayers, cfg.KvLoraRank, cfg.QkRopeHeadDim, b, capacity, dtype, CPU);
            using var plain = new MlaCache(cfg.NumHiddenLayers, cfg.KvLoraRank, cfg.QkRopeHeadDim, b, capacity, dtype, CPU);
            var contents = randn(fused.Latents[1].shape, generator: g).to(dtype);
            fused.Latents[1].copy_(contents); plain.Latents[1].copy_(contents);
            for (int r = 0; r < b; r++) { fused.SetRowLength(r, lengths[r]); plain.SetRowLength(r, lengths[r]); }
            fused.SetBatch(b); plain.SetBatch(b);

            var x = randn([b, 1, cfg.HiddenSize], generator: g).to(dtype);
            using var rope = new Rope(cfg.QkRopeHeadDim, cfg.RopeTheta, cfg.RopeScaling, cfg.MaxPositionEmbeddings);
            var (cos, sin) = rope.Gather(tensor(lengths.Select(l => (long)l).ToArray(), [b, 1]), dtype, CPU);
            int length = lengths.Max() + 1;
            var maskData = new float[b * length];
            for (int r = 0; r < b; r++)
                for (int j = 0; j < length; j++) maskData[r * length + j] = j <= lengths[r] ? 0f : float.NegativeInfinity;
            var mask = tensor(maskData, [b, 1, 1, 1, length]);

            var q = attn.q_proj?.forward(x) ?? attn.q_b_proj!.forward(attn.q_a_layernorm!.forward(attn.q_a_proj!.forward(x)));
            Assert.True(MlaDecode.Applies(q, attn.kv_a_proj_with_mqa.forward(x), cos, sin, attn.kv_a_layernorm.weight, attn.kv_b_proj.weight!,
                fused.Latents[1], mask, cfg.QkNopeHeadDim, cfg.QkRopeHeadDim, cfg.KvLoraRank) || !System.Runtime.Intrinsics.X86.Avx2.IsSupported);
            var actual = attn.Forward(x, cos, sin, mask, fused, MlaForm.Absorbed);
            Tensor expected;
            MlaDecode.Enabled = false;
            try { expected = attn.Forward(x, cos, sin, mask, plain, MlaForm.Absorbed); }
            finally { MlaDecode.Enabled = true; }

            // bfloat16: the values agree up to the norm's variance (libtorch sums it in another order for B > 1), which
            // can move a rounding by one bfloat16 step; float32: to the order of its sums.
            double tolerance = dtype == ScalarType.BFloat16 ? 2e-2 : 1e-5;
            double err = (actual - expected).abs().max().to(ScalarType.Float64).item<double>();
            double size = expected.abs().max().to(ScalarType.Float64).item<double>();
            Assert.True(err <= tolerance * Math.Max(1, size), $"interleave {interleave}: max error {err} against max |o| {size}");
            var written = fused.Latents[1].to(ScalarType.Float64);
            var want = plain.Latents[1].to(ScalarType.Float64);
            double cacheErr = (written - want).abs().max().item<double>();
            Assert.True(cacheErr <= tolerance * Math.Max(1, want.abs().max().item<double>()), $"interleave {interleave}: cache entries differ by {cacheErr}");
            if (b == 1) Assert.True(written.equal(want).all().item<bool>(), "batch 1: the cache entries are the unfused path's, bit for bit");
            // The new entries landed at each row's own length and nowhere else.
            for (int r = 0; r < b; r++)
                Assert.False(written[r, 0, lengths[r]].equal(contents[r, 0, lengths[r]].to(ScalarType.Float64)).all().item<bool>(), $"row {r}: its new position was not written");
            Assert.True(written.narrow(2, length, capacity - length).equal(contents.narrow(2, length, capacity - length).to(ScalarType.Float64)).all().item<bool>());
        }
    }
}
