using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace R1Sharp.Models;

/// <summary>
/// nn.Linear with the same parameter names (weight [out, in], bias [out]), plus a decode fast path: a float32 or
/// bfloat16 weight on the CPU multiplied by a few rows without autograd goes through <see cref="Gemv"/>, which reads
/// the weight at memory speed (one bfloat16 row too, now that OpenMP waits passively: see NativeRuntime). A bfloat16
/// prefill on the CPU avoids libtorch's bfloat16 GEMM, which runs about 5× below its float32 one on CPUs without
/// native bf16 instructions: up to <see cref="Bf16ChunkedMaxRows"/> rows it goes through the kernel 16 rows at a time,
/// beyond that the weight is widened to float32 for one float32 GEMM (the output rounded to bf16 once, as addmm
/// rounds). Everything else (training, float32 prefill, GPUs) is libtorch's F.linear.
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

    public Linear(long inFeatures, long outFeatures, bool hasBias) : base("Linear")
    {
        weight = new TorchSharp.Modules.Parameter(zeros(outFeatures, inFeatures));
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new TorchSharp.Modules.Parameter(zeros(outFeatures));
            register_parameter("bias", bias);
        }
    }

    public override Tensor forward(Tensor x) => Apply(x, weight, bias);

    /// <summary>x · weightᵀ + bias, through the decode kernel when it applies (also used for a tied lm_head).</summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null)
    {
        long rows = Rows(x);
        if (UsesGemv(x, weight, rows)) return ForwardGemv(x, [weight], [bias], rows)[0];
        if (Bf16Inference(x, weight, rows))
            return rows <= Bf16ChunkedMaxRows ? ForwardGemvChunks(x, [weight], [bias], rows)[0] : ViaFloat32(x, weight, bias);
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
        var weights = layers.Select(l => (Tensor)l.weight).ToArray();
        var biases = layers.Select(l => (Tensor?)l.bias).ToArray();
        if (weights.All(w => UsesGemv(x, w, rows))) return ForwardGemv(x, weights, biases, rows);
        if (rows <= Bf16ChunkedMaxRows && weights.All(w => Bf16Inference(x, w, rows))) return ForwardGemvChunks(x, weights, biases, rows);
        return layers.Select(l => l.forward(x)).ToArray();
    }

    static long Rows(Tensor x)
    {
        long k = x.shape[^1];
        return k == 0 ? 0 : x.numel() / k;
    }

    static bool UsesGemv(Tensor x, Tensor weight, long rows) =>
        (weight.dtype == ScalarType.BFloat16 || weight.dtype == ScalarType.Float32) && x.dtype == weight.dtype
        && weight.device_type == DeviceType.CPU && weight.is_contiguous() && Gemv.Supported
        && rows > 0 && rows <= FastPathMaxRows && !(is_grad_enabled() && (weight.requires_grad || x.requires_grad));

    static bool Bf16Inference(Tensor x, Tensor weight, long rows) =>
        weight.dtype == ScalarType.BFloat16 && x.dtype == ScalarType.BFloat16 && weight.device_type == DeviceType.CPU
        && weight.is_contiguous() && Gemv.Supported && rows > 0 && !(is_grad_enabled() && (weight.requires_grad || x.requires_grad));

    /// <summary>The kernel over blocks of <see cref="FastPathMaxRows"/> rows: each block reads the weights once more,
    /// which at bf16 still beats libtorch's bf16 GEMM up to ~128 rows.</summary>
    static Tensor[] ForwardGemvChunks(Tensor x, Tensor[] weights, Tensor?[] biases, long rows)
    {
        using var scope = NewDisposeScope();
        var x2 = x.reshape(rows, x.shape[^1]);
        var blocks = new List<Tensor[]>();
        for (long r = 0; r < rows; r += FastPathMaxRows)
        {
            long n = Math.Min(FastPathMaxRows, rows - r);
            blocks.Add(ForwardGemv(x2.narrow(0, r, n), weights, biases, n));
        }
        var outputs = new Tensor[weights.Length];
        for (int i = 0; i < weights.Length; i++)
        {
            long[] shape = [.. x.shape[..^1], weights[i].shape[0]];
            outputs[i] = cat(blocks.Select(b => b[i]).ToList(), 0).reshape(shape).MoveToOuterDisposeScope();
        }
        return outputs;
    }

    /// <summary>One float32 GEMM on a widened copy of the weight (freed at once), rounded to bf16 at the end.</summary>
    static Tensor ViaFloat32(Tensor x, Tensor weight, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        var y = F.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias?.to(ScalarType.Float32));
        return y.to(ScalarType.BFloat16).MoveToOuterDisposeScope();
    }

    static unsafe Tensor[] ForwardGemv(Tensor x, Tensor[] weights, Tensor?[] biases, long rows)
    {
        long k = x.shape[^1];
        using var scope = NewDisposeScope();
        var xf = x.reshape(rows, k).to(ScalarType.Float32).contiguous();
        var ys = new Tensor[weights.Length];
        var targets = new Gemv.Target[weights.Length];
        for (int i = 0; i < weights.Length; i++)
        {
            ys[i] = empty(rows, weights[i].shape[0], dtype: ScalarType.Float32);
            targets[i] = new Gemv.Target(Pointer(weights[i]), Pointer(ys[i]), (int)weights[i].shape[0]);
        }
        Gemv.Run(weights[0].dtype == ScalarType.BFloat16, targets, (float*)Pointer(xf), (int)rows, (int)k, get_num_threads());
        var outputs = new Tensor[weights.Length];
        for (int i = 0; i < weights.Length; i++)
        {
            if (biases[i] is { } b) ys[i].add_(b);       // added in float32 and rounded once, as addmm does
            long[] shape = [.. x.shape[..^1], weights[i].shape[0]];
            outputs[i] = ys[i].to(x.dtype).reshape(shape).MoveToOuterDisposeScope();
        }
        return outputs;
    }

    /// <summary>The address of a contiguous CPU tensor's data (native memory: the GC never moves it).</summary>
    static unsafe nint Pointer(Tensor t) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
}
