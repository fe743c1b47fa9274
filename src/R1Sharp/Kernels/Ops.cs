using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Kernels;

/// <summary>
/// One dispatch function per operation a model is written in: linear, RMSNorm, RoPE, attention, SwiGLU. Each picks a
/// CPU kernel where one applies (decode rows: <see cref="Gemv"/>, <see cref="SmallOps"/>, <see cref="DecodeAttention"/>;
/// float32 training and prefill: <see cref="TrainingKernels"/>) and otherwise computes the formula with libtorch's
/// operators, which is also the definition every kernel is tested against and the path GPUs and autograd take. Model
/// files call only these, so they read as their papers' formulas (as DeepSeek-V3's reference keeps kernel.py behind
/// linear()). The choice depends on the tensors alone (device, dtype, size, whether a gradient is wanted).
/// </summary>
public static class Ops
{
    /// <summary>
    /// a + b, with the alpha (1) held for the whole call. TorchSharp's a + b and add_(b) make alpha a temporary
    /// Scalar that nothing references once its handle is read, and Scalar has a finalizer that frees the native
    /// value: a collection triggered by another thread while libtorch runs the add can free alpha before libtorch
    /// reads it ("Expected false to be true" in Scalar::toFloat; seen in a quantized prefill and a QLoRA step).
    /// </summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, One);

    /// <summary>b added into a in place, alpha held as in <see cref="Add"/>.</summary>
    public static Tensor AddInPlace(Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>1 as a Scalar that is never collected (a static field; <see cref="HeldScalars"/>).</summary>
    public static readonly Scalar One = HeldScalars.One;

    /// <summary>x · weightᵀ + bias.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        long rows = LinearKernels.Rows(x);
        if (LinearKernels.UsesGemv(x, weight, bias, rows)) return LinearKernels.DecodeProducts(x, [weight], [bias], rows)[0];
        if (LinearKernels.Bf16Inference(x, weight, bias, rows))
            return rows <= LinearKernels.Bf16ChunkedMaxRows ? LinearKernels.DecodeProducts(x, [weight], [bias], rows)[0] : LinearKernels.ViaFloat32(x, weight, bias);
        return F.linear(x, weight, bias);
    }

    /// <summary>Linear(x, weight) cast to float32: the output head's logits. On the decode path the kernel writes the
    /// float32 values itself (each rounded to the weight's type first, as the cast of the usual output gives).</summary>
    public static Tensor LinearToFloat32(Tensor x, LinearWeight weight)
    {
        long rows = LinearKernels.Rows(x);
        if (weight.Quantized is null && LinearKernels.UsesGemv(x, weight.Dense!, null, rows))
            return LinearKernels.DecodeProducts(x, [weight.Dense!], [null], rows, float32Output: true)[0];
        return Linear(x, weight).to(ScalarType.Float32);
    }

    /// <summary>x · weightᵀ + bias for a dense or quantized weight: a quantized one goes through
    /// <see cref="QuantLinear"/> (int8 kernels for a few rows, dequantised tiles into the GEMM beyond). The quantized
    /// weight is frozen, but when x needs a gradient (QLoRA: adapters below this layer) the product passes it on:
    /// <see cref="QuantLinearFunction"/>.</summary>
    public static Tensor Linear(Tensor x, LinearWeight weight, Tensor? bias = null) =>
        weight.Quantized is { } q ? QuantLinearFunction.NeedsGrad(x, bias) ? QuantLinearFunction.Apply(x, q, bias) : QuantLinear.Apply(x, q, bias)
            : Linear(x, weight.Dense!, bias);

    /// <summary>
    /// <see cref="Linears(Tensor, Tensor[], Tensor?[])"/> for dense or quantized weights. Quantized ones are one kernel
    /// call whatever their formats (Q4_K_M mixes Q4_K and Q6_K within a layer's q/k/v): x is quantised once per block
    /// size and the threads' shares balanced over all outputs. A group mixing dense and quantized weights (a file with
    /// an F16 fallback among them) takes one call each.
    /// </summary>
    public static Tensor[] Linears(Tensor x, LinearWeight[] weights, Tensor?[] biases)
    {
        int quantized = 0;
        foreach (var w in weights) if (w.Quantized is not null) quantized++;
        if (quantized == 0)
        {
            var dense = new Tensor[weights.Length];
            for (int i = 0; i < weights.Length; i++) dense[i] = weights[i].Dense!;
            return Linears(x, dense, biases);
        }
        if (quantized == weights.Length && !QuantLinearFunction.NeedsGrad(x, null))
            return QuantLinear.ApplyMany(x, weights.Select(w => w.Quantized!).ToArray(), biases);
        var outputs = new Tensor[weights.Length];
        for (int i = 0; i < weights.Length; i++) outputs[i] = Linear(x, weights[i], biases[i]);
        return outputs;
    }

