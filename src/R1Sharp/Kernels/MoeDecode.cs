using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

/// <summary>
/// The arithmetic of a DeepSeekMoE layer for one token between its two <see cref="Gemv"/> dispatches
/// (<see cref="Models.DeepseekV3MoE"/>'s decode path): router logits from the gate's weight read in place, SwiGLU of
/// the experts' gate and up outputs, and the weighted sum of their down outputs plus the shared experts'. Each value
/// is rounded where the libtorch path rounds it: router logits in float32 (DeepseekV3TopkRouter), silu(gate) and
/// silu(gate)·up in the model's dtype (<see cref="Ops.SwiGlu"/>), the routed sum in float32 rounded once, then the
/// shared experts' output added and rounded.
/// </summary>
public static unsafe class MoeDecode
{
    static readonly AsyncLocal<bool> disabled = new();

    /// <summary>Off: the tensor path, for A/B in tests and the bench (per async flow).</summary>
    public static bool Enabled { get => !disabled.Value; set => disabled.Value = !value; }

    /// <summary>logits[e] = x · W[e] in float32 for the router weight W [experts, hidden] (float32 or bfloat16, widened
    /// exactly), as F.linear over the float32 copies computes them (up to the order of the sum).</summary>
    public static void RouterLogits(bool bf16, float* x, nint w, int experts, int hidden, float* logits)
    {
        if (bf16) RouterLogits<Bf16>(x, w, experts, hidden, logits);
        else RouterLogits<F32>(x, w, experts, hidden, logits);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RouterLogits<TW>(float* x, nint w, int experts, int hidden, float* logits) where TW : struct, IWeights
    {
        for (int e = 0; e < experts; e++)
        {
            nint row = w + (nint)((long)e * hidden * TW.ElementSize);
            var acc = Vector256<float>.Zero;
            int i = 0;
            for (; i + 8 <= hidden; i += 8) acc = Fma.MultiplyAdd(TW.Load(row, i), Avx.LoadVector256(x + i), acc);
            float sum = Vector256.Sum(acc);
            for (; i < hidden; i++) sum += TW.Scalar(row, i) * x[i];
            logits[e] = sum;
        }
    }

    /// <summary>act[i] = silu(gate[i])·up[i] for gate and up in the model's dtype, each of the two results rounded to
    /// it (F.silu, then mul_), returned widened to float32 for the down products.</summary>
    public static void SwiGlu(bool bf16, nint gate, nint up, float* act, int count)
    {
        for (int i = 0; i < count; i++)
        {
            float g = SmallInference.Load(gate, i, bf16);
            float s = SmallInference.Round(g / (1f + MathF.Exp(-g)), bf16);
            act[i] = SmallInference.Round(s * SmallInference.Load(up, i, bf16), bf16);
        }
    }

    /// <summary>output = round(round(Σⱼ weights[j]·down[j]) + shared), then + residual and rounded again: the routed
    /// experts' down outputs [k, hidden] weighted in float32 and rounded once, the shared experts' output [hidden] (0:
    /// none) added, then the decoder layer's residual [hidden] (0: none), each add rounded as libtorch's.</summary>
    public static void Combine(bool bf16, nint down, ReadOnlySpan<float> weights, nint shared, nint residual, nint output, int hidden)
    {
        int es = bf16 ? 2 : 4;
        for (int i = 0; i < hidden; i++)
        {
            float sum = 0;
            for (int j = 0; j < weights.Length; j++) sum += weights[j] * SmallInference.Load(down + (nint)((long)j * hidden * es), i, bf16);
            if (shared != 0) sum = SmallInference.Round(sum, bf16) + SmallInference.Load(shared, i, bf16);
            if (residual != 0) sum = SmallInference.Round(sum, bf16) + SmallInference.Load(residual, i, bf16);
            SmallInference.Store(output, i, sum, bf16);
        }
    }

    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;
}
