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
        (var dtype, threads) = Settings(gemmType, threads);
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
        if (bias is not null) Ops.AddInPlace(y, bias.to(dtype));
        var outShape = shape.ToArray();
        outShape[^1] = n;
        return y.reshape(outShape).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// down(silu(gate(x)) ⊙ up(x)) for many rows of x and quantized gate, up [I, K] and down [K', I] (LlamaMLP without
    /// biases), in blocks of the intermediate dimension: for each block of columns c, gate and up rows c go through the
    /// GEMM, their SwiGLU in float32 (rounded to the GEMM's type, as the unfused path rounds down's input), and
    /// down's columns c add that block's share of the output. The rows × I intermediates (gate, up and their product,
    /// float32: 3 × 18 MB for 512 positions of the 1.5B shape, the prefill's largest transients) become rows × block,
    /// and every weight is still dequantised once, so a long prefill needs no chunking to stay small. The output sums
    /// the blocks' products in float32, each rounded once to the GEMM's type (the unfused product rounds their sum).
    /// </summary>
    public static Tensor SwiGluMlp(Tensor x, QuantMatrix gate, QuantMatrix up, QuantMatrix down, ScalarType? gemmType = null, int threads = 0,
        int tileBytes = TileBytes)
    {
        int k = gate.Cols, inter = gate.Rows, hidden = down.Rows;
        if (up.Rows != inter || up.Cols != k || down.Cols != inter || x.size(-1) != k)
            throw new ArgumentException($"{gate.Name}, {up.Name}, {down.Name}: shapes [{gate.Rows}, {gate.Cols}], [{up.Rows}, {up.Cols}], [{down.Rows}, {down.Cols}] are no MLP for {x.size(-1)} features");
        (var dtype, threads) = Settings(gemmType, threads);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var x2 = x.reshape(-1, k).to(dtype).contiguous();
        long rows = x2.size(0);
        int es = dtype == ScalarType.BFloat16 ? 2 : 4;
        int block = MlpBlock(inter, down.BlockSize);
        // Tiles of at most TileBytes: gate/up rows of K values, down rows of one block's columns.
        int upTile = (int)Math.Clamp(tileBytes / ((long)k * es) / 16 * 16, 16, block);
        int downTile = (int)Math.Clamp(tileBytes / ((long)block * es) / 16 * 16, 16, hidden);
        var buffer = empty(Math.Max((long)upTile * k, (long)downTile * block), dtype: dtype);
        var y = zeros(rows, hidden, dtype: ScalarType.Float32);
        // gate's and up's products for one block, [rows, width] each over the start of these buffers; SwiGLU then
        // overwrites gate's in place.
        var gBuffer = empty(rows * block, dtype: dtype);
        var uBuffer = empty(rows * block, dtype: dtype);
        for (int c0 = 0; c0 < inter; c0 += block)
        {
            int width = Math.Min(block, inter - c0);
            using var gv = gBuffer.narrow(0, 0, rows * width).view(rows, width);
            using var uv = uBuffer.narrow(0, 0, rows * width).view(rows, width);
            foreach (var (m, dst) in new[] { (gate, gv), (up, uv) })
                for (int n0 = 0; n0 < width; n0 += upTile)
                {
                    int tn = Math.Min(upTile, width - n0);
                    using var part = DequantizeTile(m, buffer, c0 + n0, tn, threads);
                    using var target = dst.narrow(1, n0, tn);
                    using var prod = mm(x2, part.t());
                    target.copy_(prod);
                }
            TrainingKernels.SwiGluInPlace(gv, uv);
            for (int n0 = 0; n0 < hidden; n0 += downTile)
            {
                int tn = Math.Min(downTile, hidden - n0);
                using var part = DequantizeTile(down, buffer, n0, tn, c0, width, threads);
                using var prod = mm(gv, part.t());
                using var target = y.narrow(1, n0, tn);
                Ops.AddInPlace(target, prod);
            }
        }
        GC.KeepAlive(gate); GC.KeepAlive(up); GC.KeepAlive(down);
        var outShape = shape.ToArray();
        outShape[^1] = hidden;
        return y.reshape(outShape).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The intermediate columns per block of <see cref="SwiGluMlp"/>: whole blocks of down's format, at most
    /// about 2048 columns (a 512-row block of gate, up and SwiGLU's float32 temporaries is then 4 MB each), the fewest
    /// blocks of that size spread evenly (the last may be smaller).</summary>
    public static int MlpBlock(int inter, int blockSize)
    {
        int units = inter / blockSize, target = Math.Max(1, 2048 / blockSize);
        if (units <= target) return inter;
        int parts = (units + target - 1) / target;
        return (units + parts - 1) / parts * blockSize;
    }

    /// <summary>
    /// ∂L/∂x = ∂L/∂y · W for y = x·Wᵀ (the input gradient of a frozen quantized linear layer, QLoRA's backward):
    /// grad [..., N] → [..., K] float32, summed over tiles of W's rows dequantised as in <see cref="Linear"/>.
    /// </summary>
    public static Tensor InputGradient(Tensor grad, QuantMatrix w, ScalarType? gemmType = null, int threads = 0)
    {
        int k = w.Cols, n = w.Rows;
        if (grad.size(-1) != n) throw new ArgumentException($"{w.Name}: the gradient has {grad.size(-1)} features, the weight {n} rows");
        (var dtype, threads) = Settings(gemmType, threads);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var g2 = grad.reshape(-1, n).to(dtype).contiguous();
        var gx = zeros(g2.size(0), k, dtype: ScalarType.Float32);
        int es = dtype == ScalarType.BFloat16 ? 2 : 4;
        int tile = (int)Math.Clamp(TileBytes / ((long)k * es) / 16 * 16, 16, n);
        var buffer = empty(tile, k, dtype: dtype);
        for (int n0 = 0; n0 < n; n0 += tile)
        {
            int tn = Math.Min(tile, n - n0);
            using var part = DequantizeTile(w, buffer, n0, tn, threads);
            using var gpart = g2.narrow(1, n0, tn);
            using var prod = mm(gpart, part);
            Ops.AddInPlace(gx, prod); // alpha held: see Ops.Add (a QLoRA step at 28 layers died here on a freed one)
        }
        GC.KeepAlive(w);
        var outShape = grad.shape.ToArray();
        outShape[^1] = k;
        return gx.reshape(outShape).MoveToOuterDisposeScope();
    }

    /// <summary>The tiles' and GEMM's type (bfloat16 only where libtorch's bf16 GEMM runs on native instructions, unless
    /// given) and the threads (libtorch's count unless given).</summary>
    static (ScalarType Dtype, int Threads) Settings(ScalarType? gemmType, int threads) =>
        (gemmType ?? (CpuFeatures.NativeBf16Gemm ? ScalarType.BFloat16 : ScalarType.Float32), threads > 0 ? threads : get_num_threads());

    /// <summary>Rows [n0, n0 + tn) of w dequantised into buffer (float32 or bfloat16): a view of its first tn rows.</summary>
    static Tensor DequantizeTile(QuantMatrix w, Tensor buffer, int n0, int tn, int threads) =>
        DequantizeTile(w, buffer, n0, tn, 0, w.Cols, threads);

    /// <summary>Columns [c0, c0 + cols) (whole blocks) of rows [n0, n0 + tn) of w dequantised into buffer (float32 or
    /// bfloat16, cols values per row): a [tn, cols] view of its start.</summary>
    static Tensor DequantizeTile(QuantMatrix w, Tensor buffer, int n0, int tn, int c0, int cols, int threads)
    {
        bool f32 = buffer.dtype == ScalarType.Float32;
        if (buffer.numel() < (long)tn * cols) throw new ArgumentException($"{w.Name}: a tile of [{tn}, {cols}] does not fit the buffer");
        nint bufferAddr = TensorMemory.Address(buffer);
        int chunk = (tn + threads * 4 - 1) / (threads * 4);
        KernelThreads.For((tn + chunk - 1) / chunk, threads, c =>
        {
            int r0 = n0 + c * chunk, r1 = Math.Min(n0 + tn, r0 + chunk);
            if (f32) { w.Dequantize(r0, r1 - r0, c0, cols, (float*)bufferAddr + (long)(r0 - n0) * cols); return; }
            var row = new float[cols];
            fixed (float* rp = row)
                for (int r = r0; r < r1; r++)
                {
                    w.Dequantize(r, 1, c0, cols, rp);
                    Bf16.FromFloats(rp, (ushort*)bufferAddr + (long)(r - n0) * cols, cols);
                }
        }, spinAfter: false);
        return buffer.view(-1).narrow(0, 0, (long)tn * cols).view(tn, cols);
    }
}
