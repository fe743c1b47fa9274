using System.Text.Json.Serialization;
using R1Sharp.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace R1Sharp.Models;

// Llama 3 (Grattafiori et al. 2024; transformers' modeling_llama.py): the architecture of DeepSeek-R1-Distill-Llama,
// and the base the Qwen families derive from. A pre-norm decoder: x + attn(norm(x)), then h + mlp(norm(h)), with
// RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU feed-forward. Field names are the Hugging
// Face parameter names, so a state dict loads and saves without a mapping table.

/// <summary>config.json of model_type "llama"; defaults are Llama-3.1-8B's (the base of DeepSeek-R1-Distill-Llama-8B).</summary>
public record LlamaConfig : ModelConfig
{
    public LlamaConfig()
    {
        ModelType = "llama";
        VocabSize = 128256; HiddenSize = 4096; NumHiddenLayers = 32; MaxPositionEmbeddings = 131072;
    }

    public int IntermediateSize { get; init; } = 14336;
    public int NumAttentionHeads { get; init; } = 32;
    public int NumKeyValueHeads { get; init; } = 8;
    public double RmsNormEps { get; init; } = 1e-5;
    public double RopeTheta { get; init; } = 500000.0;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public RopeScaling? RopeScaling { get; init; } = RopeScaling.Llama3();
    public string HiddenAct { get; init; } = "silu";
    /// <summary>Bias on the q/k/v and o projections (HF's attention_bias; families without the key leave it null).</summary>
    public bool? AttentionBias { get; init; } = false;
    /// <summary>Bias on the MLP's projections (Llama's mlp_bias; families without the key leave it null).</summary>
    public bool? MlpBias { get; init; } = false;
    [JsonIgnore] public bool HasMlpBias => MlpBias ?? false;

    /// <summary>config.json's head_dim when given; otherwise hidden_size / num_attention_heads.</summary>
    [JsonPropertyName("head_dim"), JsonInclude] protected int? HeadDimKey { get; init; }
    [JsonIgnore] public int HeadDim { get => HeadDimKey ?? (NumAttentionHeads > 0 ? HiddenSize / NumAttentionHeads : 0); init => HeadDimKey = value; }

    [JsonIgnore] public virtual bool QkvBias => AttentionBias ?? false;
    [JsonIgnore] public virtual bool OutputBias => AttentionBias ?? false;
    [JsonIgnore] public int NumKeyValueGroups => NumAttentionHeads / NumKeyValueHeads;
    [JsonIgnore] public override string ArchitectureName => "LlamaForCausalLM";

    public static IReadOnlyList<string> DenseSizes { get; } = ["tiny", "small", "0.5b", "1.5b", "7b", "8b"];

    public static ModelFamily Family { get; } = new("llama", "LlamaForCausalLM", FromJson<LlamaConfig>,
        (c, dtype) => new LlamaForCausalLM((LlamaConfig)c, dtype), (size, vocab) => Preset(size, vocab), DenseSizes, "llama");

    /// <summary>(hidden, layers, heads, kv heads, intermediate, tied) of the named shapes: tiny and small for tests, and
    /// Qwen2.5-0.5B, R1-Distill-Qwen-1.5B/7B and R1-Distill-Llama-8B (random weights, for benchmarks).</summary>
    public static (int Hidden, int Layers, int Heads, int KvHeads, int Intermediate, bool Tied) DenseShape(string size) => size switch
    {
        "tiny" => (64, 2, 4, 2, 176, true),
        "small" => (256, 4, 8, 2, 704, true),
        "0.5b" => (896, 24, 14, 2, 4864, true),
        "1.5b" => (1536, 28, 12, 2, 8960, false),
        "7b" => (3584, 28, 28, 4, 18944, false),
        "8b" => (4096, 32, 32, 8, 14336, false),
        _ => throw new R1SharpException($"unknown size \"{size}\" (expected one of {string.Join(", ", DenseSizes)})"),
    };

    public static LlamaConfig Preset(string size, int vocabSize)
    {
        var (h, l, nh, kv, ff, tied) = DenseShape(size);
        return new LlamaConfig
        {
            VocabSize = vocabSize, HiddenSize = h, NumHiddenLayers = l, NumAttentionHeads = nh, NumKeyValueHeads = kv,
            IntermediateSize = ff, TieWordEmbeddings = tied, Architectures = ["LlamaForCausalLM"],
        };
    }

