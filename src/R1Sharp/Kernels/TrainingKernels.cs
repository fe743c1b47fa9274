using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using R1Sharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// Fused float32 CPU kernels for the element-wise parts of a decoder layer: RMSNorm, RoPE (with the head transpose),
/// SwiGLU and the scaled, masked softmax of attention, each as one autograd node with a hand-written backward.
/// Written as libtorch operators these are 5-10 operators each way, and at the demo model's width (128) their memory
/// traffic and per-operator cost took more of a training step than the matmuls did (bench: grpo --size demo).
/// Each backward is the derivative of the same formula the unfused path computes; tests compare both, value and
/// gradient. Used for float32 CPU tensors larger than <see cref="SmallInference.MaxElements"/> (training and
/// prefill); bfloat16 and a decode step's few rows keep their own paths.
/// </summary>
public static unsafe partial class TrainingKernels
{
    static readonly AsyncLocal<bool> disabled = new();

    /// <summary>Off: the same formulas as libtorch operators (for comparisons in tests and benchmarks). Per async
    /// flow, so a test that turns it off does not change the tests running beside it.</summary>
    public static bool Enabled { get => !disabled.Value; set => disabled.Value = !value; }

    /// <summary>Enabled, and every tensor float32 on the CPU with x larger than a decode step's few rows.</summary>
    public static bool Applies(Tensor x, params Tensor[] others) =>
        x.numel() > SmallInference.MaxElements && EnabledFor(x) && others.All(EnabledFor);

    static bool EnabledFor(Tensor t) => Enabled && t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32;

    /// <summary>The fused RoPE applies here: float32 CPU and the shapes <see cref="Rope"/> takes.</summary>
    public static bool AppliesToRope(Tensor x, Tensor cos, Tensor sin) => Applies(x, cos, sin) && RopeShapes(x, cos, sin);

    /// <summary>The fused softmax applies here: float32 CPU and the shapes <see cref="MaskedSoftmax"/> takes (no size
    /// threshold: attention uses it where it fused RoPE, whose size decides).</summary>
    public static bool AppliesToSoftmax(Tensor scores, Tensor mask) =>
        EnabledFor(scores) && EnabledFor(mask) && SoftmaxShapes(scores, mask);

    // x [B, T, H, D] with D even; cos and sin [B, 1, T, D].
    static bool RopeShapes(Tensor x, Tensor cos, Tensor sin) =>
        x.dim() == 4 && cos.dim() == 4 && x.size(3) % 2 == 0 && cos.size(0) == x.size(0) && cos.size(1) == 1
        && cos.size(2) == x.size(1) && cos.size(3) == x.size(3) && cos.shape.SequenceEqual(sin.shape);

    // scores [B, K, G, T, L]; mask [B, 1, 1, T, L].
    static bool SoftmaxShapes(Tensor scores, Tensor mask) =>
        scores.dim() == 5 && mask.dim() == 5 && mask.size(0) == scores.size(0) && mask.size(1) == 1 && mask.size(2) == 1
        && mask.size(3) == scores.size(3) && mask.size(4) == scores.size(4);

    /// <summary>Runs body(start, end) over rows 0..count-1 in chunks that the calling thread and the kernel workers
    /// take in turn: several per thread, so a worker that wakes late costs little.</summary>
    static void ForRows(long count, Action<long, long> body) => ForChunks(count, (_, start, end) => body(start, end));

    /// <summary>As <see cref="ForRows"/>, with the chunk's index (0..Chunks(count)-1) for per-chunk partial results.</summary>
    static void ForChunks(long count, Action<int, long, long> body)
    {
        var (threads, chunks) = Split(count);
        // The workers block as soon as the job is done: the next kernel call comes after milliseconds of libtorch
        // operators, whose OpenMP threads need the cores meanwhile.
        KernelThreads.For(chunks, threads, i => body(i, count * i / chunks, count * (i + 1) / chunks), spinAfter: false);
    }

    /// <summary>Threads for count rows (at least 16 rows each), and chunks: 8 per thread, or 1 on one thread. A
    /// function of count and the thread setting only, so per-chunk partial sums add up the same way every run.</summary>
    static (int Threads, int Chunks) Split(long count)
    {
        int threads = (int)Math.Clamp(Math.Min(MaxThreads, count / 16), 1, 64);
        return (threads, threads == 1 ? 1 : (int)Math.Min(count / 16, threads * 8));
    }

