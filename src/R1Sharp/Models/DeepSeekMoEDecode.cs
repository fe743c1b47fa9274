using System.Buffers;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>DeepSeekMoE for the one token of a batch-1 decode step.</summary>
public sealed partial class DeepseekV3MoE
{
    /// <summary>One token, no gradient, dense float32/bfloat16 router and shared experts on a CPU with the decode
    /// kernel. (Whether the chosen routed experts are dense too is known only after routing.)</summary>
    bool DecodeApplies(Tensor flat, Tensor? residual) =>
        (residual is null || (residual.dtype == flat.dtype && residual.device_type == DeviceType.CPU && residual.is_contiguous() && residual.numel() == flat.numel()))
        && DecodeApplies(flat);

    bool DecodeApplies(Tensor flat) =>
        MoeDecode.Enabled && MoeDecode.Supported && Gemv.Supported && !is_grad_enabled() && flat.size(0) == 1
        && flat.device_type == DeviceType.CPU && (flat.dtype is ScalarType.Float32 or ScalarType.BFloat16)
        && gate.weight.dtype == flat.dtype && gate.weight.is_contiguous() && gate.weight.device_type == DeviceType.CPU
        && (gate.e_score_correction_bias is null || gate.e_score_correction_bias.is_contiguous())
        && (shared_experts is null || Ready(shared_experts, flat.dtype));

    static bool Ready(DeepseekV3Mlp m, ScalarType dtype) => Ready(m.gate_proj, dtype) && Ready(m.up_proj, dtype) && Ready(m.down_proj, dtype);

    static bool Ready(Linear l, ScalarType dtype) =>
        l.Quantized is null && l.Lora is null && l.bias is null && l.weight is { } w && w.dtype == dtype && w.is_contiguous() && w.device_type == DeviceType.CPU;

    /// <summary>
    /// The token's whole MoE in two dispatches of the decode kernel and no libtorch operator but its output: router
    /// logits and routing in C# (<see cref="MoeRouting.RouteOne"/>), then the gate and up products of the k chosen experts
    /// and the shared experts in one <see cref="Gemv"/> call, SwiGLU, their down products in a second call, and the
    /// weighted sum, plus the residual when given (<see cref="MoeDecode"/>). The tensor path costs about forty operators per layer at this size.
    /// Null when a chosen expert is quantized or has adapters: the caller then takes the tensor path.
    /// </summary>
    unsafe Tensor? RunDecodeToken(Tensor flat, Tensor? residual)
    {
        int hidden = (int)flat.size(1), inter = config.MoeIntermediateSize, routed = experts.Count;
        var dtype = flat.dtype;
        bool bf16 = dtype == ScalarType.BFloat16;
        int es = bf16 ? 2 : 4;
        var xc = flat.is_contiguous() ? flat : flat.contiguous();
        float[] xf = ArrayPool<float>.Shared.Rent(hidden + routed);
        int[] chosen;
        float[] weights;
        fixed (float* xp = xf)
        {
            nint source = TensorMemory.Address(xc);
            for (int i = 0; i < hidden; i++) xp[i] = SmallInference.Load(source, i, bf16);
            float* logits = xp + hidden;
            MoeDecode.RouterLogits(bf16, xp, TensorMemory.Address(gate.weight), routed, hidden, logits);
            var bias = gate.e_score_correction_bias is { } b ? new ReadOnlySpan<float>((void*)TensorMemory.Address(b), routed) : default;
            (chosen, weights) = MoeRouting.RouteOne(new ReadOnlySpan<float>(logits, routed), config, bias);
            GC.KeepAlive(gate);
        }
        Array.Sort(chosen, weights); // by expert, as the tensor path sums them
        foreach (int e in chosen)
            if (!Ready(experts[e], dtype)) { ArrayPool<float>.Shared.Return(xf); return null; }

        int k = chosen.Length, sharedInter = shared_experts is null ? 0 : (int)shared_experts.gate_proj.OutFeatures;
        int width = k * inter + sharedInter; // every expert's intermediate values side by side, the shared ones last
        byte[] products = ArrayPool<byte>.Shared.Rent((2 * width + (k + 1) * hidden) * es);
        float[] act = ArrayPool<float>.Shared.Rent(width);
        var output = empty([1, hidden], dtype: dtype);
        try
        {
            fixed (float* xp = xf, ap = act)
            fixed (byte* pp = products)
            {
                nint gates = (nint)pp, ups = gates + width * es, downs = ups + width * es;
                int count = k + (shared_experts is null ? 0 : 1);
                var first = new Gemv.Target[2 * count];
                var second = new Gemv.Target[count];
                for (int i = 0; i < count; i++)
                {
                    var mlp = i < k ? experts[chosen[i]] : shared_experts!;
                    int n = i < k ? inter : sharedInter, offset = i * inter;
                    first[2 * i] = new Gemv.Target(TensorMemory.Address(mlp.gate_proj.weight!), gates + offset * es, n);
                    first[2 * i + 1] = new Gemv.Target(TensorMemory.Address(mlp.up_proj.weight!), ups + offset * es, n);
                    second[i] = new Gemv.Target(TensorMemory.Address(mlp.down_proj.weight!), downs + (nint)((long)i * hidden * es), hidden,
                        X: (nint)(ap + offset), Rows: 1, K: n);
                }
                int threads = get_num_threads();
                Gemv.Run(bf16, first, xp, 1, hidden, threads);
                MoeDecode.SwiGlu(bf16, gates, ups, ap, width);
                Gemv.Run(bf16, second, ap, 1, inter, threads);
                MoeDecode.Combine(bf16, downs, weights, shared_experts is null ? 0 : downs + (nint)((long)k * hidden * es),
                    residual is null ? 0 : TensorMemory.Address(residual), TensorMemory.Address(output), hidden);
            }
            GC.KeepAlive(experts); GC.KeepAlive(shared_experts); GC.KeepAlive(residual); // weights read only through their addresses above
            return output;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(xf);
            ArrayPool<float>.Shared.Return(act);
            ArrayPool<byte>.Shared.Return(products);
            if (!ReferenceEquals(xc, flat)) xc.Dispose();
        }
    }
}
