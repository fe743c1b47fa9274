using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>The inference-only element-wise kernels that share <see cref="TrainingKernels"/>' helpers (its sigmoid,
/// row chunking and tensor addresses) but have no backward.</summary>
public static unsafe partial class TrainingKernels
{
    /// <summary>
    /// Inference: gate ← silu(gate) ⊙ up in place, for contiguous float32 or bfloat16 tensors of the same shape (a
    /// quantized prefill's MLP blocks, <see cref="QuantPrefill.SwiGluMlp"/>). bfloat16 values are widened, the formula
    /// taken in float32 and rounded once to nearest even: what the unfused path gives when it widens gate and up to
    /// float32 and rounds the product for the next GEMM, without its float32 copies.
    /// </summary>
    public static void SwiGluInPlace(Tensor gate, Tensor up)
    {
        if (gate.dtype != up.dtype || !gate.shape.SequenceEqual(up.shape) || !gate.is_contiguous() || !up.is_contiguous()
            || gate.device_type != DeviceType.CPU || up.device_type != DeviceType.CPU || gate.dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException("SwiGluInPlace takes contiguous CPU float32 or bfloat16 gate and up of one shape");
        long n = gate.numel(), blocks = (n + Block - 1) / Block;
        if (gate.dtype == ScalarType.Float32)
        {
            float* gp = Ptr(gate), up_ = Ptr(up);
            ForRows(blocks, (start, end) =>
            {
                long i = start * Block, to = Math.Min(n, end * Block);
                for (; i + V <= to; i += V)
                {
                    var gv = Vector256.Load(gp + i);
                    (gv * Sigmoid(gv) * Vector256.Load(up_ + i)).Store(gp + i);
                }
                for (; i < to; i++) gp[i] = gp[i] * Sigmoid(gp[i]) * up_[i];
            });
            return;
        }
        ushort* gb = (ushort*)TensorMemory.Address(gate), ub = (ushort*)TensorMemory.Address(up);
        ForRows(blocks, (start, end) =>
        {
            long i = start * Block, to = Math.Min(n, end * Block);
            for (; i + 2 * V <= to; i += 2 * V)
            {
                var (g0, g1) = Vector256.Widen(Vector256.Load(gb + i));
                var (u0, u1) = Vector256.Widen(Vector256.Load(ub + i));
                var a = Bf16Silu(g0, u0);
                var b = Bf16Silu(g1, u1);
                Vector256.Narrow(Bf16.RoundFinite(a), Bf16.RoundFinite(b)).Store(gb + i);
            }
            for (; i < to; i++)
            {
                float g = BitConverter.Int32BitsToSingle(gb[i] << 16), u = BitConverter.Int32BitsToSingle(ub[i] << 16);
                gb[i] = Bf16.RoundFinite(BitConverter.SingleToUInt32Bits(g * Sigmoid(g) * u));
            }
        });
    }

    static Vector256<uint> Bf16Silu(Vector256<uint> g, Vector256<uint> u)
    {
        var gf = (g << 16).AsSingle();
        return (gf * Sigmoid(gf) * (u << 16).AsSingle()).AsUInt32();
    }
}
