using R1Sharp.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Models;

/// <summary>SwiGLU feed-forward down(silu(gate(x)) ⊙ up(x)) of a given width: the dense layers, each routed expert and
/// the shared experts (DeepseekV3MLP).</summary>
public sealed partial class DeepseekV3Mlp : nn.Module<Tensor, Tensor>
{
    public readonly Linear gate_proj, up_proj, down_proj;

    public DeepseekV3Mlp(int hidden, int intermediate, ScalarType dtype) : base("MLP")
    {
        gate_proj = new Linear(hidden, intermediate, hasBias: false, dtype);
        up_proj = new Linear(hidden, intermediate, hasBias: false, dtype);
        down_proj = new Linear(intermediate, hidden, hasBias: false, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var gateUp = Linear.ApplyMany(x, gate_proj, up_proj);
        return down_proj.forward(Ops.SwiGlu(gateUp[0], gateUp[1]));
    }
}

/// <summary>The router ("mlp.gate"): its weight [experts, hidden] and, for noaux_tc, the per-expert
/// e_score_correction_bias that auxiliary-loss-free balancing adjusts (kept in float32, with no gradient: it only
/// selects).</summary>
public sealed class DeepseekV3TopkRouter : nn.Module
{
    public readonly Parameter weight;
    public readonly Parameter? e_score_correction_bias;

    public DeepseekV3TopkRouter(DeepseekV3Config c, ScalarType dtype) : base("Gate")
    {
        weight = new Parameter(zeros(c.NRoutedExperts!.Value, c.HiddenSize, dtype: dtype));
        register_parameter("weight", weight);
        if (c.UsesScoreCorrectionBias)
        {
            e_score_correction_bias = new Parameter(zeros(c.NRoutedExperts.Value, dtype: ScalarType.Float32), requires_grad: false);
            register_parameter("e_score_correction_bias", e_score_correction_bias);
        }
    }
}

/// <summary>Which experts the tokens of one MoE layer went to in a forward pass: what load balancing and the
/// expert-load metrics read. Its tensors live only as long as the layer's dispose scope.</summary>
/// <param name="Indices">[B·T, k] chosen experts</param>
/// <param name="Scores">[B·T, experts] router scores (with gradient, for the sequence-wise balance loss)</param>
public sealed record MoeRoutingRecord(int Layer, Tensor Indices, Tensor Scores, long Batch, long Length);

/// <summary>
/// DeepSeekMoE (Dai et al. 2024; DeepSeek-V3 §2.1.2): h + Σ shared experts(h) + Σᵢ gᵢ·expertᵢ(h) over the k routed
/// experts each token is sent to (<see cref="MoeRouting"/>). The tokens of a batch are grouped by expert, so each
/// expert runs one product over all its tokens rather than one per token.
/// </summary>
public sealed partial class DeepseekV3MoE : nn.Module<Tensor, Tensor>
{
    readonly DeepseekV3Config config;
    readonly int layer;
    public readonly ModuleList<DeepseekV3Mlp> experts;
    public readonly DeepseekV3TopkRouter gate;
    public readonly DeepseekV3Mlp? shared_experts;

    public DeepseekV3MoE(DeepseekV3Config c, int layer, ScalarType dtype) : base("MoE")
    {
        config = c; this.layer = layer;
        experts = new ModuleList<DeepseekV3Mlp>(Enumerable.Range(0, c.NRoutedExperts!.Value)
            .Select(_ => new DeepseekV3Mlp(c.HiddenSize, c.MoeIntermediateSize, dtype)).ToArray());
        gate = new DeepseekV3TopkRouter(c, dtype);
        if (c.SharedExperts > 0) shared_experts = new DeepseekV3Mlp(c.HiddenSize, c.MoeIntermediateSize * c.SharedExperts, dtype);
        RegisterComponents();
    }

    public int Layer => layer;

    /// <summary>Told where each forward pass that records gradients routed its tokens (the model's
    /// <see cref="DeepseekTrainingTerms"/>: balancing and its loss are about training passes only).</summary>
    public Action<MoeRoutingRecord>? Observer { get; set; }