    public override void Validate(string source)
    {
        base.Validate(source);
        Positive(source, "intermediate_size", IntermediateSize);
        Positive(source, "num_attention_heads", NumAttentionHeads);
        Positive(source, "num_key_value_heads", NumKeyValueHeads);
        if (HeadDimKey is null && NumAttentionHeads > HiddenSize)
            throw new ConfigValueException(source, "num_attention_heads", $"{NumAttentionHeads} is more than hidden_size {HiddenSize}: head_dim (hidden_size / num_attention_heads) would be 0");
        Positive(source, "head_dim", HeadDim);
        // An epsilon is a small guard against dividing by zero; at 1 or more it swamps mean(x²) and the norm outputs
        // almost nothing (a typo, not a model).
        if (!(RmsNormEps > 0 && RmsNormEps < 1)) throw new ConfigValueException(source, "rms_norm_eps", $"must be a small positive number below 1, found {Show(RmsNormEps)}");
        // RoPE's wavelengths are powers of rope_theta, computed in float32 (transformers' inv_freq): a base of 1 or less
        // gives no spread of wavelengths, and one past float32's range gives infinite ones.
        if (!(RopeTheta > 1 && RopeTheta <= float.MaxValue))
            throw new ConfigValueException(source, "rope_theta", $"must be a number greater than 1 (RoPE's base, float32), found {Show(RopeTheta)}");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new ConfigValueException(source, "num_key_value_heads", $"{NumKeyValueHeads} does not divide num_attention_heads {NumAttentionHeads}");
        if (HeadDim % 2 != 0) throw new ConfigValueException(source, "head_dim", $"{HeadDim} must be even for RoPE{(HeadDimKey is null ? " (hidden_size / num_attention_heads)" : "")}");
        if (HiddenAct != "silu") throw new ConfigValueException(source, "hidden_act", $"{Quoted(HiddenAct)} is not supported (expected \"silu\")");
        if (RopeScaling is { } rs)
        {
            // transformers builds every family's rotary embedding through the same ROPE_INIT_FUNCTIONS, so llama3 and
            // yarn mean the same for Llama, Qwen2 and Qwen3.
            if (rs.Type is not ("default" or "llama3" or "yarn")) throw new ConfigValueException(source, rs.TypeKeyName, $"{Excerpt.Quote(rs.Type)} is not supported for {ModelType} (expected llama3 or yarn)");
            rs.Validate(source);
        }
    }

    /// <summary>Qwen2's and Qwen3's use_sliding_window (kept in <see cref="ModelConfig.Extra"/> for the round trip):
    /// transformers then limits attention to the last sliding_window positions in the upper layers, which these
    /// models do not do, so a configuration asking for it is refused rather than run differently. The released
    /// checkpoints (Qwen2.5, R1-Distill-Qwen, Qwen3) all say false.</summary>
    protected void CheckNoSlidingWindow(string source)
    {
        if (Extra is null || !Extra.TryGetValue("use_sliding_window", out var use)) return;
        if (use.ValueKind is not (System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False or System.Text.Json.JsonValueKind.Null))
            throw new ConfigValueException(source, "use_sliding_window", $"expects true or false, found {Compact(use)}");
        if (use.ValueKind != System.Text.Json.JsonValueKind.True || !Extra.TryGetValue("sliding_window", out var w)) return;
        // A window at least as long as the context leaves attention as it is.
        if (w.ValueKind == System.Text.Json.JsonValueKind.Null || w.ValueKind == System.Text.Json.JsonValueKind.Number && w.TryGetInt64(out long size) && size >= MaxPositionEmbeddings) return;
        throw new ConfigValueException(source, "use_sliding_window", $"true with sliding_window {Compact(w)} is not supported: " +
            "sliding-window attention is not implemented (the released checkpoints set use_sliding_window to false)");
    }

    /// <summary>A JSON value from the file on one line, cut short.</summary>
    static string Compact(System.Text.Json.JsonElement e) => Excerpt.Json(System.Text.Json.Nodes.JsonNode.Parse(e.GetRawText()));

