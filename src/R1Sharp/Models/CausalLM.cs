using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// A causal language model, whatever its family: what generation, training, serving and checkpoints need of one.
/// A family provides its configuration record, its decoder (<see cref="Hidden"/>), the output projection and its
/// cache; parameter names are Hugging Face's ("model.layers.0.self_attn.q_proj.weight"), so <see cref="StateDict"/>
/// loads and saves without a mapping table. Families are built through <see cref="ModelRegistry"/>.
/// </summary>
public abstract class CausalLM : nn.Module
{
    protected CausalLM(string name, ModelConfig config) : base(name) => Config = config;

    public ModelConfig Config { get; }

    /// <summary>The token embeddings [vocab, hidden] (their device and dtype are the model's).</summary>
    public abstract Embedding Embeddings { get; }

    /// <summary>The output projection's weight [vocab, hidden]: lm_head, or the embeddings when tied; dense or quantized.</summary>
    public abstract LinearWeight OutputWeight { get; }

    public Device Device => Embeddings.Device;
    public ScalarType DType => Embeddings.DType;

    /// <summary>Bytes of one value in <see cref="DType"/> (what a cache in the model's dtype holds per element).</summary>
    public int DTypeBytes => DType switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Whether any weight is a quantized matrix (a model loaded from a quantized GGUF file): such a model runs
    /// inference only.</summary>
    public bool IsQuantized => modules().Any(m => m is Linear { Quantized: not null } or Embedding { Quantized: not null });

    /// <summary>LoRA adapters over this model's linear layers (<see cref="Lora.LoraModel.Of"/>); null: none.</summary>
    public Lora.LoraModel? Lora { get; internal set; }

    readonly List<IDisposable> resources = [];

    /// <summary>Keeps <paramref name="resource"/> (what attached weights live in: a GGUF file's mapping) open for as
    /// long as the model, and disposes it with the model.</summary>
    public void Own(IDisposable resource) => resources.Add(resource);

    /// <summary>Final hidden states [B, T, hidden] for token ids [B, T] at positions [B, T], with an additive float32
    /// mask [B, 1, 1, T, L] over L keys (the cache's L − T earlier positions, then these T). With a cache the new
    /// positions are written at each row's length; the caller (the decode engine) then advances it.</summary>
    public abstract Tensor Hidden(Tensor inputIds, Tensor positions, Tensor mask, ModelCache? cache);

    /// <summary>An empty cache for this model: maxBatch rows of capacity positions, in the model's dtype and device.</summary>
    public abstract ModelCache CreateCache(int maxBatch, int capacity);

    /// <summary>The training forward pass of <see cref="Hidden"/> (no cache) cut at decoder-layer boundaries, for
    /// activation checkpointing (the trainer recomputes a layer in backward from its saved input); null when the family
    /// does not provide it.</summary>
    public virtual DecoderSegments? Segments(Tensor inputIds, Tensor positions, Tensor mask) => null;

    /// <summary>Bytes <see cref="CreateCache"/> would allocate (long.MaxValue past a long; 0 when the family does not
    /// say, which skips <see cref="CheckCacheFits"/>).</summary>
    public virtual long CacheBytes(int maxBatch, int capacity) => 0;

    /// <summary>Refuses a cache that cannot fit beside the weights in this machine's memory (the cache is written in
    /// full when created, so it would otherwise be a native allocation failure or the system swapping to a halt): a
    /// model's whole context (131,072 positions for R1-Distill) times a batch is easily more than a machine holds.</summary>
    public void CheckCacheFits(int maxBatch, int capacity)
    {
        long total = ModelRegistry.MachineMemoryBytes(), cache = CacheBytes(maxBatch, capacity);
        long weights = parameters().Sum(p => p.NumberOfElements * p.ElementSize);
        if (total <= 0 || cache <= 0 || (double)cache + weights <= total) return;
        throw new R1SharpException($"a KV cache for {maxBatch} sequence{(maxBatch == 1 ? "" : "s")} of up to {capacity:N0} tokens would take " +
            $"{ModelRegistry.FormatBytes(cache)}, more than this machine's {ModelRegistry.FormatBytes(total)} of memory holds beside the " +
            $"{ModelRegistry.FormatBytes(weights)} of weights: ask for fewer tokens (max_tokens, --max-tokens, --max-context) or fewer sequences at once");
    }

