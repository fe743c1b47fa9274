using GgmlType = R1Sharp.IO.GgmlType;
using R1Sharp.Models; // CpuFeatures, TensorMemory (move to R1Sharp.Kernels with issue 13)
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// x · Wᵀ + bias for a quantized W, any number of rows: the one entry a quantized Linear calls. Up to
/// <see cref="KernelMaxRows"/> rows the int8 kernels (<see cref="QuantGemv"/>) run; beyond, dequantised tiles into
/// libtorch's GEMM (<see cref="QuantPrefill"/>). Inference only (no autograd through quantized weights).
/// </summary>
public static unsafe class QuantLinear
{
    /// <summary>
    /// Rows up to which the int8 kernels beat dequantised tiles + GEMM (bench: quant --prefill, 2 AMD Zen 4 cores with
    /// native bf16 GEMM, two layers of the 1.5B shape; bench/README.md). The crossing moves with the load on this
    /// shared machine: against bf16 tiles, Q4_K crossed near 120 rows in a quiet run and between 16 and 64 in a busy
    /// one, Q8_0 near 30 and below 16; against float32 tiles (CPUs without native bf16) the kernels won Q4_K at 256
    /// rows in both runs, and Q8_0 crossed near 128 and near 20. The limits sit where both runs agree.
    /// </summary>
    public static int KernelMaxRows(GgmlType t) => (CpuFeatures.NativeBf16Gemm, QuantGemv.ActBlock(t) == 32) switch
    {
        (true, false) => 48,
        (true, true) => 16,
        (false, false) => int.MaxValue,
        (false, true) => 32,
    };

    public static Tensor Apply(Tensor x, QuantMatrix w, Tensor? bias = null) => ApplyMany(x, [w], [bias])[0];

    /// <summary>Several weights that read the same x (q/k/v, gate/up): one kernel call for all on the kernel path.</summary>
    public static Tensor[] ApplyMany(Tensor x, QuantMatrix[] ws, Tensor?[] biases)
    {
        long k = x.size(-1), rows = k == 0 ? 0 : x.numel() / k;
        if (rows == 0 || rows > ws.Min(w => KernelMaxRows(w.Type)))
            return ws.Select((w, i) => QuantPrefill.Linear(x, w, biases[i])).ToArray();
        using var noGrad = no_grad();
        var xf = x.dtype == ScalarType.Float32 && x.is_contiguous() ? x : x.to(ScalarType.Float32).contiguous();
        var bs = biases.Select(b => b is null ? null : b.dtype == ScalarType.Float32 && b.is_contiguous() ? b : b.to(ScalarType.Float32).contiguous()).ToArray();
        try
        {
            var shape = x.shape;
            var outputs = new Tensor[ws.Length];
            var targets = new QuantGemv.Target[ws.Length];
            for (int i = 0; i < ws.Length; i++)
            {
                shape[^1] = ws[i].Rows;
                outputs[i] = empty(shape, dtype: ScalarType.Float32);
                targets[i] = new QuantGemv.Target(ws[i], TensorMemory.Address(outputs[i]), bs[i] is { } b ? TensorMemory.Address(b) : 0);
            }
            QuantGemv.Run(targets, (float*)TensorMemory.Address(xf), (int)rows, get_num_threads());
            GC.KeepAlive(xf); GC.KeepAlive(bs);
            if (x.dtype != ScalarType.Float32)
                for (int i = 0; i < outputs.Length; i++) { var o = outputs[i]; outputs[i] = o.to(x.dtype); o.Dispose(); }
            return outputs;
        }
        finally
        {
            if (!ReferenceEquals(xf, x)) xf.Dispose();
            for (int i = 0; i < bs.Length; i++) if (bs[i] is { } b && !ReferenceEquals(b, biases[i])) b.Dispose();
        }
    }
}