    /// <summary>A string from the file, quoted and cut short (null as null).</summary>
    protected static string Quoted(string? value) => value is null ? "null" : Excerpt.Quote(value);

    public override long ParameterCount() => checked(
        (long)VocabSize * HiddenSize * (TieWordEmbeddings ? 1 : 2) + NumHiddenLayers * LayerParameters() + HiddenSize);

    /// <summary>Parameters of one decoder layer.</summary>
    long LayerParameters()
    {
        checked
        {
            long h = HiddenSize, q = (long)NumAttentionHeads * HeadDim, kv = (long)NumKeyValueHeads * HeadDim;
            return h * q + 2 * h * kv + q * h + 3 * h * IntermediateSize + 2 * h + LayerExtraParameters()
                + (QkvBias ? q + 2 * kv : 0) + (OutputBias ? h : 0) + (HasMlpBias ? 2L * IntermediateSize + h : 0);
        }
    }

    public override string DescribeSize(Func<string, string>? name = null)
    {
        name ??= k => k;
        double embeddings = (double)VocabSize * HiddenSize * (TieWordEmbeddings ? 1 : 2), layers;
        string perLayer;
        try { long p = LayerParameters(); layers = (double)NumHiddenLayers * p; perLayer = p.ToString("N0", System.Globalization.CultureInfo.InvariantCulture); }
        catch (OverflowException) { layers = double.PositiveInfinity; perLayer = "more than 2^63"; }
        return embeddings > layers
            ? $"{name("vocab_size")} {VocabSize} × {name("hidden_size")} {HiddenSize}{(TieWordEmbeddings ? "" : " × 2 (untied lm_head)")} in the embeddings"
            : $"{name("num_hidden_layers")} {NumHiddenLayers} × {perLayer} per layer ({name("hidden_size")} {HiddenSize}, {name("intermediate_size")} {IntermediateSize}, " +
              $"{name("num_attention_heads")} {NumAttentionHeads}, {name("num_key_value_heads")} {NumKeyValueHeads}, {name("head_dim")} {HeadDim})";
    }

    /// <summary>Per-layer parameters a derived family adds (Qwen3's q/k norms).</summary>
    protected virtual long LayerExtraParameters() => 0;

    public override double ForwardFlops(long rows, long length, long logitColumns)
    {
        double d = HiddenSize, q = NumAttentionHeads * (double)HeadDim, kv = NumKeyValueHeads * (double)HeadDim;
        double projections = d * q + 2 * d * kv + q * d + 3 * d * IntermediateSize;
        double attention = 2 * q * length; // scores and weighted values over all keys (training computes the full T×T)
        return 2 * (rows * length * NumHiddenLayers * (projections + attention) + rows * logitColumns * d * VocabSize);
    }
}

/// <summary>Grouped-query self-attention with RoPE (LlamaAttention).</summary>
public class LlamaAttention : nn.Module
{
    protected readonly int heads, kvHeads, headDim, layer;
    readonly double scale;
    public readonly Linear q_proj, k_proj, v_proj, o_proj;

    public LlamaAttention(LlamaConfig c, int layer, ScalarType dtype) : base("Attention")
    {
        heads = c.NumAttentionHeads; kvHeads = c.NumKeyValueHeads; headDim = c.HeadDim; this.layer = layer;
        scale = 1.0 / Math.Sqrt(headDim);
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
        var (q, k, v) = Project(x);
        var qr = Ops.Rope(q, cos, sin);            // [B, H, T, D]
        var kr = Ops.Rope(k, cos, sin);            // [B, KV, T, D]
        var vt = v.transpose(1, 2);
        var (keys, values) = cache != null ? cache.Append(layer, kr, vt) : (kr, vt);
        if (is_grad_enabled()) return o_proj.forward(Ops.Attention(qr, keys, values, mask, scale));
        // Inference: each tensor released as soon as nothing reads it (Project's views own their projections), so a
        // long prefill's attention holds only the rotated q and what the cache returns, and o_proj runs beside less.
        q.Dispose(); k.Dispose();
        if (cache != null) { kr.Dispose(); vt.Dispose(); v.Dispose(); }
        var attended = Ops.Attention(qr, keys, values, mask, scale);
        qr.Dispose();
        if (cache == null) { kr.Dispose(); vt.Dispose(); v.Dispose(); }
        var y = o_proj.forward(attended);
        attended.Dispose();
        return y;
    }