    /// <summary>Per-token loops instead of grouping by expert: the reference the grouping is tested and benchmarked against.</summary>
    public bool PerToken { get; set; }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>residual + forward(x): the decoder layer's residual add, folded into the decode path's last pass.</summary>
    public Tensor ForwardPlus(Tensor x, Tensor residual) => Forward(x, residual);

    Tensor Forward(Tensor x, Tensor? residual)
    {
        long b = x.size(0), t = x.size(1), h = x.size(2);
        var flat = x.reshape(-1, h);
        if (!PerToken && DecodeApplies(flat, residual) && RunDecodeToken(flat, residual) is { } decoded) return decoded.view(b, t, h);
        var output = Mixture(x, flat, b, t, h);
        return residual is null ? output : Ops.Add(residual, output);
    }

    /// <summary>The tensor path: router, routing, the routed experts (grouped, token by token, or one token's
    /// products in one kernel dispatch), then the shared experts.</summary>
    Tensor Mixture(Tensor x, Tensor flat, long b, long t, long h)
    {
        // The router runs in float32 whatever the model's dtype (DeepseekV3TopkRouter).
        var logits = F.linear(flat.to(ScalarType.Float32), gate.weight.to(ScalarType.Float32));
        var (indices, weights, scores) = MoeRouting.Route(logits, config, gate.e_score_correction_bias);
        if (is_grad_enabled()) Observer?.Invoke(new MoeRoutingRecord(layer, indices, scores, b, t));
        var routed = PerToken ? RunPerToken(flat, indices, weights)
            : flat.size(0) == 1 && !weights.requires_grad && flat.device_type == DeviceType.CPU ? RunOneToken(flat, indices, weights)
            : RunGrouped(flat, indices, weights);
        var y = routed.view(b, t, h);
        return shared_experts is null ? y : Ops.Add(y, shared_experts.forward(x));
    }

    /// <summary>Tokens sorted by expert (a stable sort of the N·k choices), each expert's block through it in one
    /// product, outputs weighted and added back to their tokens in float32 (transformers accumulates in the weights'
    /// float32 too), then cast to the model's dtype.</summary>
    Tensor RunGrouped(Tensor flat, Tensor indices, Tensor weights)
    {
        long n = flat.size(0), k = indices.size(1);
        var choice = indices.reshape(-1);
        var order = choice.sort(dim: 0, descending: false, stable: true).Indices;
        var counts = choice.bincount(null, experts.Count).data<long>().ToArray();
        using var perToken = k.ToScalar(); // held for the call (HeldScalars)
        var token = order.div(perToken, rounding_mode: RoundingMode.floor);
        var inputs = flat.index_select(0, token);
        Tensor products;
        if (KernelApplies(inputs, weights, counts)) products = ExpertProducts(inputs, counts);
        else
        {
            var outputs = new List<Tensor>();
            long start = 0;
            for (int e = 0; e < counts.Length; e++)
            {
                if (counts[e] == 0) continue;
                outputs.Add(experts[e].forward(inputs.narrow(0, start, counts[e])));
                start += counts[e];
            }
            products = cat(outputs, 0);
        }
        var weighted = products.to(ScalarType.Float32) * weights.reshape(-1).index_select(0, order).unsqueeze(1);
        return zeros([n, flat.size(1)], dtype: ScalarType.Float32, device: flat.device).index_add(0, token, weighted, HeldScalars.One).to(flat.dtype);
    }

    /// <summary>A decode step of one sequence: one token, its k experts read back to the CPU and sorted, the token's
    /// row once per expert through <see cref="ExpertProducts"/> when the kernel applies (two dispatches for all k
    /// experts), and the weighted sum as one product. Skips <see cref="RunGrouped"/>'s sort, gathers and scatter,
    /// whose dispatch costs more than the arithmetic at this size.</summary>
    Tensor RunOneToken(Tensor flat, Tensor indices, Tensor weights)
    {
        var chosen = indices.data<long>().ToArray();
        var w = weights.to(ScalarType.Float32).data<float>().ToArray();
        Array.Sort(chosen, w); // by expert, as ExpertProducts lays its rows out
        var counts = new long[experts.Count];
        foreach (var e in chosen) counts[e]++;
        var inputs = flat.expand(chosen.Length, flat.size(1));
        if (!KernelApplies(inputs, weights, counts)) return RunGrouped(flat, indices, weights);
        var products = ExpertProducts(inputs, counts).to(ScalarType.Float32);
        return matmul(tensor(w, [1, w.Length]), products).to(flat.dtype);
    }

