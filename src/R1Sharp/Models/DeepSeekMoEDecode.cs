using System.Runtime.CompilerServices;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>The dense SwiGLU layers for the one token of a batch-1 decode step: <see cref="MoeDecode"/> with no routed
/// experts, the layer's weights in the place of the shared experts'.</summary>
public sealed partial class DeepseekV3Mlp
{
    (Tensor Gate, Tensor Up, Tensor Down, ScalarType DType)? decodeWeights;

    /// <summary>residual + forward(x): the decoder layer's residual add, folded into the decode kernel's last pass on a
    /// batch-1 decode step (one region of the kernel threads: gate/up with SwiGLU, down, the add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public unsafe Tensor ForwardPlus(Tensor x, Tensor residual)
    {
        long hidden = x.size(-1);
        if (!(MoeDecode.Enabled && MoeDecode.Supported && !is_grad_enabled() && x.numel() == hidden && x.device_type == DeviceType.CPU
            && (x.dtype is ScalarType.Float32 or ScalarType.BFloat16) && residual.dtype == x.dtype && residual.device_type == DeviceType.CPU
            && residual.is_contiguous() && residual.numel() == hidden && DecodeReady(x.dtype)))
            return Ops.Add(residual, forward(x));
        bool bf16 = x.dtype == ScalarType.BFloat16;
        var xc = x.is_contiguous() ? x : x.contiguous();
        var output = empty(residual.shape, dtype: x.dtype);
        float* xf = stackalloc float[(int)hidden];
        nint source = TensorMemory.Address(xc);
        for (int i = 0; i < hidden; i++) xf[i] = SmallInference.Load(source, i, bf16);
        var weights = new MoeDecode.Weights([], [], [], 0, 0, TensorMemory.Address(gate_proj.weight!), TensorMemory.Address(up_proj.weight!),
            TensorMemory.Address(down_proj.weight!), (int)gate_proj.OutFeatures);
        MoeDecode.Run(bf16, weights, 0, null, xf, TensorMemory.Address(residual), TensorMemory.Address(output), (int)hidden, get_num_threads());
        GC.KeepAlive(xc); GC.KeepAlive(residual); // read only through their addresses above
        if (!ReferenceEquals(xc, x)) xc.Dispose();
        return output;
    }

    /// <summary>Dense weights of dtype, contiguous on the CPU, no adapters: checked through libtorch once per set of
    /// parameters, then by reference.</summary>
    bool DecodeReady(ScalarType dtype)
    {
        if (decodeWeights is { } d && d.DType == dtype && ReferenceEquals(d.Gate, gate_proj.weight) && ReferenceEquals(d.Up, up_proj.weight)
            && ReferenceEquals(d.Down, down_proj.weight) && gate_proj.Lora is null && up_proj.Lora is null && down_proj.Lora is null
            && gate_proj.Quantized is null && up_proj.Quantized is null && down_proj.Quantized is null)
            return true;
        decodeWeights = null;
        if (!DeepseekV3MoE.Ready(this, dtype)) return false;
        decodeWeights = (gate_proj.weight!, up_proj.weight!, down_proj.weight!, dtype);
        return true;
    }
}

/// <summary>DeepSeekMoE for the one token of a batch-1 decode step.</summary>
public sealed partial class DeepseekV3MoE
{
    /// <summary>One token, no gradient, dense float32/bfloat16 router and shared experts on a CPU with the decode
    /// kernel, every routed expert dense too (<see cref="DecodeWeights"/>).</summary>
    bool DecodeApplies(Tensor flat, Tensor? residual) =>
        (residual is null || (residual.dtype == flat.dtype && residual.device_type == DeviceType.CPU && residual.is_contiguous() && residual.numel() == flat.numel()))
        && DecodeApplies(flat);

    bool DecodeApplies(Tensor flat) =>
        MoeDecode.Enabled && MoeDecode.Supported && Gemv.Supported && !is_grad_enabled() && flat.size(0) == 1
        && flat.device_type == DeviceType.CPU && (flat.dtype is ScalarType.Float32 or ScalarType.BFloat16);

    internal static bool Ready(DeepseekV3Mlp m, ScalarType dtype) => Ready(m.gate_proj, dtype) && Ready(m.up_proj, dtype) && Ready(m.down_proj, dtype);

    static bool Ready(Linear l, ScalarType dtype) =>
        l.Quantized is null && l.Lora is null && l.bias is null && l.weight is { } w && w.dtype == dtype && w.is_contiguous() && w.device_type == DeviceType.CPU;

