using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// Qwen2ForCausalLM / LlamaForCausalLM: the decoder stack plus the language-model head (tied to the embeddings
/// when config.tie_word_embeddings). Parameter names are Hugging Face's ("model.layers.0.self_attn.q_proj.weight").
/// </summary>
public sealed class CausalLM : nn.Module
{
    public readonly DecoderStack model;
    public readonly Linear? lm_head;
    public ModelConfig Config { get; }
    readonly Rope rope;

    public CausalLM(ModelConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32) : base("CausalLM")
    {
        Config = config;
        // Parameters are created directly in the target dtype (converting afterwards would hold an fp32 copy), each
        // with its dtype given explicitly: setting libtorch's default dtype around this constructor, as it once did,
        // changed it for the whole process, and a float32 model built on another thread meanwhile got bf16 weights.
        model = new DecoderStack(config, dtype);
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.HiddenSize, config.VocabSize, hasBias: false, dtype);
        rope = new Rope(config);
        RegisterComponents();
        if (device != null && device.type != DeviceType.CPU) this.to(device);
    }

    public Device Device => model.embed_tokens.weight!.device;
    public ScalarType DType => model.embed_tokens.weight!.dtype;

    /// <summary>The output projection's weight: lm_head, or the embeddings when tied.</summary>
    public Tensor OutputWeight => lm_head?.weight ?? model.embed_tokens.weight!;

    /// <summary>Parameters by Hugging Face name (tied lm_head is not listed, as HF does not save it).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (name, p) in named_parameters()) d[name] = p;
        return d;
    }

    /// <summary>Final hidden states [B, T, hidden] for token ids [B, T] at the given positions.</summary>
    public Tensor Hidden(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        var (cos, sin) = rope.Gather(positions, DType, Device);
        var h = model.embed_tokens.forward(inputIds);
        foreach (var layer in model.layers)
        {
            // A scope per layer: a layer's intermediates (attention scores, MLP activations) are released as soon as
            // the next layer starts, instead of all layers' piling up until the caller's scope ends (for a 512-token
            // prefill of a 0.5B model that pile was as large as the weights). Autograd keeps what backward needs.
            using var scope = NewDisposeScope();
            h = layer.Forward(h, cos, sin, mask, cache).MoveToOuterDisposeScope();
        }
        cache?.Advance((int)inputIds.size(1));
        return model.norm.forward(h);
    }

    /// <summary>Logits in float32 for hidden states [B, T, hidden].</summary>
    public Tensor Logits(Tensor hidden) => Linear.Apply(hidden, OutputWeight).to(ScalarType.Float32);

    /// <summary>Logits [B, T, V] (float32) for every position.</summary>
    public Tensor Forward(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache = null) =>
        Logits(Hidden(inputIds, positions, mask, cache));

    /// <summary>Logits [B, V] of the last position only: what generation needs, skipping the vocabulary
    /// projection of every other position (the largest matmul of a prefill for a 150k vocabulary).</summary>
    public Tensor ForwardLast(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache = null)
    {
        var h = Hidden(inputIds, positions, mask, cache);
        return Logits(h.narrow(1, h.size(1) - 1, 1)).squeeze(1);
    }

    /// <summary>Fills the weights with HF's init (normal(0, initializer_range), norms at 1, biases at 0) from a seed.</summary>
    public void InitializeRandom(long seed, double std = 0.02)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight")) p.fill_(1.0);
            else if (name.EndsWith(".bias")) p.zero_();
            else
            {
                using var r = normal(0, std, p.shape, dtype: p.dtype, generator: gen);
                p.copy_(r);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) rope.Dispose();
        base.Dispose(disposing);
    }
}
