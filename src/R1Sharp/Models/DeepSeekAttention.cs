using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>How MLA computes attention: expanded (per-head keys and values from kv_b_proj, as training and prefill
/// do) or absorbed (kv_b_proj folded into query and output, reading only the cached latent, as decode does).</summary>
public enum MlaForm { Auto, Expanded, Absorbed }

/// <summary>
/// Multi-head latent attention (DeepSeek-V2 §2.1; transformers' DeepseekV3Attention, DeepSeek-V3's model.py MLA).
/// Queries: q_b(norm(q_a(x))) with q-LoRA, else q_proj(x), split per head into q_nope and q_pe. Keys and values come
/// from one low-rank latent: kv_a_proj_with_mqa(x) = [c_KV; k_pe], c_KV normalised by kv_a_layernorm, k_pe one RoPE key
/// shared by all heads; kv_b_proj(c_KV) = per head [k_nope; v]. Scores use [q_nope; q_pe]·[k_nope; k_pe] at
/// 1/√(qk_nope + qk_rope) (times YaRN's mscale²). The cache holds [c_KV; k_pe] only (<see cref="MlaCache"/>).
/// </summary>
public sealed class DeepseekV3Attention : nn.Module
{
    readonly int heads, nope, rope, vDim, rank, layer;
    readonly bool interleaved;
    readonly double scale;
    public readonly Linear? q_proj, q_a_proj, q_b_proj;
    public readonly RmsNorm? q_a_layernorm;
    public readonly Linear kv_a_proj_with_mqa, kv_b_proj, o_proj;
    public readonly RmsNorm kv_a_layernorm;

    public DeepseekV3Attention(DeepseekV3Config c, int layer, ScalarType dtype) : base("Attention")
    {
        heads = c.NumAttentionHeads; nope = c.QkNopeHeadDim; rope = c.QkRopeHeadDim; vDim = c.VHeadDim; rank = c.KvLoraRank;
        this.layer = layer; interleaved = c.Interleaved; scale = c.SoftmaxScale;
        if (c.QLoraRank is { } ql)
        {
            q_a_proj = new Linear(c.HiddenSize, ql, hasBias: c.AttentionBias, dtype);
            q_a_layernorm = new RmsNorm(ql, c.RmsNormEps, dtype);
            q_b_proj = new Linear(ql, heads * c.QkHeadDim, hasBias: false, dtype);
        }
        else q_proj = new Linear(c.HiddenSize, heads * c.QkHeadDim, hasBias: false, dtype);
        kv_a_proj_with_mqa = new Linear(c.HiddenSize, rank + rope, hasBias: c.AttentionBias, dtype);
        kv_a_layernorm = new RmsNorm(rank, c.RmsNormEps, dtype);
        kv_b_proj = new Linear(rank, heads * (nope + vDim), hasBias: false, dtype);
        o_proj = new Linear(heads * vDim, c.HiddenSize, hasBias: c.AttentionBias, dtype);
        RegisterComponents();
    }

    /// <param name="x">[B, T, hidden]</param>
    /// <param name="cos">RoPE tables [B, 1, T, qk_rope_head_dim]</param>
    /// <param name="mask">additive float32 [B, 1, 1, T, L]</param>
    /// <param name="form">Auto: absorbed for a decode step (one token per row over a cache), expanded otherwise</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, MlaCache? cache, MlaForm form = MlaForm.Auto)
    {
        long b = x.size(0), t = x.size(1);
        // q (or q-LoRA's first projection) and kv_a both read x: one dispatch on the decode path.
        var projected = Linear.ApplyMany(x, q_proj ?? q_a_proj!, kv_a_proj_with_mqa);
        var qFlat = q_proj is not null ? projected[0] : q_b_proj!.forward(q_a_layernorm!.forward(projected[0]));
        var compressed = projected[1];                                            // [B, T, rank + rope]
        if (form == MlaForm.Auto) form = cache != null && t == 1 ? MlaForm.Absorbed : MlaForm.Expanded;
        if (form == MlaForm.Absorbed && cache != null && t == 1
            && MlaDecode.Applies(qFlat, compressed, cos, sin, kv_a_layernorm.weight, kv_b_proj.weight!, cache.Latents[layer], mask, nope, rope, rank))
        {
            // A decode step in one kernel: norm, RoPE and cache write of the new latent, then absorbed attention.
            var latents = cache.Reserve(layer, 1, out var positions, out int length);
            return o_proj.forward(MlaDecode.Run(qFlat, compressed, cos, sin, kv_a_layernorm.weight, kv_a_layernorm.Eps, latents, positions, length,
                kv_b_proj.weight!, mask, heads, nope, rope, vDim, interleaved, scale));
        }
        var q = qFlat.view(b, t, heads, nope + rope);
        var qNope = q.narrow(3, 0, nope).transpose(1, 2);                         // [B, H, T, nope]
        var qPe = ApplyRope(q.narrow(3, nope, rope), cos, sin);                   // [B, H, T, rope]
        var latent = kv_a_layernorm.forward(compressed.narrow(2, 0, rank));       // c_KV [B, T, rank]
        var kPe = ApplyRope(compressed.narrow(2, rank, rope).unsqueeze(2), cos, sin); // [B, 1, T, rope]

        Tensor rows; // [B, 1, L, rank + rope]: every position attended, this step's included
        var entries = cat([latent, kPe.squeeze(1)], dim: -1);
        rows = cache != null ? cache.Append(layer, entries) : entries.unsqueeze(1);
        if (form == MlaForm.Absorbed)
            return o_proj.forward(Ops.LatentAttention(qNope, qPe, kv_b_proj.weight!, rows, mask, scale));

        // Expanded: per-head keys and values of every attended position from its latent (DeepseekV3Attention).
        long keys = rows.size(2);
        var kv = kv_b_proj.forward(rows.narrow(3, 0, rank).squeeze(1)).view(b, keys, heads, nope + vDim).transpose(1, 2);
        var kNope = kv.narrow(3, 0, nope);
        var v = kv.narrow(3, nope, vDim);
        var kRope = rows.narrow(3, rank, rope).expand(b, heads, keys, rope);
        var k = cat([kNope, kRope], dim: -1);
        return o_proj.forward(Ops.Attention(cat([qNope, qPe], dim: -1), k, v, mask, scale));
    }

    /// <summary>RoPE of x [B, T, H, rope] → [B, H, T, rope]. DeepSeek's checkpoints rotate interleaved pairs (x0, x1),
    /// (x2, x3)…; as transformers' apply_rotary_pos_emb_interleave, the pairs are first gathered into rotate_half's
    /// halves (evens, then odds), the same order for queries and keys, so their dot products are unchanged.</summary>
    Tensor ApplyRope(Tensor x, Tensor cos, Tensor sin)
    {
        if (interleaved)
        {
            long b = x.size(0), t = x.size(1), h = x.size(2);
            x = x.reshape(b, t, h, rope / 2, 2).transpose(3, 4).reshape(b, t, h, rope);
        }
        return Ops.Rope(x, cos, sin);
    }
}
