using System.Runtime.CompilerServices;
using System.Buffers;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Kernels;

/// <summary>
/// The CPU paths of <see cref="Ops.Linear"/> besides libtorch's own: a float32 or bfloat16 weight multiplied by a few
/// rows without autograd goes through <see cref="Gemv"/>, which reads the weight at memory speed. On CPUs without
/// native bf16 instructions (<see cref="CpuFeatures.NativeBf16Gemm"/>) a bfloat16 prefill avoids libtorch's bfloat16
/// GEMM: up to <see cref="Bf16ChunkedMaxRows"/> rows it goes through the kernel 16 rows at a time, beyond that the
/// weight is widened to float32 for one float32 GEMM (the output rounded to bf16 once, as addmm rounds).
/// Measurements behind the thresholds: bench/README.md.
/// </summary>
public static class LinearKernels
{
    /// <summary>Above this many rows the matmul is compute-bound and libtorch's GEMM is the better choice.</summary>
    public const int FastPathMaxRows = 16;
    /// <summary>Up to here the 16-row kernel beats widening a bf16 weight to float32 (bench: profile).</summary>
    public const int Bf16ChunkedMaxRows = 127;
    /// <summary>With native bf16 GEMM instructions, libtorch's bf16 product beats the kernel from 4 rows on (bench/README.md).</summary>
    public const int NativeBf16GemvMaxRows = 3;

    public static long Rows(Tensor x)
    {
        long k = x.size(-1); // size(d), not shape: shape builds an array through a callback, ~1-2 µs a call
        return k == 0 ? 0 : x.numel() / k;
    }

    /// <summary>The decode kernel applies to every weight: few rows, f32/bf16 on the CPU, no gradient wanted.</summary>
    public static bool UsesGemv(Tensor x, Tensor weight, Tensor? bias, long rows) =>
        rows > 0 && rows <= (weight.dtype == ScalarType.BFloat16 && CpuFeatures.NativeBf16Gemm ? NativeBf16GemvMaxRows : FastPathMaxRows)
        && Gemv.Supported
        && (weight.dtype == ScalarType.BFloat16 || weight.dtype == ScalarType.Float32) && x.dtype == weight.dtype
        && KernelReady(x, weight, bias);

    /// <summary>A bfloat16 product that avoids libtorch's bf16 GEMM: only where that GEMM has no native bf16
    /// instructions to run on (<see cref="CpuFeatures.NativeBf16Gemm"/>); with them it is the fastest path.</summary>
    public static bool Bf16Inference(Tensor x, Tensor weight, Tensor? bias, long rows) =>
        rows > 0 && !CpuFeatures.NativeBf16Gemm && Gemv.Supported && weight.dtype == ScalarType.BFloat16
        && x.dtype == ScalarType.BFloat16 && KernelReady(x, weight, bias);

    /// <summary>CPU, contiguous weight (and bias of the same type), and no gradient wanted.</summary>
    static bool KernelReady(Tensor x, Tensor weight, Tensor? bias) =>
        weight.device_type == DeviceType.CPU && weight.is_contiguous()
        && (bias is null || (bias.dtype == weight.dtype && bias.is_contiguous()))
        && !(is_grad_enabled() && (weight.requires_grad || x.requires_grad || bias?.requires_grad == true));

    /// <summary>
    /// The kernel over blocks of up to <see cref="FastPathMaxRows"/> rows of x (bf16 beyond 16 rows: each block reads
    /// the weights once more). The only tensor operation is allocating each output: x is read in place (bf16 widened
    /// into a pooled buffer), and the kernel writes the outputs, bias included, straight into them, so no libtorch
    /// operator surrounds it.
    /// </summary>
    /// <param name="float32Output">outputs in float32 (values rounded to the weight's type first, as a cast of the
    /// usual outputs would give): the output head's logits</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    public static unsafe Tensor[] DecodeProducts(Tensor x, Tensor[] weights, Tensor?[] biases, long rows, bool float32Output = false)
    {
        int k = (int)x.size(-1);
        bool bf16 = weights[0].dtype == ScalarType.BFloat16;
        int es = bf16 ? 2 : 4;
        var xc = x.is_contiguous() ? x : x.contiguous();
        float[]? widened = bf16 ? ArrayPool<float>.Shared.Rent((int)Math.Min(rows, FastPathMaxRows) * k) : null;
        try
        {
            var shape = new long[x.dim()];
            for (int d = 0; d < shape.Length - 1; d++) shape[d] = x.size(d);
            var outputs = new Tensor[weights.Length];
            var targets = new Gemv.Target[weights.Length];
            for (int i = 0; i < weights.Length; i++)
            {
                shape[^1] = weights[i].size(0);
                outputs[i] = empty(shape, dtype: float32Output ? ScalarType.Float32 : x.dtype);
            }
            nint xp = TensorMemory.Address(xc);
            int threads = get_num_threads();
            fixed (float* wide = widened)
                for (long r = 0; r < rows; r += FastPathMaxRows)
                {
                    int n = (int)Math.Min(FastPathMaxRows, rows - r);
                    float* xf = bf16 ? Widen((ushort*)xp + r * k, wide, n * k) : (float*)xp + r * k;
                    for (int i = 0; i < weights.Length; i++)
                    {
                        long outFeatures = weights[i].size(0);
                        targets[i] = new Gemv.Target(TensorMemory.Address(weights[i]), TensorMemory.Address(outputs[i]) + (nint)(r * outFeatures * (float32Output ? 4 : es)),
                            (int)outFeatures, biases[i] is { } b ? TensorMemory.Address(b) : 0, Float32Output: float32Output);
                    }
                    Gemv.Run(bf16, targets, xf, n, k, threads);
                }
            GC.KeepAlive(weights); GC.KeepAlive(biases); // read only through their addresses above
            return outputs;
        }
        finally
        {
            if (!ReferenceEquals(xc, x)) xc.Dispose();
            if (widened != null) ArrayPool<float>.Shared.Return(widened);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    static unsafe float* Widen(ushort* source, float* target, int count)
    {
        for (int i = 0; i < count; i++) target[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
        return target;
    }

    /// <summary>One float32 GEMM on a widened copy of the weight (freed at once), rounded to bf16 at the end.</summary>
    public static Tensor ViaFloat32(Tensor x, Tensor weight, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        var y = F.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias?.to(ScalarType.Float32));
        return y.to(ScalarType.BFloat16).MoveToOuterDisposeScope();
    }
}