    /// <summary>The weights' addresses for <see cref="MoeDecode"/>, gathered once: checking every expert's dtype and
    /// layout costs a few hundred calls into libtorch, more than the rest of a step's arithmetic here. Each call checks
    /// only that the parameters are the same objects, still dense and without adapters (field reads).</summary>
    sealed record DecodePlan(ScalarType DType, Tensor?[] Parameters, MoeDecode.Weights Weights);

    DecodePlan? decodePlan;

    IEnumerable<Linear> DecodeLinears()
    {
        foreach (var m in experts) { yield return m.gate_proj; yield return m.up_proj; yield return m.down_proj; }
        if (shared_experts is { } s) { yield return s.gate_proj; yield return s.up_proj; yield return s.down_proj; }
    }

    /// <summary>The plan for dtype, rebuilt when a parameter was replaced; null when some expert is quantized, has
    /// adapters or a bias, or is not a contiguous CPU tensor of that dtype (the tensor path then runs).</summary>
    DecodePlan? DecodeWeights(ScalarType dtype)
    {
        if (decodePlan is { } p && p.DType == dtype && Current(p)) return p;
        decodePlan = null;
        if (!(gate.weight.dtype == dtype && gate.weight.is_contiguous() && gate.weight.device_type == DeviceType.CPU
            && (gate.e_score_correction_bias is null || gate.e_score_correction_bias.is_contiguous())))
            return null;
        foreach (var l in DecodeLinears()) if (!Ready(l, dtype)) return null;
        nint[] Of(Func<DeepseekV3Mlp, Linear> pick) => experts.Select(m => TensorMemory.Address(pick(m).weight!)).ToArray();
        var s = shared_experts;
        var weights = new MoeDecode.Weights(Of(m => m.gate_proj), Of(m => m.up_proj), Of(m => m.down_proj), config.MoeIntermediateSize,
            TensorMemory.Address(gate.weight),
            s is null ? 0 : TensorMemory.Address(s.gate_proj.weight!), s is null ? 0 : TensorMemory.Address(s.up_proj.weight!),
            s is null ? 0 : TensorMemory.Address(s.down_proj.weight!), s is null ? 0 : (int)s.gate_proj.OutFeatures);
        var parameters = DecodeLinears().Select(l => (Tensor?)l.weight).Append(gate.weight).Append(gate.e_score_correction_bias).ToArray();
        return decodePlan = new DecodePlan(dtype, parameters, weights);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    bool Current(DecodePlan p)
    {
        int i = 0;
        foreach (var l in DecodeLinears())
            if (!ReferenceEquals(l.weight, p.Parameters[i++]) || l.Quantized is not null || l.Lora is not null) return false;
        return ReferenceEquals(gate.weight, p.Parameters[i]) && ReferenceEquals(gate.e_score_correction_bias, p.Parameters[i + 1]);
    }

    /// <summary>
    /// The token's whole MoE in one parallel region of the decode kernel threads and no libtorch operator but its
    /// output (<see cref="MoeDecode"/>): router logits and routing (<see cref="MoeRouting.RouteOne"/>), the gate and up
    /// products of the shared and the k chosen experts with SwiGLU, the down products and the weighted sum, plus the
    /// residual when given. The tensor path costs about forty operators per layer at this size. Null when some expert
    /// cannot be read by the kernel (quantized, adapters): the caller then takes the tensor path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    unsafe Tensor? RunDecodeToken(Tensor flat, Tensor? residual)
    {
        var dtype = flat.dtype;
        if (DecodeWeights(dtype) is not { } plan) return null;
        int hidden = (int)flat.size(1);
        bool bf16 = dtype == ScalarType.BFloat16;
        var xc = flat.is_contiguous() ? flat : flat.contiguous();
        var output = empty([1, hidden], dtype: dtype);
        float* x = stackalloc float[hidden];
        nint source = TensorMemory.Address(xc);
        for (int i = 0; i < hidden; i++) x[i] = SmallInference.Load(source, i, bf16);
        var bias = gate.e_score_correction_bias;
        nint biasAddress = bias is null ? 0 : TensorMemory.Address(bias);
        int routed = experts.Count;
        MoeDecode.Router route = logits =>
        {
            var (chosen, weights) = MoeRouting.RouteOne(logits, config, biasAddress == 0 ? default : new ReadOnlySpan<float>((void*)biasAddress, routed));
            Array.Sort(chosen, weights); // by expert, as the tensor path sums them
            return (chosen, weights);
        };
        MoeDecode.Run(bf16, plan.Weights, config.NumExpertsPerTok!.Value, route, x, residual is null ? 0 : TensorMemory.Address(residual),
            TensorMemory.Address(output), hidden, get_num_threads());
        GC.KeepAlive(bias); GC.KeepAlive(residual); GC.KeepAlive(xc); // read only through their addresses above
        if (!ReferenceEquals(xc, flat)) xc.Dispose();
        return output;
    }
}
