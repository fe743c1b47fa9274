using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Models;

/// <summary>
/// y[r, n] = Σ_k x[r, k] · W[n, k] for a bfloat16 weight W [N, K] and a few float32 rows x [R, K].
/// Decoding multiplies one token (or a handful) by every weight matrix; libtorch's bfloat16 matmul on a CPU without
/// native bfloat16 instructions runs several times slower than its float32 one, which would waste the halved weight
/// bytes. Here each weight is read once, widened to float32 in registers (a bfloat16 is the top half of a float32)
/// and multiplied into every row, so the loop runs at memory speed. Accumulation is float32, as in libtorch.
/// </summary>
public static unsafe class Bf16Gemv
{
    public static bool Supported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Rows per pass over the weight: four accumulators per row stay in registers.</summary>
    const int RowBlock = 4;

    public static void Run(ushort* w, float* x, float* y, int rows, int n, int k, int threads)
    {
        int chunks = Math.Max(1, Math.Min(threads * 8, n / 16));
        int per = (n + chunks - 1) / chunks;
        var wp = (nint)w; var xp = (nint)x; var yp = (nint)y;
        if (threads <= 1 || chunks == 1) { Range((ushort*)wp, (float*)xp, (float*)yp, rows, n, k, 0, n); return; }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            int start = c * per, end = Math.Min(n, start + per);
            if (start < end) Range((ushort*)wp, (float*)xp, (float*)yp, rows, n, k, start, end);
        });
    }

    static void Range(ushort* w, float* x, float* y, int rows, int n, int k, int start, int end)
    {
        for (int r0 = 0; r0 < rows; r0 += RowBlock)
        {
            int rb = Math.Min(RowBlock, rows - r0);
            for (int j = start; j < end; j++)
            {
                ushort* wr = w + (long)j * k;
                for (int r = 0; r < rb; r++)
                    y[(long)(r0 + r) * n + j] = Dot(wr, x + (long)(r0 + r) * k, k);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Widen(Vector128<ushort> h) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(h), 16).AsSingle();

    static float Dot(ushort* w, float* x, int k)
    {
        var a0 = Vector256<float>.Zero; var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero; var a3 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 32 <= k; i += 32)
        {
            a0 = Fma.MultiplyAdd(Widen(Sse2.LoadVector128(w + i)), Avx.LoadVector256(x + i), a0);
            a1 = Fma.MultiplyAdd(Widen(Sse2.LoadVector128(w + i + 8)), Avx.LoadVector256(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(Widen(Sse2.LoadVector128(w + i + 16)), Avx.LoadVector256(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(Widen(Sse2.LoadVector128(w + i + 24)), Avx.LoadVector256(x + i + 24), a3);
        }
        for (; i + 8 <= k; i += 8)
            a0 = Fma.MultiplyAdd(Widen(Sse2.LoadVector128(w + i)), Avx.LoadVector256(x + i), a0);
        var s = Avx.Add(Avx.Add(a0, a1), Avx.Add(a2, a3));
        float sum = Vector256.Sum(s);
        for (; i < k; i++) sum += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return sum;
    }
}
