using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Models;

// The Qwen2 / Llama decoder, as transformers' modeling_qwen2.py and modeling_llama.py define it. The two differ only
// in configuration (q/k/v bias; llama3 rope scaling), so one set of classes covers both. Field names are the
// Hugging Face parameter names, so a state dict loads and saves without a mapping table.

/// <summary>Grouped-query self-attention with RoPE and an optional KV cache.</summary>
public sealed class Attention : nn.Module
{
    readonly int heads, kvHeads, headDim, layer;
    public readonly Linear q_proj, k_proj, v_proj, o_proj;

    public Attention(ModelConfig c, int layer, ScalarType dtype) : base("Attention")
    {
        heads = c.NumAttentionHeads; kvHeads = c.NumKeyValueHeads; headDim = c.HeadDim; this.layer = layer;
        q_proj = new Linear(c.HiddenSize, heads * headDim, hasBias: c.QkvBias, dtype);
        k_proj = new Linear(c.HiddenSize, kvHeads * headDim, hasBias: c.QkvBias, dtype);
        v_proj = new Linear(c.HiddenSize, kvHeads * headDim, hasBias: c.QkvBias, dtype);
        o_proj = new Linear(heads * headDim, c.HiddenSize, hasBias: c.OutputBias, dtype);
        RegisterComponents();
    }

    /// <param name="x">[B, T, hidden]</param>
    /// <param name="mask">additive float32 [B, 1, 1, T, L]</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        long b = x.size(0), t = x.size(1);
        var qkv = Linear.ApplyMany(x, q_proj, k_proj, v_proj);
        Tensor q = qkv[0].view(b, t, heads, headDim), k = qkv[1].view(b, t, kvHeads, headDim);
        var v = qkv[2].view(b, t, kvHeads, headDim).transpose(1, 2);
        // Training and other uncached float32 passes: RoPE (writing the head-major layout the matmuls read) and the
        // softmax each run as one fused autograd node (TrainingKernels) instead of 7 and 3 operators.
        bool fused = cache == null && TrainingKernels.AppliesToRope(q, cos, sin);
        if (fused)
        {
            q = TrainingKernels.Rope(q, cos, sin); // [B, H, T, D] contiguous
            k = TrainingKernels.Rope(k, cos, sin);
        }
        else
        {
            q = Rope.Apply(q.transpose(1, 2), cos, sin);
            k = Rope.Apply(k.transpose(1, 2), cos, sin);
        }
        if (cache != null) (k, v) = cache.Append(layer, k, v);
        long keys = k.size(2), groups = heads / kvHeads;
        if (cache != null && DecodeAttention.Applies(q, cache.Keys[layer], headDim))
            return o_proj.forward(DecodeAttention.Run(q, cache.Keys[layer], cache.Values[layer], (int)keys, mask));
        // GQA without repeating K/V: the query heads of one kv-head are stacked as extra query rows, so one
        // batched matmul per kv-head reads each cached key once (eager attention in HF repeats K/V instead).
        var qg = q.reshape(b, kvHeads, groups * t, headDim);
        bool viaFloat32 = x.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU && !is_grad_enabled();
        var scores = Matmul(qg, k.transpose(2, 3), viaFloat32).view(b, kvHeads, groups, t, keys).to(ScalarType.Float32);
        Tensor probs;
        if (fused && TrainingKernels.AppliesToSoftmax(scores, mask))
            probs = TrainingKernels.MaskedSoftmax(scores, mask, 1.0 / Math.Sqrt(headDim)).view(b, kvHeads, groups * t, keys);
        else
        {
            scores = scores.mul_(1.0 / Math.Sqrt(headDim)).add_(mask);
            probs = scores.softmax(-1).to(v.dtype).view(b, kvHeads, groups * t, keys);
        }
        var o = Matmul(probs, v, viaFloat32).view(b, heads, t, headDim).transpose(1, 2).reshape(b, t, heads * headDim);
        return o_proj.forward(o);
    }

    /// <summary>a·b, or for bfloat16 inference on the CPU the same product taken in float32 and rounded to bfloat16
    /// once, as libtorch's bfloat16 matmul does (it accumulates in float32): its CPU bfloat16 matmul runs several times
    /// below float32 at attention's shapes. Training keeps the plain product.</summary>
    static Tensor Matmul(Tensor a, Tensor b, bool viaFloat32) =>
        viaFloat32 ? matmul(a.to(ScalarType.Float32), b.to(ScalarType.Float32)).to(a.dtype) : matmul(a, b);
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) * up(x)).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    public readonly Linear gate_proj, up_proj, down_proj;

    public Mlp(ModelConfig c, ScalarType dtype) : base("MLP")
    {
        gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.MlpBias, dtype);
        up_proj = new Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.MlpBias, dtype);
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, hasBias: c.MlpBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var gateUp = Linear.ApplyMany(x, gate_proj, up_proj);
        if (TrainingKernels.Applies(gateUp[0], gateUp[1])) return down_proj.forward(TrainingKernels.SwiGlu(gateUp[0], gateUp[1]));
        return down_proj.forward(F.silu(gateUp[0]).mul_(gateUp[1]));
    }
}

/// <summary>Pre-norm decoder layer: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class DecoderLayer : nn.Module
{
    public readonly Attention self_attn;
    public readonly Mlp mlp;
    public readonly RmsNorm input_layernorm, post_attention_layernorm;

    public DecoderLayer(ModelConfig c, int layer, ScalarType dtype) : base("DecoderLayer")
    {
        self_attn = new Attention(c, layer, dtype);
        mlp = new Mlp(c, dtype);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        var h = x + self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, cache);
        return h + mlp.forward(post_attention_layernorm.forward(h));
    }
}

/// <summary>The decoder stack ("model." in HF names): embeddings, layers, final norm.</summary>
public sealed class DecoderStack : nn.Module
{
    public readonly Embedding embed_tokens;
    public readonly ModuleList<DecoderLayer> layers;
    public readonly RmsNorm norm;

    public DecoderStack(ModelConfig c, ScalarType dtype) : base("Model")
    {
        embed_tokens = nn.Embedding(c.VocabSize, c.HiddenSize, dtype: dtype);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new DecoderLayer(c, i, dtype)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }
}
