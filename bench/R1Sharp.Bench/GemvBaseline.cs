using R1Sharp.Kernels;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Bench;

/// <summary>The GEMV kernel of src/R1Sharp/Models/Gemv.cs as it was at commit 5d046ea (one matrix per call, one weight
/// row × four x rows per inner loop), kept so that `profile --kernels` can time old and new alternately in one run.</summary>
public static unsafe class GemvBaseline
{
    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;

    public static void RunBf16(ushort* w, float* x, float* y, int rows, int n, int k, int threads) =>
        Run<Bf16>((nint)w, x, y, rows, n, k, threads);

    public static void RunF32(float* w, float* x, float* y, int rows, int n, int k, int threads) =>
        Run<F32>((nint)w, x, y, rows, n, k, threads);

    interface IWeights
    {
        static abstract int ElementSize { get; }
        static abstract Vector256<float> Load(nint row, int i);
        static abstract float Scalar(nint row, int i);
    }

    readonly struct Bf16 : IWeights
    {
        public static int ElementSize => 2;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(nint row, int i) =>
            Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Sse2.LoadVector128((ushort*)row + i)), 16).AsSingle();
        public static float Scalar(nint row, int i) => BitConverter.Int32BitsToSingle(((ushort*)row)[i] << 16);
    }

    readonly struct F32 : IWeights
    {
        public static int ElementSize => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(nint row, int i) => Avx.LoadVector256((float*)row + i);
        public static float Scalar(nint row, int i) => ((float*)row)[i];
    }

    static void Run<TW>(nint w, float* x, float* y, int rows, int n, int k, int threads) where TW : struct, IWeights
    {
        int chunks = Math.Max(1, Math.Min(threads * 8, n / 16));
        int per = (n + chunks - 1) / chunks;
        nint xp = (nint)x, yp = (nint)y;
        if (threads <= 1 || chunks == 1) { Range<TW>(w, x, y, rows, n, k, 0, n); return; }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            int start = c * per, end = Math.Min(n, start + per);
            if (start < end) Range<TW>(w, (float*)xp, (float*)yp, rows, n, k, start, end);
        });
    }

    static void Range<TW>(nint w, float* x, float* y, int rows, int n, int k, int start, int end) where TW : struct, IWeights
    {
        long stride = (long)k * TW.ElementSize;
        // Weight row outermost: it is read from memory once and stays in L1 while every block of x rows uses it.
        for (int j = start; j < end; j++)
        {
            nint wr = w + (nint)(j * stride);
            int r0 = 0;
            for (; r0 + 4 <= rows; r0 += 4)
            {
                Dot4<TW>(wr, x + (long)r0 * k, k, out var s0, out var s1, out var s2, out var s3);
                y[(long)r0 * n + j] = s0; y[(long)(r0 + 1) * n + j] = s1;
                y[(long)(r0 + 2) * n + j] = s2; y[(long)(r0 + 3) * n + j] = s3;
            }
            for (; r0 < rows; r0++) y[(long)r0 * n + j] = Dot<TW>(wr, x + (long)r0 * k, k);
        }
    }

    static void Dot4<TW>(nint w, float* x, int k, out float s0, out float s1, out float s2, out float s3) where TW : struct, IWeights
    {
        float* x1 = x + k, x2 = x1 + k, x3 = x2 + k;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var w0 = TW.Load(w, i);
            var w1 = TW.Load(w, i + 8);
            a0 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x1 + i), a1);
            a2 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x2 + i), a2);
            a3 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x3 + i), a3);
            b0 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x + i + 8), b0);
            b1 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x1 + i + 8), b1);
            b2 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x2 + i + 8), b2);
            b3 = Fma.MultiplyAdd(w1, Avx.LoadVector256(x3 + i + 8), b3);
        }
        for (; i + 8 <= k; i += 8)
        {
            var w0 = TW.Load(w, i);
            a0 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x1 + i), a1);
            a2 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x2 + i), a2);
            a3 = Fma.MultiplyAdd(w0, Avx.LoadVector256(x3 + i), a3);
        }
        s0 = Vector256.Sum(Avx.Add(a0, b0)); s1 = Vector256.Sum(Avx.Add(a1, b1));
        s2 = Vector256.Sum(Avx.Add(a2, b2)); s3 = Vector256.Sum(Avx.Add(a3, b3));
        for (; i < k; i++)
        {
            float wi = TW.Scalar(w, i);
            s0 += wi * x[i]; s1 += wi * x1[i]; s2 += wi * x2[i]; s3 += wi * x3[i];
        }
    }

    static float Dot<TW>(nint w, float* x, int k) where TW : struct, IWeights
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        for (; i + 32 <= k; i += 32)
        {
            a0 = Fma.MultiplyAdd(TW.Load(w, i), Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(TW.Load(w, i + 8), Avx.LoadVector256(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(TW.Load(w, i + 16), Avx.LoadVector256(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(TW.Load(w, i + 24), Avx.LoadVector256(x + i + 24), a3);
        }
        for (; i + 8 <= k; i += 8) a0 = Fma.MultiplyAdd(TW.Load(w, i), Avx.LoadVector256(x + i), a0);
        float sum = Vector256.Sum(Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3)));
        for (; i < k; i++) sum += TW.Scalar(w, i) * x[i];
        return sum;
    }
}