    /// <summary>Logits in float32 for hidden states [B, T, hidden].</summary>
    public virtual Tensor Logits(Tensor hidden) => Ops.LinearToFloat32(hidden, OutputWeight);

    /// <summary>Logits [B, T, V] (float32) for every position.</summary>
    public Tensor Forward(Tensor inputIds, Tensor positions, Tensor mask, ModelCache? cache = null) =>
        Logits(Hidden(inputIds, positions, mask, cache));

    /// <summary>Logits [B, V] of the last position only: what generation needs, skipping the vocabulary
    /// projection of every other position (the largest matmul of a prefill for a 150k vocabulary).</summary>
    public Tensor ForwardLast(Tensor inputIds, Tensor positions, Tensor mask, ModelCache? cache = null)
    {
        var h = Hidden(inputIds, positions, mask, cache);
        return Logits(h.narrow(1, h.size(1) - 1, 1)).squeeze(1);
    }

    /// <summary>The family's own training terms (DeepSeek-V3: expert balancing, multi-token prediction), weighted by
    /// <see cref="AuxiliaryTraining"/>: what trainers add to their loss, call after each optimizer step and log.</summary>
    public virtual TrainingTerms Training => TrainingTerms.None;

    /// <summary>The weights of those terms, set by a trainer from its recipe; null: none are computed.</summary>
    public AuxiliaryTrainingOptions? AuxiliaryTraining { get; set; }

    /// <summary>Parameters by Hugging Face name (a tied lm_head is not listed, as HF does not save it).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (name, p) in named_parameters()) d[name] = p;
        return d;
    }

    /// <summary>Checkpoint tensors that are not parameters and may be skipped on load (e.g. a tied lm_head, rotary
    /// inv_freq buffers of older checkpoints).</summary>
    public virtual bool IgnoredCheckpointTensor(string name) =>
        (Config.TieWordEmbeddings && name == "lm_head.weight") || name.EndsWith("rotary_emb.inv_freq");

    /// <summary>Fills the weights with HF's init (normal(0, initializer_range), norms at 1, biases at 0) from a seed.</summary>
    public void InitializeRandom(long seed, double? std = null)
    {
        using var _ = no_grad();
        var gen = new Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight")) p.fill_(HeldScalars.OneDouble);
            else if (name.EndsWith("bias")) p.zero_(); // biases, and DeepSeek's e_score_correction_bias
            else
            {
                // torch.normal(mean, std, …) is randn(…).mul_(std).add_(mean) with temporary Scalars: the same, held
                using var stdev = (std ?? Config.InitializerRange).ToScalar();
                using var r = randn(p.shape, dtype: p.dtype, generator: gen).mul_(stdev).add_(HeldScalars.ZeroDouble, HeldScalars.One);
                p.copy_(r);
            }
        }
    }

    /// <summary>A model of the configuration's family (<see cref="ModelRegistry.Create"/>).</summary>
    public static CausalLM Create(ModelConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null, string? source = null) =>
        ModelRegistry.Create(config, dtype, device, source);

    /// <summary>A copy with the same weights, frozen (no gradients): e.g. GRPO's reference model.</summary>
    public CausalLM FrozenCopy()
    {
        if (IsQuantized) throw new R1SharpException("a model with quantized weights (a GGUF file) runs inference only; load a Hugging Face folder to train");
        var copy = Create(Config, DType, Device);
        using var _ = no_grad();
        var src = StateDict();
        foreach (var (name, p) in copy.StateDict()) p.copy_(src[name]);
        foreach (var p in copy.parameters()) p.requires_grad = false;
        return copy;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        Lora?.Dispose();
        foreach (var r in resources) r.Dispose();
        resources.Clear();
    }
}

/// <summary><see cref="CausalLM.Hidden"/> as embed → layers → final norm, each a function of the previous output.</summary>
public sealed record DecoderSegments(Func<Tensor> Embed, IReadOnlyList<Func<Tensor, Tensor>> Layers, Func<Tensor, Tensor> Norm);
