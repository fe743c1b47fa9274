using System.Runtime.InteropServices;

namespace R1Sharp.Kernels;

/// <summary>
/// The first 8·G rows of quantised activations (<see cref="Q8Rows"/>) regrouped for the 8-row kernels
/// (<see cref="IQuantDot8"/>): within a group of 8 rows, each 4 consecutive values of the 8 rows sit together
/// (Q: [group][K/4][row 0-7][4 bytes]), so one 32-byte load holds the same 4 positions of all 8 rows and meets one
/// broadcast of 4 weight values in one vpmaddubsw; the per-row numbers the kernels scale by are laid out the same way,
/// 8 rows per vector: D [group][block][8], and for 256-value blocks the per-16 and per-32 sums in adjacent pairs
/// (BSums16 [group][K/32][8][2], BSums32 [group][K/64][8][2]) so one vpmaddwd takes two sub-blocks' terms of 8 rows.
/// This is the activations' side of llama.cpp's repack (block_q8_Kx4), on our side of the product, where the
/// regrouping costs 8·K bytes per group per call instead of a copy of the weights.
/// </summary>
internal readonly unsafe struct Q8Groups
{
    public readonly sbyte* Q;
    public readonly float* D;
    public readonly short* BSums16, BSums32;
    public readonly int K, Block, Groups;

    Q8Groups(sbyte* q, float* d, short* bs16, short* bs32, int k, int block, int groups)
    {
        Q = q; D = d; BSums16 = bs16; BSums32 = bs32; K = k; Block = block; Groups = groups;
    }

    public sbyte* GroupQ(int g) => Q + (long)g * 8 * K;
    public float* GroupD(int g) => D + (long)g * 8 * (K / Block);
    public short* GroupBSums16(int g) => BSums16 + (long)g * 8 * (K / 16);
    public short* GroupBSums32(int g) => BSums32 + (long)g * 8 * (K / 32);

    /// <summary>Regroups rows 0..8·groups−1 of <paramref name="a"/> into this thread's buffer (valid until this
    /// thread regroups the same block size again).</summary>
    public static Q8Groups From(in Q8Rows a, int groups)
    {
        int k = a.K, nb = k / a.Block;
        var buf = a.Block == 256 ? (k256 ??= new Buffer()) : (k32 ??= new Buffer());
        buf.Ensure((long)groups * 8 * k, (long)groups * 8 * nb, (long)groups * 8 * (k / 16));
        var o = new Q8Groups(buf.Q, buf.D, buf.BSums16, buf.BSums32, k, a.Block, groups);
        for (int g = 0; g < groups; g++)
        {
            int* q = (int*)o.GroupQ(g);
            float* d = o.GroupD(g);
            for (int i = 0; i < 8; i++)
            {
                int r = 8 * g + i;
                int* src = (int*)a.RowQ(r);
                for (int c = 0; c < k / 4; c++) q[8 * c + i] = src[c];
                float* dr = a.RowD(r);
                for (int b = 0; b < nb; b++) d[8 * b + i] = dr[b];
                if (a.Block != 256) continue;
                short* s16 = a.RowBSums(r), s32 = a.RowBSums32(r);
                short* t16 = o.GroupBSums16(g), t32 = o.GroupBSums32(g);
                for (int p = 0; p < k / 32; p++) { t16[16 * p + 2 * i] = s16[2 * p]; t16[16 * p + 2 * i + 1] = s16[2 * p + 1]; }
                for (int p = 0; p < k / 64; p++) { t32[16 * p + 2 * i] = s32[2 * p]; t32[16 * p + 2 * i + 1] = s32[2 * p + 1]; }
            }
        }
        return o;
    }

    sealed class Buffer
    {
        public sbyte* Q; public float* D; public short* BSums16, BSums32;
        long _q, _d, _bs;

        public void Ensure(long q, long d, long bs)
        {
            if (q > _q) { Free(Q); Q = (sbyte*)NativeMemory.AlignedAlloc((nuint)q, 64); _q = q; }
            if (d > _d) { Free(D); D = (float*)NativeMemory.AlignedAlloc((nuint)(d * 4), 64); _d = d; }
            if (bs > _bs)
            {
                Free(BSums16); Free(BSums32);
                BSums16 = (short*)NativeMemory.AlignedAlloc((nuint)(bs * 2), 64);
                BSums32 = (short*)NativeMemory.AlignedAlloc((nuint)bs, 64);
                _bs = bs;
            }
        }

        static void Free(void* p) { if (p != null) NativeMemory.AlignedFree(p); }

        ~Buffer() { Free(Q); Free(D); Free(BSums16); Free(BSums32); }
    }

    [ThreadStatic] static Buffer? k256, k32;
}