    /// <summary>q [B, T, H, D], k and v [B, T, KV, D]: the projections viewed per head.</summary>
    protected virtual (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        long b = x.size(0), t = x.size(1);
        var qkv = Linear.ApplyMany(x, q_proj, k_proj, v_proj);
        var views = (qkv[0].view(b, t, heads, headDim), qkv[1].view(b, t, kvHeads, headDim), qkv[2].view(b, t, kvHeads, headDim));
        if (!is_grad_enabled()) foreach (var p in qkv) p.Dispose(); // inference: the views keep the storage, and free it when disposed
        return views;
    }
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)) (LlamaMLP).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    public readonly Linear gate_proj, up_proj, down_proj;

    public LlamaMlp(LlamaConfig c, ScalarType dtype) : base("MLP")
    {
        gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.HasMlpBias, dtype);
        up_proj = new Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.HasMlpBias, dtype);
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, hasBias: c.HasMlpBias, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (QuantizedPrefill(x) is { } fused) return fused;
        var gateUp = Linear.ApplyMany(x, gate_proj, up_proj);
        var act = Ops.SwiGlu(gateUp[0], gateUp[1]);
        if (is_grad_enabled()) return down_proj.forward(act);
        // Inference: each intermediate released as soon as it is read, not with the layer's scope (for a 512-token
        // prefill of the 1.5B shape these are 18 MB each, and the layer's peak was all of them at once).
        gateUp[0].Dispose(); gateUp[1].Dispose();
        var y = down_proj.forward(act);
        act.Dispose();
        return y;
    }

    /// <summary>Inference over quantized weights at more rows than the int8 kernels take (prefill): the MLP in blocks
    /// of the intermediate dimension (<see cref="QuantPrefill.SwiGluMlp"/>), which never holds rows × intermediate
    /// float32 tensors; null where that does not apply (dense weights, biases, adapters, a gradient wanted).</summary>
    Tensor? QuantizedPrefill(Tensor x)
    {
        if (gate_proj.Quantized is not { } g || up_proj.Quantized is not { } u || down_proj.Quantized is not { } d) return null;
        if (gate_proj.bias is not null || up_proj.bias is not null || down_proj.bias is not null) return null;
        if (gate_proj.Lora is not null || up_proj.Lora is not null || down_proj.Lora is not null) return null;
        if (QuantLinearFunction.NeedsGrad(x, null) || x.device_type != DeviceType.CPU) return null;
        long k = x.size(-1), rows = k == 0 ? 0 : x.numel() / k;
        int kernelRows = Math.Min(QuantLinear.KernelMaxRows(g.Type), Math.Min(QuantLinear.KernelMaxRows(u.Type), QuantLinear.KernelMaxRows(d.Type)));
        return rows > kernelRows ? QuantPrefill.SwiGluMlp(x, g, u, d) : null;
    }
}

/// <summary>Pre-norm decoder layer: x + attn(norm(x)), then h + mlp(norm(h)).</summary>
public sealed class LlamaDecoderLayer : nn.Module
{
    public readonly LlamaAttention self_attn;
    public readonly LlamaMlp mlp;
    public readonly RmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(LlamaConfig c, LlamaAttention attention, ScalarType dtype) : base("DecoderLayer")
    {
        self_attn = attention;
        mlp = new LlamaMlp(c, dtype);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor mask, KvCache? cache)
    {
        if (is_grad_enabled())
        {
            var h = Ops.Add(x, self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, cache));
            return Ops.Add(h, mlp.forward(post_attention_layernorm.forward(h)));
        }
        // Inference: each intermediate released as soon as it is read rather than with the layer's scope, so that
        // the MLP of a long prefill runs beside x and h only (3 MB each for 512 positions of the 1.5B shape).
        var normed = input_layernorm.forward(x);
        var attended = self_attn.Forward(normed, cos, sin, mask, cache);
        normed.Dispose();
        var hidden = Ops.Add(x, attended);
        attended.Dispose();
        normed = post_attention_layernorm.forward(hidden);
        var mlpOut = mlp.forward(normed);
        normed.Dispose();
        var y = Ops.Add(hidden, mlpOut);
        mlpOut.Dispose(); hidden.Dispose();
        return y;
    }
}

