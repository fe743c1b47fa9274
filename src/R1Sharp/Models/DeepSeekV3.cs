using R1Sharp.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

// DeepSeek-V3 (DeepSeek-AI 2024, "DeepSeek-V3 Technical Report"; transformers' modeling_deepseek_v3.py; DeepSeek's
// inference/model.py) and DeepSeek-V2: a pre-norm decoder, x + MLA(norm(x)), then h + FFN(norm(h)), whose FFN is a
// dense SwiGLU in the first first_k_dense_replace layers and DeepSeekMoE after them; multi-token prediction modules
// follow the main layers as model.layers.{num_hidden_layers + k}. Parameter names are Hugging Face's, so a DeepSeek
// checkpoint folder loads without a mapping table.

/// <summary>One decoder layer (DeepseekV3DecoderLayer): MLA, then a dense MLP or DeepSeekMoE.</summary>
public class DeepseekV3DecoderLayer : nn.Module
{
    public readonly DeepseekV3Attention self_attn;
    public readonly nn.Module<Tensor, Tensor> mlp;
    public readonly RmsNorm input_layernorm, post_attention_layernorm;

    public DeepseekV3DecoderLayer(DeepseekV3Config c, int layer, ScalarType dtype) : base("DecoderLayer")
    {
        self_attn = new DeepseekV3Attention(c, layer, dtype);
        mlp = c.IsMoeLayer(layer) ? new DeepseekV3MoE(c, layer, dtype) : new DeepseekV3Mlp(c.HiddenSize, c.IntermediateSize, dtype);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public DeepseekV3MoE? Moe => mlp as DeepseekV3MoE;

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, MlaCache? cache, MlaForm form)
    {
        var attended = self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, cache, form);
        // h = x + attention, normed; then h + FFN. At a decode step both residual adds fold into the kernels around them.
        var (h, normed) = Ops.AddRmsNorm(x, attended, post_attention_layernorm.weight, post_attention_layernorm.Eps);
        return mlp switch
        {
            DeepseekV3MoE moe => moe.ForwardPlus(normed, h),
            DeepseekV3Mlp dense => dense.ForwardPlus(normed, h),
            _ => Ops.Add(h, mlp.forward(normed)),
        };
    }
}

/// <summary>The shared_head of an MTP module: its final norm (the output projection is the main model's lm_head).</summary>
public sealed class MtpSharedHead : nn.Module
{
    public readonly RmsNorm norm;

    public MtpSharedHead(DeepseekV3Config c, ScalarType dtype) : base("SharedHead")
    {
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }
}

/// <summary>
/// A multi-token-prediction module (DeepSeek-V3 §2.2, eq. 21–23): h′ᵢ = eh_proj([enorm(Emb(tᵢ₊ₖ)); hnorm(hᵢ)]), then a
/// full decoder layer over h′, then shared_head.norm and the shared output head predict tᵢ₊ₖ₊₁. The embedding and
/// output head are the main model's (the paper shares them; the checkpoints' copies, embed_tokens and
/// shared_head.head, are skipped on load). The [embedding; hidden] order is vLLM's DeepSeekMTP and llama.cpp's.
/// </summary>
public sealed class DeepseekV3MtpLayer : DeepseekV3DecoderLayer
{
    public readonly RmsNorm enorm, hnorm;
    public readonly Linear eh_proj;
    public readonly MtpSharedHead shared_head;

    public DeepseekV3MtpLayer(DeepseekV3Config c, int layer, ScalarType dtype) : base(c, layer, dtype)
    {
        enorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        hnorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        eh_proj = new Linear(2L * c.HiddenSize, c.HiddenSize, hasBias: false, dtype);
        shared_head = new MtpSharedHead(c, dtype);
        register_module("enorm", enorm);
        register_module("hnorm", hnorm);
        register_module("eh_proj", eh_proj);
        register_module("shared_head", shared_head);
    }

    /// <summary>The module's final hidden states for embeddings of the next tokens and the previous depth's states.</summary>
    public Tensor Predict(Tensor nextEmbeddings, Tensor previous, Tensor cos, Tensor sin, Tensor mask) =>
        shared_head.norm.forward(Forward(eh_proj.forward(torch.cat([enorm.forward(nextEmbeddings), hnorm.forward(previous)], -1)), cos, sin, mask, null, MlaForm.Expanded));
}

/// <summary>The decoder stack ("model."): embeddings, main layers then MTP layers, final norm.</summary>
public sealed class DeepseekV3Model : nn.Module
{
    public readonly Embedding embed_tokens;
    public readonly ModuleList<DeepseekV3DecoderLayer> layers;
    public readonly RmsNorm norm;

    public DeepseekV3Model(DeepseekV3Config c, ScalarType dtype) : base("Model")
    {
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, dtype);
        layers = new ModuleList<DeepseekV3DecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers + c.MtpLayers)
            .Select(i => i < c.NumHiddenLayers ? new DeepseekV3DecoderLayer(c, i, dtype) : new DeepseekV3MtpLayer(c, i, dtype)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }
}

