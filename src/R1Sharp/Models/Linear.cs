using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Models;

/// <summary>
/// nn.Linear with the same parameter names (weight [out, in], bias [out]), plus a decode fast path: a float32 or
/// bfloat16 weight on the CPU multiplied by a few rows without autograd goes through <see cref="Gemv"/>, which reads
/// the weight at memory speed (one bfloat16 row too, now that OpenMP waits passively: see NativeRuntime). On CPUs
/// without native bf16 instructions (<see cref="CpuFeatures.NativeBf16Gemm"/>) a bfloat16 prefill avoids libtorch's
/// bfloat16 GEMM, which runs about 5× below its float32 one there: up to <see cref="Bf16ChunkedMaxRows"/> rows it
/// goes through the kernel 16 rows at a time, beyond that the weight is widened to float32 for one float32 GEMM (the
/// output rounded to bf16 once, as addmm rounds). Everything else (training, float32 prefill, GPUs) is libtorch's F.linear.
/// Weights start at zero: a model is either loaded from a checkpoint or initialised with CausalLM.InitializeRandom,
/// so a random init here would only cost time.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    /// <summary>Above this many rows the matmul is compute-bound and libtorch's GEMM is the better choice.</summary>
    public const int FastPathMaxRows = 16;
    /// <summary>Measured on a 0.5B layer (bench: profile): the 16-row kernel beats widening to float32 up to ~128 rows.</summary>
    public const int Bf16ChunkedMaxRows = 127;

    public readonly TorchSharp.Modules.Parameter weight;
    public readonly TorchSharp.Modules.Parameter? bias;

    /// <param name="dtype">the parameters' type, given explicitly: libtorch's default dtype is one setting for the
    /// whole process, so a module built from it takes whatever another thread last set there</param>
    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32) : base("Linear")
    {
        weight = new TorchSharp.Modules.Parameter(zeros(outFeatures, inFeatures, dtype: dtype));
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new TorchSharp.Modules.Parameter(zeros(outFeatures, dtype: dtype));
            register_parameter("bias", bias);
        }
    }

    public override Tensor forward(Tensor x) => Apply(x, weight, bias);

    /// <summary>x · weightᵀ + bias, through the decode kernel when it applies (also used for a tied lm_head).</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null)
    {
        long rows = Rows(x);
        if (UsesGemv(x, weight, bias, rows)) return ForwardGemv(x, [weight], [bias], rows)[0];
        if (Bf16Inference(x, weight, bias, rows))
            return rows <= Bf16ChunkedMaxRows ? ForwardGemv(x, [weight], [bias], rows)[0] : ViaFloat32(x, weight, bias);
        return F.linear(x, weight, bias);
    }

    /// <summary>
    /// The outputs of several projections of the same x (q/k/v; gate/up). On the decode fast path they are one kernel
    /// call: one dispatch and one conversion of x instead of one each, with the threads' shares balanced over all
    /// the weights. Otherwise (training, prefill, GPUs) each is its own F.linear, the same autograd graph as separate
    /// calls. The weights stay separate parameters with their Hugging Face names, so nothing needs re-packing after
    /// a load or an optimizer step.
    /// </summary>
    public static Tensor[] ApplyMany(Tensor x, params Linear[] layers)
    {
        long rows = Rows(x);
        var weights = new Tensor[layers.Length];
        var biases = new Tensor?[layers.Length];
        bool gemv = true, chunks = rows <= Bf16ChunkedMaxRows;
        for (int i = 0; i < layers.Length; i++)
        {
            weights[i] = layers[i].weight;
            biases[i] = layers[i].bias;
            gemv &= UsesGemv(x, weights[i], biases[i], rows);
            chunks &= Bf16Inference(x, weights[i], biases[i], rows);
        }
        if (gemv || chunks) return ForwardGemv(x, weights, biases, rows);
        return layers.Select(l => l.forward(x)).ToArray();
    }

    static long Rows(Tensor x)
    {
        long k = x.size(-1); // size(d), not shape: shape builds an array through a callback, ~1-2 µs a call
        return k == 0 ? 0 : x.numel() / k;
    }

    /// <summary>With native bf16 GEMM instructions, libtorch's bf16 product beats the kernel from 4 rows on (2 Intel
    /// AMX cores, a 0.5B MLP's two weights: 1 row 0.48 vs 1.58 ms, 2 rows 0.87 vs 1.12, 4 rows 1.41 vs 1.12, 16 rows
    /// 3.67 vs 1.18).</summary>
    public const int NativeBf16GemvMaxRows = 3;

    static bool UsesGemv(Tensor x, Tensor weight, Tensor? bias, long rows) =>
        rows > 0 && rows <= (weight.dtype == ScalarType.BFloat16 && CpuFeatures.NativeBf16Gemm ? NativeBf16GemvMaxRows : FastPathMaxRows)
        && Gemv.Supported
        && (weight.dtype == ScalarType.BFloat16 || weight.dtype == ScalarType.Float32) && x.dtype == weight.dtype
        && KernelReady(x, weight, bias);

    /// <summary>A bfloat16 product that avoids libtorch's bf16 GEMM: only where that GEMM has no native bf16
    /// instructions to run on (<see cref="CpuFeatures.NativeBf16Gemm"/>); with them it is the fastest path.</summary>
    static bool Bf16Inference(Tensor x, Tensor weight, Tensor? bias, long rows) =>
        rows > 0 && !CpuFeatures.NativeBf16Gemm && Gemv.Supported && weight.dtype == ScalarType.BFloat16
        && x.dtype == ScalarType.BFloat16 && KernelReady(x, weight, bias);

    /// <summary>CPU, contiguous weight (and bias of the same type), and no gradient wanted.</summary>
    static bool KernelReady(Tensor x, Tensor weight, Tensor? bias) =>
        weight.device_type == DeviceType.CPU && weight.is_contiguous()
        && (bias is null || (bias.dtype == weight.dtype && bias.is_contiguous()))
        && !(is_grad_enabled() && (weight.requires_grad || x.requires_grad || bias?.requires_grad == true));

    /// <summary>
    /// The kernel over blocks of up to <see cref="FastPathMaxRows"/> rows of x (bf16 beyond 16 rows: each block reads
    /// the weights once more, which still beats libtorch's bf16 GEMM up to ~128 rows). The only tensor operation is
    /// allocating each output: x is read in place (bf16 widened into a pooled buffer), and the kernel writes the
    /// outputs, bias included, straight into them. At a decode step's sizes the half-dozen libtorch operators this
    /// replaced (reshape, casts, bias add, cat) cost tens of microseconds a call, 96+ calls a step.
    /// </summary>
    static unsafe Tensor[] ForwardGemv(Tensor x, Tensor[] weights, Tensor?[] biases, long rows)
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
                outputs[i] = empty(shape, dtype: x.dtype);
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
                        targets[i] = new Gemv.Target(TensorMemory.Address(weights[i]), TensorMemory.Address(outputs[i]) + (nint)(r * outFeatures * es),
                            (int)outFeatures, biases[i] is { } b ? TensorMemory.Address(b) : 0);
                    }
                    Gemv.Run(bf16, targets, xf, n, k, threads);
                }
            return outputs;
        }
        finally
        {
            if (!ReferenceEquals(xc, x)) xc.Dispose();
            if (widened != null) ArrayPool<float>.Shared.Return(widened);
        }
    }

    static unsafe float* Widen(ushort* source, float* target, int count)
    {
        for (int i = 0; i < count; i++) target[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
        return target;
    }

    /// <summary>One float32 GEMM on a widened copy of the weight (freed at once), rounded to bf16 at the end.</summary>
    static Tensor ViaFloat32(Tensor x, Tensor weight, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        var y = F.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias?.to(ScalarType.Float32));
        return y.to(ScalarType.BFloat16).MoveToOuterDisposeScope();
    }

}
