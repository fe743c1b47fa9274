using R1Sharp.Models; // KernelThreads, CpuFeatures, TensorMemory (move to R1Sharp.Kernels with issue 13)
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// x · Wᵀ (+ bias) for many rows of x (prefill) and a quantized W: W is dequantised a tile of rows at a time (a few MB,
/// so the tile stays in cache while the GEMM reads it) into float32, or bfloat16 where libtorch's bf16 GEMM runs on
/// native bf16 instructions (<see cref="CpuFeatures.NativeBf16Gemm"/>), and each tile goes through libtorch's GEMM.
/// The dequantised values are ggml's (<see cref="QuantDequant"/>); no copy of the whole matrix is ever made.
/// </summary>
public static unsafe class QuantPrefill
{
    /// <summary>Bytes of dequantised weights per tile.</summary>
    public const int TileBytes = 4 << 20;

    /// <summary>x [..., K] (float32 or bfloat16, CPU) → [..., N] in x's dtype. gemmType: float32 or bfloat16 for
    /// the tiles and the GEMM; by default bfloat16 only with native bf16 GEMM.</summary>
    public static Tensor Linear(Tensor x, QuantMatrix w, Tensor? bias = null, ScalarType? gemmType = null, int threads = 0)
    {
        int k = w.Cols, n = w.Rows;
        if (x.size(-1) != k) throw new ArgumentException($"{w.Name}: x has {x.size(-1)} features, the weight {k}");
        var dtype = gemmType ?? (CpuFeatures.NativeBf16Gemm ? ScalarType.BFloat16 : ScalarType.Float32);
        if (threads <= 0) threads = get_num_threads();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var x2 = x.reshape(-1, k).to(dtype).contiguous();
        long rows = x2.size(0);
        var y = empty(rows, n, dtype: dtype);
        int es = dtype == ScalarType.BFloat16 ? 2 : 4;
        int tile = (int)Math.Clamp(TileBytes / ((long)k * es) / 16 * 16, 16, n);
        var buffer = empty(tile, k, dtype: dtype);
        for (int n0 = 0; n0 < n; n0 += tile)
        {
            int tn = Math.Min(tile, n - n0);
            using var part = DequantizeTile(w, buffer, n0, tn, threads);
            using var prod = mm(x2, part.t());
            using var dst = y.narrow(1, n0, tn);
            dst.copy_(prod);
        }
        GC.KeepAlive(w);
        if (bias is not null) y.add_(bias.to(dtype));
        var outShape = shape.ToArray();
        outShape[^1] = n;
        return y.reshape(outShape).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ∂L/∂x = ∂L/∂y · W for y = x·Wᵀ (the input gradient of a frozen quantized linear layer, QLoRA's backward):
    /// grad [..., N] → [..., K] float32, summed over tiles of W's rows dequantised as in <see cref="Linear"/>.
    /// </summary>
    public static Tensor InputGradient(Tensor grad, QuantMatrix w, ScalarType? gemmType = null, int threads = 0)
    {
        int k = w.Cols, n = w.Rows;
        if (grad.size(-1) != n) throw new ArgumentException($"{w.Name}: the gradient has {grad.size(-1)} features, the weight {n} rows");
        var dtype = gemmType ?? (CpuFeatures.NativeBf16Gemm ? ScalarType.BFloat16 : ScalarType.Float32);
        if (threads <= 0) threads = get_num_threads();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var g2 = grad.reshape(-1, n).to(dtype).contiguous();
        var gx = zeros(g2.size(0), k, dtype: ScalarType.Float32);
        int es = dtype == ScalarType.BFloat16 ? 2 : 4;
        int tile = (int)Math.Clamp(TileBytes / ((long)k * es) / 16 * 16, 16, n);
        var buffer = empty(tile, k, dtype: dtype);
        // add_(t) makes its alpha a temporary Scalar that nothing references while libtorch reads it: the finalizer
        // can free it mid-call (a QLoRA step at 28 layers died in here with a Scalar of no known type). Held to the end.
        using var one = 1.ToScalar();
        for (int n0 = 0; n0 < n; n0 += tile)
        {
            int tn = Math.Min(tile, n - n0);
            using var part = DequantizeTile(w, buffer, n0, tn, threads);
            using var gpart = g2.narrow(1, n0, tn);
            using var prod = mm(gpart, part);
            gx.add_(prod, one);
        }
        GC.KeepAlive(w);
        var outShape = grad.shape.ToArray();
        outShape[^1] = k;
        return gx.reshape(outShape).MoveToOuterDisposeScope();
    }

    /// <summary>Rows [n0, n0 + tn) of w dequantised into buffer (float32 or bfloat16): a view of its first tn rows.</summary>
    static Tensor DequantizeTile(QuantMatrix w, Tensor buffer, int n0, int tn, int threads)
    {
        int k = w.Cols;
        bool f32 = buffer.dtype == ScalarType.Float32;
        nint bufferAddr = TensorMemory.Address(buffer);
        int chunk = (tn + threads * 4 - 1) / (threads * 4);
        KernelThreads.For((tn + chunk - 1) / chunk, threads, c =>
        {
            int r0 = n0 + c * chunk, r1 = Math.Min(n0 + tn, r0 + chunk);
            if (f32) { w.Dequantize(r0, r1 - r0, (float*)bufferAddr + (long)(r0 - n0) * k); return; }
            var row = new float[k];
            fixed (float* rp = row)
                for (int r = r0; r < r1; r++)
                {
                    w.Dequantize(r, 1, rp);
                    ToBf16(rp, (ushort*)bufferAddr + (long)(r - n0) * k, k);
                }
        }, spinAfter: false);
        return buffer.narrow(0, 0, tn);
    }

    /// <summary>float32 → bfloat16, rounding to nearest even (libtorch's rounding; the values are finite).</summary>
    static void ToBf16(float* src, ushort* dst, int count)
    {
        int i = 0;
        var lsb = Vector256.Create(1u);
        var bias = Vector256.Create(0x7FFFu);
        for (; i + 16 <= count; i += 16)
        {
            var a = Vector256.Load((uint*)src + i);
            var b = Vector256.Load((uint*)src + i + 8);
            a = (a + bias + ((a >> 16) & lsb)) >> 16;
            b = (b + bias + ((b >> 16) & lsb)) >> 16;
            Vector256.Narrow(a, b).Store(dst + i);
        }
        for (; i < count; i++)
        {
            uint u = ((uint*)src)[i];
            dst[i] = (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
        }
    }
}