    static int MaxThreads => get_num_threads(); // as many as libtorch's operators use

    const int V = 8; // floats in a Vector256

    /// <summary>e^x for float32 lanes: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-6 Taylor polynomial (relative
    /// error at most 2.5e-7 over [−4, 4] measured against double-precision exp: about 2 ulp, where libtorch's Sleef
    /// expf has 1), times 2^n built in the exponent
    /// bits. Below −87.3 the result is 0 (e^x would be denormal there), so a −∞ mask gives exactly 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Exp(Vector256<float> x)
    {
        var underflow = Vector256.LessThan(x, Vector256.Create(-87.3f));
        x = Vector256.Min(x, Vector256.Create(88.7f));
        x = Vector256.Max(x, Vector256.Create(-87.3f));
        var n = Vector256.Round(x * Vector256.Create(1.44269504088896341f));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-0.693359375f), x); // ln2 split (Cody-Waite)
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(2.12194440e-4f), r);
        var p = Vector256.Create(1f / 720);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 120));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 24));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1f / 6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(0.5f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return Vector256.ConditionalSelect(underflow, Vector256<float>.Zero, p * scale);
    }

    static float Exp(float x) => Exp(Vector256.Create(x)).ToScalar();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Sigmoid(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Exp(-x));

    static float Sigmoid(float x) => 1f / (1f + Exp(-x));

    /// <summary>The data of a contiguous float32 tensor. A tensor read only through this pointer must be kept alive
    /// (GC.KeepAlive) until the kernel is done: a copy made by contiguous() is owned by nothing but its managed handle,
    /// and without a dispose scope around the call the GC may free it as soon as the pointer is taken.</summary>
    static float* Ptr(Tensor t) => (float*)TensorMemory.Address(t);

    static Span<float> Row(float* p, long row, int width) => new(p + row * width, width);

    // ---------------------------------------------------------------------------------------------- RMSNorm

    /// <summary>y = w · x / sqrt(mean(x²) + eps) over the last dimension.</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps) => RmsNormFunction.apply(x, weight, eps);

    sealed class RmsNormFunction : autograd.SingleTensorFunction<RmsNormFunction>
    {
        public override string Name => "R1SharpRmsNorm";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = ((Tensor)vars[0]).contiguous();
            var w = ((Tensor)vars[1]).contiguous();
            float eps = (float)(double)vars[2];
            int d = (int)x.size(-1);
            long rows = x.numel() / d;
            var y = empty_like(x);
            var rstd = empty(rows, dtype: ScalarType.Float32); // explicit: the default dtype is process-wide state
            float* xp = Ptr(x), yp = Ptr(y), wp = Ptr(w), rp = Ptr(rstd);
            ForRows(rows, (start, end) =>
            {
                var wr = new ReadOnlySpan<float>(wp, d);
                for (long r = start; r < end; r++)
                {
                    var xr = Row(xp, r, d);
                    float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares<float>(xr) / d + eps);
                    rp[r] = inv;
                    var yr = Row(yp, r, d);
                    TensorPrimitives.Multiply(xr, inv, yr);      // x · rsqrt(var + eps), rounded, as the operators do
                    TensorPrimitives.Multiply(yr, wr, yr);       // then · weight
                }
            });
            ctx.save_for_backward([x, w, rstd]);
            return y;
        }

        // With x̂ = x·r (r = rstd): dw = Σ_rows dy·x̂;  dx = r·(dy·w − x̂·mean(dy·w·x̂)).
        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var saved = ctx.get_saved_variables();
            Tensor x = saved[0], w = saved[1], rstd = saved[2];
            var dy = grad.contiguous();
            int d = (int)x.size(-1);
            long rows = x.numel() / d;
            var dx = empty_like(x);
            int chunks = Split(rows).Chunks;
            var partial = new float[chunks * d];
            float* xp = Ptr(x), wp = Ptr(w), rp = Ptr(rstd), gp = Ptr(dy), dxp = Ptr(dx);
            ForChunks(rows, (chunk, start, end) =>
            {
                Span<float> xhat = stackalloc float[d], gw = stackalloc float[d];
                var dw = partial.AsSpan(chunk * d, d);
                var wr = new ReadOnlySpan<float>(wp, d);
                for (long r = start; r < end; r++)
                {
                    float inv = rp[r];
                    var gr = Row(gp, r, d);
                    TensorPrimitives.Multiply(Row(xp, r, d), inv, xhat);
                    TensorPrimitives.MultiplyAdd(gr, xhat, dw, dw);
                    TensorPrimitives.Multiply(gr, wr, gw);
                    float mean = TensorPrimitives.Dot<float>(gw, xhat) / d;
                    var dxr = Row(dxp, r, d);
                    TensorPrimitives.MultiplyAdd(xhat, -mean, gw, dxr); // dy·w − x̂·mean
                    TensorPrimitives.Multiply(dxr, inv, dxr);
                }
            });
            GC.KeepAlive(dy);
            var dwSum = new float[d]; // the chunks' partial sums, added in a fixed order: the result is deterministic
            for (int chunk = 0; chunk < chunks; chunk++) TensorPrimitives.Add(dwSum, partial.AsSpan(chunk * d, d), dwSum);
            return [dx, tensor(dwSum).view(w.shape), null!];
        }
    }

    // ---------------------------------------------------------------------------------------------- SwiGLU

    /// <summary>silu(gate) · up.</summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up) => SwiGluFunction.apply(gate, up);

    const int Block = 2048; // elements per unit of work that ForRows hands out to the threads


    sealed class SwiGluFunction : autograd.SingleTensorFunction<SwiGluFunction>
    {
        public override string Name => "R1SharpSwiGlu";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var g = ((Tensor)vars[0]).contiguous();
            var u = ((Tensor)vars[1]).contiguous();
            var y = empty_like(g);
            float* gp = Ptr(g), up = Ptr(u), yp = Ptr(y);
            long n = g.numel(), blocks = (n + Block - 1) / Block;
            ForRows(blocks, (start, end) =>
            {
                long from = start * Block, to = Math.Min(n, end * Block), i = from;
                for (; i + V <= to; i += V)
                {
                    var gv = Vector256.Load(gp + i);
                    var silu = gv * Sigmoid(gv);
                    (silu * Vector256.Load(up + i)).Store(yp + i);
                }
                for (; i < to; i++) yp[i] = gp[i] * Sigmoid(gp[i]) * up[i];
            });
            ctx.save_for_backward([g, u]);
            return y;
        }

        // s = σ(g): silu'(g) = s + silu·(1 − s);  dg = dy·up·silu'(g),  dup = dy·silu(g).
        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var saved = ctx.get_saved_variables();
            Tensor g = saved[0], u = saved[1];
            var dy = grad.contiguous();
            var dg = empty_like(g);
            var du = empty_like(u);
            float* gp = Ptr(g), up = Ptr(u), yp = Ptr(dy), dgp = Ptr(dg), dup = Ptr(du);
            long n = g.numel(), blocks = (n + Block - 1) / Block;
            ForRows(blocks, (start, end) =>
            {
                long from = start * Block, to = Math.Min(n, end * Block), i = from;
                for (; i + V <= to; i += V)
                {
                    var gv = Vector256.Load(gp + i);
                    var dyv = Vector256.Load(yp + i);
                    var sg = Sigmoid(gv);
                    var silu = gv * sg;
                    (dyv * silu).Store(dup + i);
                    (dyv * Vector256.Load(up + i) * (sg + silu * (Vector256<float>.One - sg))).Store(dgp + i);
                }
                for (; i < to; i++)
                {
                    float sg = Sigmoid(gp[i]), silu = gp[i] * sg;
                    dup[i] = yp[i] * silu;
                    dgp[i] = yp[i] * up[i] * (sg + silu * (1 - sg));
                }
            });
            GC.KeepAlive(dy);
            return [dg, du];
        }
    }

    // ---------------------------------------------------------------------------------------------- RoPE

    /// <summary>Rotary embedding in the rotate_half layout, x·cos + rotate_half(x)·sin, of x [B, T, H, D] (a
    /// projection's output viewed per head), returned as [B, H, T, D] contiguous: the layout attention's matmuls
    /// want, so the transpose costs no extra copy. cos and sin are [B, 1, T, D].</summary>
    public static Tensor Rope(Tensor x, Tensor cos, Tensor sin)
    {
        if (!RopeShapes(x, cos, sin))
            throw new ArgumentException($"RoPE: x {SafetensorsEntry.FormatShape(x.shape)} needs cos and sin [B, 1, T, D] of its B, T and (even) D; got {SafetensorsEntry.FormatShape(cos.shape)}");
        return RopeFunction.apply(x, cos, sin);
    }

    sealed class RopeFunction : autograd.SingleTensorFunction<RopeFunction>
    {
        public override string Name => "R1SharpRope";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = ((Tensor)vars[0]).contiguous();
            var cos = ((Tensor)vars[1]).contiguous();
            var sin = ((Tensor)vars[2]).contiguous();
            long b = x.size(0), t = x.size(1), h = x.size(2);
            int d = (int)x.size(3);
            var y = empty([b, h, t, d], dtype: ScalarType.Float32);
            Rotate(Ptr(x), Ptr(cos), Ptr(sin), Ptr(y), b, t, h, d, backward: false);
            GC.KeepAlive(x);
            ctx.save_for_backward([cos, sin]);
            return y;
        }

        // out[j] = x[j]·c[j] + rot(x)[j]·s[j], rot(x) = (−x₂, x₁): dx[i] = dy[i]·c[i] + dy[i+D/2]·s[i+D/2] for the
        // first half, dy[i]·c[i] − dy[i−D/2]·s[i−D/2] for the second.
        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var saved = ctx.get_saved_variables();
            Tensor cos = saved[0], sin = saved[1];
            var dy = grad.contiguous();
            long b = dy.size(0), h = dy.size(1), t = dy.size(2);
            int d = (int)dy.size(3);
            var dx = empty([b, t, h, d], dtype: ScalarType.Float32);
            Rotate(Ptr(dy), Ptr(cos), Ptr(sin), Ptr(dx), b, t, h, d, backward: true);
            GC.KeepAlive(dy);
            return [dx, null!, null!];
        }

        /// <summary>Forward: src [B, T, H, D] → dst [B, H, T, D]. Backward: src [B, H, T, D] → dst [B, T, H, D], with
        /// the transposed rotation. Each product is rounded before the sum, as libtorch's mul, mul, add round.</summary>
        static void Rotate(float* src, float* cp, float* sp, float* dst, long b, long t, long h, int d, bool backward)
        {
            int half = d / 2;
            bool vector = half % V == 0;
            ForRows(b * t, (start, end) =>
            {
                for (long bt = start; bt < end; bt++)
                {
                    long bi = bt / t, ti = bt % t;
                    float* c = cp + bt * d, s = sp + bt * d;
                    for (long hi = 0; hi < h; hi++)
                    {
                        long tokenMajor = (bt * h + hi) * d, headMajor = ((bi * h + hi) * t + ti) * d;
                        float* x = src + (backward ? headMajor : tokenMajor), y = dst + (backward ? tokenMajor : headMajor);
                        int j = 0;
                        if (vector)
                            for (; j < half; j += V)
                            {
                                Vector256<float> x1 = Vector256.Load(x + j), x2 = Vector256.Load(x + half + j);
                                Vector256<float> c1 = Vector256.Load(c + j), c2 = Vector256.Load(c + half + j);
                                Vector256<float> s1 = Vector256.Load(s + j), s2 = Vector256.Load(s + half + j);
                                if (!backward)
                                {
                                    (x1 * c1 + -x2 * s1).Store(y + j);
                                    (x2 * c2 + x1 * s2).Store(y + half + j);
                                }
                                else
                                {
                                    (x1 * c1 + x2 * s2).Store(y + j);
                                    (x2 * c2 - x1 * s1).Store(y + half + j);
                                }
                            }
                        for (; j < half; j++)
                        {
                            float x1 = x[j], x2 = x[half + j];
                            if (!backward)
                            {
                                y[j] = x1 * c[j] + -x2 * s[j];
                                y[half + j] = x2 * c[half + j] + x1 * s[half + j];
                            }
                            else
                            {
                                y[j] = x1 * c[j] + x2 * s[half + j];
                                y[half + j] = x2 * c[half + j] - x1 * s[j];
                            }
                        }
                    }
                }
            });
        }
    }

    // ---------------------------------------------------------------------------------------------- softmax

    /// <summary>softmax(scores·scale + mask) over the last dimension. scores [B, K, G, T, L], mask [B, 1, 1, T, L]
    /// (0 or −∞). A row that is all −∞ (never produced by <see cref="AttentionMask"/>) gives zeros, not NaN.</summary>
    public static Tensor MaskedSoftmax(Tensor scores, Tensor mask, double scale)
    {
        if (!SoftmaxShapes(scores, mask))
            throw new ArgumentException($"masked softmax: scores {SafetensorsEntry.FormatShape(scores.shape)} need a mask [B, 1, 1, T, L]; got {SafetensorsEntry.FormatShape(mask.shape)}");
        return SoftmaxFunction.apply(scores, mask, scale);
    }

    sealed class SoftmaxFunction : autograd.SingleTensorFunction<SoftmaxFunction>
    {
        public override string Name => "R1SharpMaskedSoftmax";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var x = ((Tensor)vars[0]).contiguous();
            var mask = ((Tensor)vars[1]).contiguous();
            float scale = (float)(double)vars[2];
            long b = x.size(0), heads = x.size(1) * x.size(2), t = x.size(3);
            int l = (int)x.size(4);
            var p = empty_like(x);
            float* xp = Ptr(x), mp = Ptr(mask), pp = Ptr(p);
            ForRows(b * heads * t, (start, end) =>
            {
                Span<float> tail = stackalloc float[V]; // once per chunk: a stackalloc in the row loop grows the stack per row
                for (long row = start; row < end; row++)
                {
                    long bi = row / (heads * t), ti = row % t;
                    float* m = mp + (bi * t + ti) * l;
                    float* pr = pp + row * l, xr = xp + row * l;
                    int j = 0;
                    var maxV = Vector256.Create(float.NegativeInfinity);
                    for (; j + V <= l; j += V)
                    {
                        var v = Vector256.Load(xr + j) * scale + Vector256.Load(m + j); // x·scale, rounded, + mask
                        v.Store(pr + j);
                        maxV = Vector256.Max(maxV, v);
                    }
                    float max = float.NegativeInfinity;
                    for (int q = 0; q < V; q++) max = Math.Max(max, maxV[q]);
                    for (; j < l; j++) { pr[j] = xr[j] * scale + m[j]; max = Math.Max(max, pr[j]); }
                    if (float.IsNegativeInfinity(max)) { new Span<float>(pr, l).Clear(); continue; }
                    var maxB = Vector256.Create(max);
                    var sumV = Vector256<float>.Zero;
                    for (j = 0; j + V <= l; j += V)
                    {
                        var e = Exp(Vector256.Load(pr + j) - maxB);
                        e.Store(pr + j);
                        sumV += e;
                    }
                    if (j < l)
                    {
                        // The tail as one vector padded with −∞ (e^−∞ = 0): a scalar exp costs as much as a vector one.
                        tail.Fill(float.NegativeInfinity);
                        for (int q = j; q < l; q++) tail[q - j] = pr[q] - max;
                        var e = Exp(Vector256.Create<float>(tail));
                        sumV += e;
                        for (int q = j; q < l; q++) pr[q] = e[q - j];
                    }
                    float sum = Vector256.Sum(sumV);
                    var inv = Vector256.Create(1f / sum);
                    for (j = 0; j + V <= l; j += V) (Vector256.Load(pr + j) * inv).Store(pr + j);
                    for (; j < l; j++) pr[j] *= inv[0];
                }
            });
            GC.KeepAlive(x);
            GC.KeepAlive(mask);
            ctx.save_for_backward([p]);
            ctx.save_data("scale", (double)scale);
            return p;
        }

        // dx = scale · p · (dp − Σ dp·p)
        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            var p = ctx.get_saved_variables()[0];
            float scale = (float)(double)ctx.get_data("scale");
            var dp = grad.contiguous();
            int l = (int)p.size(-1);
            long rows = p.numel() / l;
            var dx = empty_like(p);
            float* pp = Ptr(p), gp = Ptr(dp), dxp = Ptr(dx);
            ForRows(rows, (start, end) =>
            {
                for (long row = start; row < end; row++)
                {
                    float* pr = pp + row * l, gr = gp + row * l, dr = dxp + row * l;
                    var dotV = Vector256<float>.Zero;
                    float dot = 0;
                    int j = 0;
                    for (; j + V <= l; j += V) dotV += Vector256.Load(gr + j) * Vector256.Load(pr + j);
                    for (; j < l; j++) dot += gr[j] * pr[j];
                    dot += Vector256.Sum(dotV);
                    Vector256<float> dotB = Vector256.Create(dot), scaleB = Vector256.Create(scale);
                    for (j = 0; j + V <= l; j += V)
                        ((Vector256.Load(gr + j) - dotB) * Vector256.Load(pr + j) * scaleB).Store(dr + j);
                    for (; j < l; j++) dr[j] = (gr[j] - dot) * pr[j] * scale;
                }
            });
            GC.KeepAlive(dp);
            return [dx, null!, null!];
        }
    }
}