/// <summary>DeepseekV3ForCausalLM (and DeepseekV2ForCausalLM, the same modules): the decoder stack plus lm_head.</summary>
public sealed class DeepseekV3ForCausalLM : CausalLM
{
    public readonly DeepseekV3Model model;
    public readonly Linear? lm_head;
    readonly Rope rope;
    readonly DeepseekV3Config config;
    readonly DeepseekTrainingTerms terms;

    public DeepseekV3ForCausalLM(DeepseekV3Config config, ScalarType dtype = ScalarType.Float32) : base(config.ArchitectureName, config)
    {
        this.config = config;
        model = new DeepseekV3Model(config, dtype);
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.HiddenSize, config.VocabSize, hasBias: false, dtype);
        rope = new Rope(config.QkRopeHeadDim, config.RopeTheta, config.RopeScaling, config.MaxPositionEmbeddings);
        RegisterComponents();
        terms = new DeepseekTrainingTerms(this, config);
        foreach (var moe in MoeLayers) moe.Observer = terms.Observe;
    }

    /// <summary>Expert balancing (loads, the bias update, the sequence-wise loss) and the MTP loss.</summary>
    public override TrainingTerms Training => terms;

    public override Embedding Embeddings => model.embed_tokens;
    public override LinearWeight OutputWeight => lm_head?.Weight ?? model.embed_tokens.Weight;

    /// <summary>Which form of MLA the forward passes use (Auto: absorbed for decode steps over a cache, expanded
    /// otherwise). Tests and the benchmark set it to compare the two.</summary>
    public MlaForm AttentionForm { get; set; } = MlaForm.Auto;

    /// <summary>The main decoder layers (MTP modules excluded).</summary>
    public IEnumerable<DeepseekV3DecoderLayer> MainLayers => model.layers.Take(config.NumHiddenLayers);

    public IEnumerable<DeepseekV3MtpLayer> MtpLayers => model.layers.Skip(config.NumHiddenLayers).Cast<DeepseekV3MtpLayer>();

    public IEnumerable<DeepseekV3MoE> MoeLayers => model.layers.Select(l => l.Moe).OfType<DeepseekV3MoE>();

    /// <summary>The latent cache: per main layer, kv_lora_rank + qk_rope_head_dim values per token (MlaCache).</summary>
    public override long CacheBytes(int maxBatch, int capacity)
    {
        try { return checked((long)config.NumHiddenLayers * maxBatch * capacity * ((long)config.KvLoraRank + config.QkRopeHeadDim) * DTypeBytes); }
        catch (OverflowException) { return long.MaxValue; }
    }

    public override ModelCache CreateCache(int maxBatch, int capacity) =>
        new MlaCache(config.NumHiddenLayers, config.KvLoraRank, config.QkRopeHeadDim, maxBatch, capacity, DType, Device);

    public override Tensor Hidden(Tensor inputIds, Tensor positions, Tensor mask, ModelCache? cache)
    {
        var (cos, sin) = rope.Gather(positions, DType, Device);
        var mla = (MlaCache?)cache;
        var h = model.embed_tokens.forward(inputIds);
        foreach (var layer in MainLayers)
        {
            using var scope = NewDisposeScope();
            var next = layer.Forward(h, cos, sin, mask, mla, AttentionForm).MoveToOuterDisposeScope();
            if (!is_grad_enabled()) h.Dispose(); // inference: the previous layer's output, released now (as LlamaForCausalLM.Hidden does)
            h = next;
        }
        var final = model.norm.forward(h);
        if (cache is null) terms.ObserveHidden(final, inputIds, positions, mask);
        return final;
    }

    /// <summary>
    /// The MTP modules' hidden states for a training batch (DeepSeek-V3 §2.2): depth k (1-based) at position i predicts
    /// token i + k + 1 from the depth-(k−1) states at i (the main model's final hidden states for k = 1) and the
    /// embedding of token i + k. Returns one [B, T − k, hidden] tensor per depth; positions, mask and ids are the
    /// batch's, trimmed to each depth's length.
    /// </summary>
    public IReadOnlyList<Tensor> MtpHidden(Tensor hidden, Tensor inputIds, Tensor positions, Tensor mask)
    {
        var result = new List<Tensor>();
        var previous = hidden;
        long t = inputIds.size(1);
        int k = 0;
        foreach (var mtp in MtpLayers)
        {
            k++;
            if (t - k <= 0) break;
            long len = t - k;
            var next = model.embed_tokens.forward(inputIds.narrow(1, k, len));
            var (cos, sin) = rope.Gather(positions.narrow(1, 0, len), DType, Device);
            var m = mask.narrow(3, 0, len).narrow(4, mask.size(4) - t, len);
            previous = mtp.Predict(next, previous.narrow(1, 0, len), cos, sin, m);
            result.Add(previous);
        }
        return result;
    }

    /// <summary>The checkpoints' copies of the embedding and output head inside each MTP module are not parameters
    /// here: the paper shares them with the main model.</summary>
    public override bool IgnoredCheckpointTensor(string name)
    {
        if (base.IgnoredCheckpointTensor(name)) return true;
        for (int k = 0; k < config.MtpLayers; k++)
        {
            string prefix = $"model.layers.{config.NumHiddenLayers + k}.";
            if (name == prefix + "embed_tokens.weight" || name == prefix + "shared_head.head.weight") return true;
        }
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) rope.Dispose();
        base.Dispose(disposing);
    }
}