/// <summary>The decoder stack ("model." in HF names): embeddings, layers, final norm.</summary>
public sealed class LlamaModel : nn.Module
{
    public readonly Embedding embed_tokens;
    public readonly ModuleList<LlamaDecoderLayer> layers;
    public readonly RmsNorm norm;

    public LlamaModel(LlamaConfig c, Func<int, LlamaAttention> attention, ScalarType dtype) : base("Model")
    {
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, dtype);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new LlamaDecoderLayer(c, attention(i), dtype)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, dtype);
        RegisterComponents();
    }
}

/// <summary>LlamaForCausalLM: the decoder stack plus the language-model head (tied to the embeddings when
/// tie_word_embeddings).</summary>
public class LlamaForCausalLM : CausalLM
{
    public readonly LlamaModel model;
    public readonly Linear? lm_head;
    readonly Rope rope;

    public LlamaForCausalLM(LlamaConfig config, ScalarType dtype = ScalarType.Float32)
        : this(config, i => new LlamaAttention(config, i, dtype), dtype) { }

    /// <param name="attention">the attention of layer i: where a derived family's layers differ (Qwen3's q/k norms)</param>
    protected LlamaForCausalLM(LlamaConfig config, Func<int, LlamaAttention> attention, ScalarType dtype) : base(config.ArchitectureName, config)
    {
        // Parameters are created directly in the target dtype, each with its dtype given explicitly: libtorch's default
        // dtype is one setting for the whole process, and a model built on another thread meanwhile would take it.
        model = new LlamaModel(config, attention, dtype);
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.HiddenSize, config.VocabSize, hasBias: false, dtype);
        rope = new Rope(config.HeadDim, config.RopeTheta, config.RopeScaling, config.MaxPositionEmbeddings);
        RegisterComponents();
    }

    public override Embedding Embeddings => model.embed_tokens;
    public override LinearWeight OutputWeight => lm_head?.Weight ?? model.embed_tokens.Weight;

    public override ModelCache CreateCache(int maxBatch, int capacity)
    {
        var c = (LlamaConfig)Config;
        return new KvCache(c.NumHiddenLayers, c.NumKeyValueHeads, c.HeadDim, maxBatch, capacity, DType, Device);
    }

    public override long CacheBytes(int maxBatch, int capacity)
    {
        var c = (LlamaConfig)Config;
        try { return checked(2L * c.NumHiddenLayers * maxBatch * c.NumKeyValueHeads * capacity * c.HeadDim * DTypeBytes); }
        catch (OverflowException) { return long.MaxValue; }
    }

    public override Tensor Hidden(Tensor inputIds, Tensor positions, Tensor mask, ModelCache? cache)
    {
        var (cos, sin) = rope.Gather(positions, DType, Device);
        var kv = (KvCache?)cache;
        var h = model.embed_tokens.forward(inputIds);
        foreach (var layer in model.layers)
        {
            // A scope per layer: a layer's intermediates are released as soon as the next layer starts, instead of
            // piling up until the caller's scope ends (for a long prefill that pile was as large as the weights).
            using var scope = NewDisposeScope();
            var next = layer.Forward(h, cos, sin, mask, kv).MoveToOuterDisposeScope();
            // Inference: the layer's input (the embedding's output or the previous layer's, this loop's own tensor) is
            // released now rather than with the caller's scope, where 28 of them piled up (88 MB for a 512-token
            // prefill of the 1.5B shape). Under autograd a kernel's backward may hold it, so it stays.
            if (!is_grad_enabled()) h.Dispose();
            h = next;
        }
        return model.norm.forward(h);
    }

    public override DecoderSegments Segments(Tensor inputIds, Tensor positions, Tensor mask)
    {
        var (cos, sin) = rope.Gather(positions, DType, Device);
        return new DecoderSegments(() => model.embed_tokens.forward(inputIds),
            model.layers.Select(layer => (Func<Tensor, Tensor>)(h => layer.Forward(h, cos, sin, mask, null))).ToList(),
            h => model.norm.forward(h));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) rope.Dispose();
        base.Dispose(disposing);
    }
}