    /// <summary>
    /// Several projections of the same x (q/k/v; gate/up). On the decode path they are one kernel call: one dispatch
    /// and one conversion of x, the threads' shares balanced over all the weights. Otherwise each is its own
    /// <see cref="Linear"/>, the same autograd graph as separate calls. The weights stay separate parameters with their
    /// Hugging Face names, so nothing needs re-packing after a load or an optimizer step.
    /// </summary>
    public static Tensor[] Linears(Tensor x, Tensor[] weights, Tensor?[] biases)
    {
        long rows = LinearKernels.Rows(x);
        bool gemv = true, chunks = rows <= LinearKernels.Bf16ChunkedMaxRows;
        for (int i = 0; i < weights.Length; i++)
        {
            gemv &= LinearKernels.UsesGemv(x, weights[i], biases[i], rows);
            chunks &= LinearKernels.Bf16Inference(x, weights[i], biases[i], rows);
        }
        if (gemv || chunks) return LinearKernels.DecodeProducts(x, weights, biases, rows);
        var outputs = new Tensor[weights.Length];
        for (int i = 0; i < weights.Length; i++) outputs[i] = Linear(x, weights[i], biases[i]);
        return outputs;
    }

    /// <summary>RMSNorm (Zhang &amp; Sennrich 2019) as Qwen2RMSNorm/LlamaRMSNorm: normalise in float32, cast back to
    /// x's dtype, then scale by the weight, over the last dimension.</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps)
    {
        if (SmallInference.Applies(x, weight)) return SmallOps.RmsNorm(x, weight, eps);
        if (TrainingKernels.Applies(x, weight)) return TrainingKernels.RmsNorm(x, weight, eps);
        using var scope = NewDisposeScope();
        var h = x.to(ScalarType.Float32);
        using var epsilon = eps.ToScalar(); // scalars held for the calls (see Add)
        h = h * h.pow(HeldScalars.Two).mean([-1L], keepdim: true).add(epsilon, One).rsqrt(); // square() is pow(2) with a temporary 2
        return (weight * h.to(x.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>A pre-norm layer's residual add and the norm after it: h = x + y and <see cref="RmsNorm"/>(h), in one
    /// pass on a decode step's few rows (<see cref="SmallOps.AddRmsNorm"/>), else the two operations.</summary>
    public static (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor y, Tensor weight, double eps)
    {
        if (SmallInference.Applies(x, y, weight) && x.shape.SequenceEqual(y.shape)) return SmallOps.AddRmsNorm(x, y, weight, eps);
        var h = Add(x, y);
        return (h, RmsNorm(h, weight, eps));
    }

    /// <summary>Rotary position embedding (Su et al. 2021) in Hugging Face's rotate_half layout, x·cos +
    /// rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁), of x [B, T, H, D] (a projection viewed per head); returns
    /// [B, H, T, D], the layout attention reads. cos and sin are [B, 1, T, D] (<see cref="Models.Rope"/>).</summary>
    public static Tensor Rope(Tensor x, Tensor cos, Tensor sin)
    {
        if (TrainingKernels.AppliesToRope(x, cos, sin)) return TrainingKernels.Rope(x, cos, sin);
        var heads = x.transpose(1, 2);
        if (SmallOps.AppliesToRope(heads, cos, sin)) return SmallOps.Rope(heads, cos, sin);
        long half = heads.size(-1) / 2;
        var rotated = cat([heads.narrow(-1, half, half).neg(), heads.narrow(-1, 0, half)], dim: -1);
        return Add(heads * cos, rotated * sin);
    }

    /// <summary>
    /// Scaled dot-product attention, softmax(q·kᵀ·scale + mask)·v, with grouped-query heads (GQA, Ainslie et al. 2023:
    /// the H query heads share the KV key/value heads in groups of H/KV). q [B, H, T, D]; k [B, KV, L, D] and v
    /// [B, KV, L, Dv] (a cache's rows may be strided views; Dv may differ from D, as in MLA); mask additive float32
    /// [B, 1, 1, T, L]. Returns [B, T, H·Dv].
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor mask, double scale)
    {
        if (DecodeAttention.Applies(q, k, v)) return DecodeAttention.Run(q, k, v, mask, scale);
        long b = q.size(0), heads = q.size(1), t = q.size(2), d = q.size(3), kvHeads = k.size(1), keys = k.size(2), dv = v.size(3);
        long groups = heads / kvHeads;
        // The query heads of one kv-head stacked as extra query rows: one batched matmul per kv-head reads each key
        // once (eager attention in HF repeats K/V instead).
        var qg = q.reshape(b, kvHeads, groups * t, d);
        bool viaFloat32 = q.dtype == ScalarType.BFloat16 && q.device_type == DeviceType.CPU && !is_grad_enabled();
        var raw = Matmul(qg, k.transpose(2, 3), viaFloat32);
        var scores = raw.view(b, kvHeads, groups, t, keys).to(ScalarType.Float32);
        Tensor probs;
        if (TrainingKernels.Applies(q) && TrainingKernels.AppliesToSoftmax(scores, mask))
            probs = TrainingKernels.MaskedSoftmax(scores, mask, scale).view(b, kvHeads, groups * t, keys);
        else
        {
            using var scaleScalar = scale.ToScalar(); // held for the call (see Add)
            probs = AddInPlace(scores.mul_(scaleScalar), mask).softmax(-1).to(v.dtype).view(b, kvHeads, groups * t, keys);
        }
        if (!is_grad_enabled()) { scores.Dispose(); raw.Dispose(); } // inference: [B, H, T, L] float32, released before the output is made
        return Matmul(probs, v, viaFloat32).view(b, heads, t, dv).transpose(1, 2).reshape(b, t, heads * dv);
    }

    /// <summary>
    /// Multi-head latent attention in its absorbed form (DeepSeek-V2 §2.1.2; DeepSeek-V3's model.py, attn_impl
    /// "absorb"): the keys' and values' up-projection kv_b = [W_UK; W_UV] per head is folded into the query and the
    /// output, so attention reads the cached latent c (kv_lora_rank values) and the shared RoPE key (qk_rope values)
    /// of each position, never per-head keys or values. scores = ((q_nope·W_UK)·cᵀ + q_pe·k_peᵀ)·scale, and the output
    /// is (softmax(scores + mask)·c)·W_UVᵀ. qNope [B, H, T, nope], qPe [B, H, T, rope] (RoPE applied), kvB kv_b_proj's
    /// weight [H·(nope + v), rank], latent the cache's rows [B, 1, L, rank + rope] (latent first, then k_pe); mask
    /// additive float32 [B, 1, 1, T, L]. Returns [B, T, H·v], what o_proj reads.
    /// </summary>
    public static Tensor LatentAttention(Tensor qNope, Tensor qPe, Tensor kvB, Tensor latent, Tensor mask, double scale)
    {
        long b = qNope.size(0), heads = qNope.size(1), t = qNope.size(2), nope = qNope.size(3);
        long rank = latent.size(3) - qPe.size(3), dv = kvB.size(0) / heads - nope;
        if (LatentProducts.Applies(qNope, kvB, rank))
        {
            // Decode: both products read kv_b's weight in place (no float32 copy of it per layer and step).
            var qAbsorbed = LatentProducts.Absorb(qNope, kvB, (int)rank, (int)dv);
            var attendedLatent = Attention(cat([qAbsorbed, qPe], dim: -1), latent, latent.narrow(3, 0, rank), mask, scale);
            return LatentProducts.Expand(attendedLatent, kvB, (int)heads, (int)nope, (int)rank, (int)dv);
        }
        bool viaFloat32 = qNope.dtype == ScalarType.BFloat16 && qNope.device_type == DeviceType.CPU && !is_grad_enabled();
        var w = kvB.view(heads, nope + dv, rank);
        var qLatent = Matmul(qNope, w.narrow(1, 0, nope), viaFloat32);               // [B, H, T, rank] = q_nope·W_UK
        var q = cat([qLatent, qPe], dim: -1);                                          // against [c; k_pe]
        var attended = Attention(q, latent, latent.narrow(3, 0, rank), mask, scale);  // one key "head": [B, T, H·rank]
        var perHead = attended.view(b, t, heads, rank).transpose(1, 2);                 // [B, H, T, rank]
        var o = Matmul(perHead, w.narrow(1, nope, dv).transpose(1, 2), viaFloat32);    // [B, H, T, v] = ·W_UVᵀ
        return o.transpose(1, 2).reshape(b, t, heads * dv);
    }

    /// <summary>a·b, or for bfloat16 inference on the CPU the same product taken in float32 and rounded to bfloat16
    /// once, as libtorch's bfloat16 matmul does (it accumulates in float32), whose CPU bf16 matmul runs several times
    /// below float32 at attention's shapes. Training keeps the plain product.</summary>
    static Tensor Matmul(Tensor a, Tensor b, bool viaFloat32) =>
        viaFloat32 ? matmul(a.to(ScalarType.Float32), b.to(ScalarType.Float32)).to(a.dtype) : matmul(a, b);

    /// <summary>SwiGLU (Shazeer 2020): silu(gate) ⊙ up.</summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up)
    {
        if (TrainingKernels.Applies(gate, up)) return TrainingKernels.SwiGlu(gate, up);
        return F.silu(gate).mul_(up);
    }
}