    /// <summary>Inference over few tokens per expert (decode steps of a batch of sequences), dense float32/bfloat16
    /// experts on a CPU with the decode kernel: <see cref="ExpertProducts"/>. Prefill, where an expert gets many tokens,
    /// keeps one GEMM per expert.</summary>
    bool KernelApplies(Tensor inputs, Tensor weights, long[] counts)
    {
        if (!Gemv.Supported || inputs.device_type != DeviceType.CPU || weights.requires_grad || counts.Max() > LinearKernels.FastPathMaxRows
            || inputs.dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            return false;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            var x = experts[e];
            foreach (var l in new[] { x.gate_proj, x.up_proj, x.down_proj })
                if (l.Weight.Dense is not { } w || w.dtype != inputs.dtype || !w.is_contiguous() || l.bias is not null) return false;
        }
        return true;
    }

    /// <summary>Every routed expert over its tokens (inputs sorted by expert, counts per expert) in two dispatches of
    /// the decode kernel instead of three products per expert: the gate and up products of all experts at once, each
    /// target reading its own tokens' rows, one SwiGLU over all of them, then all the down products. Same rounding as
    /// the per-expert products (each output rounded once to the model's dtype).</summary>
    unsafe Tensor ExpertProducts(Tensor inputs, long[] counts)
    {
        using var scope = NewDisposeScope();
        long n = inputs.size(0);
        int hidden = (int)inputs.size(1), inter = config.MoeIntermediateSize;
        bool bf16 = inputs.dtype == ScalarType.BFloat16;
        int es = bf16 ? 2 : 4;
        var x = inputs.to(ScalarType.Float32).contiguous(); // the kernel reads float32 inputs
        var gate = empty([n, inter], dtype: inputs.dtype);
        var up = empty([n, inter], dtype: inputs.dtype);
        var output = empty([n, hidden], dtype: inputs.dtype);
        nint xp = TensorMemory.Address(x), gp = TensorMemory.Address(gate), upp = TensorMemory.Address(up), op = TensorMemory.Address(output);
        var first = new List<Gemv.Target>();
        var used = new List<(int Expert, long Start)>();
        long start = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            int rows = (int)counts[e];
            nint xe = xp + (nint)(start * hidden * 4);
            first.Add(new Gemv.Target(TensorMemory.Address(experts[e].gate_proj.Weight.Dense!), gp + (nint)(start * inter * es), inter, X: xe, Rows: rows));
            first.Add(new Gemv.Target(TensorMemory.Address(experts[e].up_proj.Weight.Dense!), upp + (nint)(start * inter * es), inter, X: xe, Rows: rows));
            used.Add((e, start));
            start += rows;
        }
        int threads = get_num_threads();
        Gemv.Run(bf16, first.ToArray(), (float*)xp, 0, hidden, threads);
        var act = Ops.SwiGlu(gate, up).to(ScalarType.Float32).contiguous();
        nint ap = TensorMemory.Address(act);
        var second = used.Select(u => new Gemv.Target(TensorMemory.Address(experts[u.Expert].down_proj.Weight.Dense!), op + (nint)(u.Start * hidden * es), hidden,
            X: ap + (nint)(u.Start * inter * 4), Rows: (int)counts[u.Expert])).ToArray();
        Gemv.Run(bf16, second, (float*)ap, 0, inter, threads);
        GC.KeepAlive(experts);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Every token through each of its k experts one at a time.</summary>
    Tensor RunPerToken(Tensor flat, Tensor indices, Tensor weights)
    {
        long n = flat.size(0), k = indices.size(1);
        var chosen = indices.data<long>().ToArray();
        var rows = new Tensor[n];
        for (long i = 0; i < n; i++)
        {
            var xi = flat.narrow(0, i, 1);
            Tensor? sum = null;
            for (long j = 0; j < k; j++)
            {
                var y = experts[(int)chosen[i * k + j]].forward(xi).to(ScalarType.Float32) * weights[i, j];
                sum = sum is null ? y : Ops.Add(sum, y);
            }
            rows[i] = sum!;
        }
        return cat(rows, 0).to(flat.dtype);
    }
}
