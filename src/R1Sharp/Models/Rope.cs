using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// Rotary position embeddings in Hugging Face's `rotate_half` layout (the first and second halves of each head
/// are the two rotated coordinates, not interleaved pairs). Tables are computed the way transformers does
/// (inv_freq and angles in float32) and grown on demand, so long contexts cost nothing until used.
/// </summary>
public sealed class Rope : IDisposable
{
    readonly float[] invFreq;
    Tensor? cos, sin; // [capacity, headDim] float32
    int capacity;
    readonly int maxPositions;

    public Rope(ModelConfig cfg)
    {
        maxPositions = cfg.MaxPositionEmbeddings;
        invFreq = InverseFrequencies(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScaling);
    }

    /// <summary>inv_freq[i] = 1 / theta^(2i/d), computed in float32 as transformers' _compute_default_rope_parameters.</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0f / MathF.Pow((float)theta, (2 * i) / (float)headDim);
        if (scaling is { RopeType: "llama3" } s) ApplyLlama3(inv, s);
        return inv;
    }

    /// <summary>Llama 3.1 frequency scaling: transformers' _compute_llama3_parameters (long wavelengths divided by
    /// `factor`, short ones kept, a smooth blend between low_freq_wavelen and high_freq_wavelen).</summary>
    static void ApplyLlama3(float[] inv, RopeScaling s)
    {
        float factor = (float)s.Factor, lowF = (float)s.LowFreqFactor, highF = (float)s.HighFreqFactor;
        float oldLen = s.OriginalMaxPositionEmbeddings;
        float lowWavelen = oldLen / lowF, highWavelen = oldLen / highF;
        for (int i = 0; i < inv.Length; i++)
        {
            float wavelen = 2 * MathF.PI / inv[i];
            float scaled = wavelen > lowWavelen ? inv[i] / factor : inv[i];
            bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium)
            {
                float smooth = (oldLen / wavelen - lowF) / (highF - lowF);
                scaled = (1 - smooth) * scaled / factor + smooth * scaled;
            }
            inv[i] = scaled;
        }
    }

    void EnsureCapacity(int needed)
    {
        if (needed <= capacity) return;
        int cap = Math.Max(needed, Math.Max(256, capacity * 2));
        if (cap > maxPositions && needed <= maxPositions) cap = maxPositions;
        using var scope = NewDisposeScope();
        var pos = arange(cap, dtype: ScalarType.Float32);
        var freqs = outer(pos, tensor(invFreq));          // [cap, d/2], float32 as in HF
        var emb = cat([freqs, freqs], dim: 1);            // rotate_half layout
        cos?.Dispose(); sin?.Dispose();
        cos = emb.cos().DetachFromDisposeScope();
        sin = emb.sin().DetachFromDisposeScope();
        capacity = cap;
    }

    /// <summary>cos and sin for the given positions [B, T], shaped [B, 1, T, headDim] in the given dtype and device.</summary>
    public (Tensor cos, Tensor sin) Gather(Tensor positions, ScalarType dtype, Device device)
    {
        int maxPos = (int)positions.max().item<long>() + 1;
        EnsureCapacity(maxPos);
        if (cos!.device_type != device.type || cos.device_index != device.index)
        {
            var (c0, s0) = (cos, sin!);
            cos = c0.to(device).DetachFromDisposeScope(); sin = s0.to(device).DetachFromDisposeScope();
            c0.Dispose(); s0.Dispose();
        }
        var flat = positions.reshape(-1);
        long b = positions.size(0), t = positions.size(1);
        var c = cos.index_select(0, flat).view(b, 1, t, -1).to(dtype);
        var s = sin!.index_select(0, flat).view(b, 1, t, -1).to(dtype);
        return (c, s);
    }

    /// <summary>x * cos + rotate_half(x) * sin, where rotate_half(x) = cat(-x2, x1).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        if (SmallInference.Applies(x, cos, sin) && cos.dim() == 4 && x.dim() == 4 && cos.size(1) == 1
            && cos.size(0) == x.size(0) && cos.size(2) == x.size(2) && cos.size(3) == x.size(3)) return Direct(x, cos, sin);
        long half = x.size(-1) / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], dim: -1);
        return x * cos + rotated * sin;
    }

    /// <summary>The same for a decode step's few rows, in one pass instead of seven operators: x·cos and
    /// rotate_half(x)·sin each rounded to the dtype, then their sum rounded, as libtorch's three operators round.</summary>
    static unsafe Tensor Direct(Tensor x, Tensor cos, Tensor sin)
    {
        long b = x.size(0), heads = x.size(1), t = x.size(2);
        int d = (int)x.size(3), half = d / 2;
        bool bf16 = x.dtype == ScalarType.BFloat16;
        var output = empty_like(x);
        nint xp = TensorMemory.Address(x), yp = TensorMemory.Address(output);
        nint cp = TensorMemory.Address(cos), sp = TensorMemory.Address(sin);
        for (long bi = 0; bi < b; bi++)
            for (long h = 0; h < heads; h++)
                for (long ti = 0; ti < t; ti++)
                {
                    long row = ((bi * heads + h) * t + ti) * d, table = (bi * t + ti) * d;
                    for (int i = 0; i < d; i++)
                    {
                        float v = SmallInference.Load(xp, row + i, bf16);
                        float rotated = i < half ? -SmallInference.Load(xp, row + i + half, bf16) : SmallInference.Load(xp, row + i - half, bf16);
                        float a = SmallInference.Round(v * SmallInference.Load(cp, table + i, bf16), bf16);
                        float c = SmallInference.Round(rotated * SmallInference.Load(sp, table + i, bf16), bf16);
                        SmallInference.Store(yp, row + i, a + c, bf16);
                    }
                }
        GC.KeepAlive(x); GC.KeepAlive(cos); GC.KeepAlive(sin); // read only through their addresses above
        return output;
    }

    public void Dispose() { cos?.Dispose(); sin?.Dispose(); }
}
