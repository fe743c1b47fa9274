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
        long half = x.size(-1) / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], dim: -1);
        return x * cos + rotated * sin;
    }

    public void Dispose() { cos?.Dispose(); sin?.Dispose(); }
}
