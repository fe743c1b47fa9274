using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace R1Sharp.Kernels;

/// <summary>
/// Rows of activations x [rows, K] quantised per block to int8 for the integer dot products, as llama.cpp quantises
/// them to block_q8_K (256 values, for the K-quants) or block_q8_0 (32 values, for Q8_0 and Q4_0): per block a scale
/// d = max|x| / 127 and q = round(x / d) in [-127, 127]. Stored as separate arrays rather than ggml's interleaved
/// blocks so the kernels load 32 or 64 q's at a time: Q (rows × K), D (one float per block), and per block what the
/// weights' offsets need: for 256-value blocks the sums of each 16 q's (block_q8_K's bsums), for 32-value blocks
/// d · Σq. Unlike llama.cpp's q8_0 activations, d stays a float32 (no f16 rounding).
/// </summary>
internal readonly unsafe struct Q8Rows
{
    public readonly sbyte* Q;
    public readonly float* D;
    /// <summary>256-value blocks: Σ q over each 16 (K / 16 per row).</summary>
    public readonly short* BSums;
    /// <summary>256-value blocks: Σ q over each 32 (K / 32 per row; Q4_K/Q5_K's sub-blocks).</summary>
    public readonly short* BSums32;
    /// <summary>32-value blocks: d · Σ q (K / 32 per row).</summary>
    public readonly float* Sums;
    public readonly int K, Block;
    /// <summary>K / Block, kept so that finding a row's scales is not an integer division per dot product.</summary>
    readonly int blocksPerRow;

    public Q8Rows(sbyte* q, float* d, short* bsums, short* bsums32, float* sums, int k, int block)
    {
        Q = q; D = d; BSums = bsums; BSums32 = bsums32; Sums = sums; K = k; Block = block; blocksPerRow = k / block;
    }

    public sbyte* RowQ(int r) => Q + (long)r * K;
    public float* RowD(int r) => D + (long)r * blocksPerRow;
    public short* RowBSums(int r) => BSums + (long)r * (K / 16);
    public short* RowBSums32(int r) => BSums32 + (long)r * (K / 32);
    public float* RowSums(int r) => Sums + (long)r * (K / 32);

    /// <summary>Quantises x [rows, k] into blocks of <paramref name="block"/> (32 or 256) in this thread's buffer,
    /// valid until this thread quantises again.</summary>
    public static Q8Rows Quantize(float* x, int rows, int k, int block)
    {
        var buf = block == 256 ? (k256 ??= new Buffer()) : (k32 ??= new Buffer());
        long n = (long)rows * k;
        int blocks = k / block;
        buf.Ensure(n, (long)rows * blocks, (long)rows * (k / 16));
        var a = new Q8Rows(buf.Q, buf.D, buf.BSums, buf.BSums32, buf.Sums, k, block);
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + (long)r * k;
            sbyte* q = a.RowQ(r);
            float* d = a.RowD(r);
            for (int b = 0; b < blocks; b++)
            {
                float dd = QuantizeBlock(xr + b * block, q + b * block, block);
                d[b] = dd;
                sbyte* qb = q + b * block;
                if (block == 256)
                {
                    short* bs = a.RowBSums(r) + b * 16;
                    for (int g = 0; g < 16; g++)
                    {
                        int s = 0;
                        for (int i = 0; i < 16; i++) s += qb[g * 16 + i];
                        bs[g] = (short)s;
                    }
                    short* bs32 = a.RowBSums32(r) + b * 8;
                    for (int g = 0; g < 8; g++) bs32[g] = (short)(bs[2 * g] + bs[2 * g + 1]);
                }
                else
                {
                    int s = 0;
                    for (int i = 0; i < 32; i++) s += qb[i];
                    a.RowSums(r)[b] = dd * s;
                }
            }
        }
        return a;
    }

    /// <summary>d = max|x| / 127, q = round-half-even(x · 127 / max|x|); returns d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float QuantizeBlock(float* x, sbyte* q, int n)
    {
        var amax8 = Vector256<float>.Zero;
        for (int i = 0; i < n; i += 8) amax8 = Vector256.Max(amax8, Vector256.Abs(Vector256.Load(x + i)));
        var h = Vector128.Max(amax8.GetLower(), amax8.GetUpper());
        float amax = MathF.Max(MathF.Max(h[0], h[1]), MathF.Max(h[2], h[3]));
        if (amax == 0)
        {
            new Span<sbyte>(q, n).Clear();
            return 0;
        }
        var id = Vector256.Create(127f / amax);
        for (int i = 0; i < n; i += 32)
        {
            var a = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + i) * id));
            var b = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + i + 8) * id));
            var c = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + i + 16) * id));
            var e = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + i + 24) * id));
            Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, e)).Store(q + i);
        }
        return amax / 127f;
    }

    /// <summary>A growing native buffer per thread and block size (a decode step quantises a few KB per call).</summary>
    sealed class Buffer
    {
        public sbyte* Q; public float* D; public short* BSums, BSums32; public float* Sums;
        long _q, _d, _bs;

        public void Ensure(long q, long d, long bs)
        {
            if (q > _q) { Free(Q); Q = (sbyte*)NativeMemory.AlignedAlloc((nuint)q, 64); _q = q; }
            if (d > _d)
            {
                Free(D); Free(Sums);
                D = (float*)NativeMemory.AlignedAlloc((nuint)(d * 4), 64);
                Sums = (float*)NativeMemory.AlignedAlloc((nuint)(d * 4), 64);
                _d = d;
            }
            if (bs > _bs)
            {
                Free(BSums); Free(BSums32);
                BSums = (short*)NativeMemory.AlignedAlloc((nuint)(bs * 2), 64);
                BSums32 = (short*)NativeMemory.AlignedAlloc((nuint)bs, 64);
                _bs = bs;
            }
        }

        static void Free(void* p) { if (p != null) NativeMemory.AlignedFree(p); }

        ~Buffer() { Free(Q); Free(D); Free(Sums); Free(BSums); Free(BSums32); }
    }

    [ThreadStatic] static Buffer? k256, k32;
}
