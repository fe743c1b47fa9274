using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// config.json's "rope_scaling": the frequency scaling a long-context model was trained with. Its type is "rope_type"
/// (or "type" in older configs): llama3 (Llama 3.1, with factor, low/high_freq_factor and
/// original_max_position_embeddings) is what the supported families use; other keys are kept for the round trip.
/// </summary>
public sealed record RopeScaling
{
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    /// <summary>The older spelling of rope_type.</summary>
    [JsonPropertyName("type")] public string? TypeKey { get; init; }
    public double Factor { get; init; } = 1.0;
    public double? LowFreqFactor { get; init; }
    public double? HighFreqFactor { get; init; }
    public int? OriginalMaxPositionEmbeddings { get; init; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

    /// <summary>The scaling's type ("default" when neither key is given).</summary>
    [JsonIgnore] public string Type => RopeType ?? TypeKey ?? "default";
    /// <summary>The key the type was read from, for messages.</summary>
    [JsonIgnore] public string TypeKeyName => RopeType is null && TypeKey is not null ? "rope_scaling.type" : "rope_scaling.rope_type";
    [JsonIgnore] public double LowFreqFactorOrDefault => LowFreqFactor ?? 1.0;
    [JsonIgnore] public double HighFreqFactorOrDefault => HighFreqFactor ?? 4.0;
    [JsonIgnore] public int OriginalMaxPositionEmbeddingsOrDefault => OriginalMaxPositionEmbeddings ?? 8192;

    /// <summary>Llama 3.1's published scaling (factor 8, low 1, high 4, original context 8192).</summary>
    public static RopeScaling Llama3(double factor = 8, double low = 1, double high = 4, int original = 8192) =>
        new() { RopeType = "llama3", Factor = factor, LowFreqFactor = low, HighFreqFactor = high, OriginalMaxPositionEmbeddings = original };

    /// <summary>transformers' _validate_llama3_parameters, as errors: factor a number ≥ 1, 0 &lt; low_freq_factor &lt;
    /// high_freq_factor, original_max_position_embeddings positive; the factors within float32's range, in which
    /// the frequencies are computed.</summary>
    public void Validate(string source)
    {
        if (Type != "llama3") return;
        if (!(Factor >= 1 && Factor <= float.MaxValue))
            throw new ConfigValueException(source, "rope_scaling.factor", $"must be a number ≥ 1, found {Show(Factor)}");
        double low = LowFreqFactorOrDefault, high = HighFreqFactorOrDefault;
        if (!(low > 0 && low <= float.MaxValue))
            throw new ConfigValueException(source, "rope_scaling.low_freq_factor", $"must be a positive number, found {Show(low)}");
        if (!(high > low && high <= float.MaxValue))
            throw new ConfigValueException(source, "rope_scaling.high_freq_factor", $"must be a number greater than low_freq_factor {Show(low)}, found {Show(high)}");
        if (OriginalMaxPositionEmbeddingsOrDefault <= 0)
            throw new ConfigValueException(source, "rope_scaling.original_max_position_embeddings", $"must be a positive integer, found {OriginalMaxPositionEmbeddingsOrDefault}");
    }

    static string Show(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

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

    /// <param name="dim">the rotated dimensions of a head (head_dim, or DeepSeek's qk_rope_head_dim)</param>
    public Rope(int dim, double theta, RopeScaling? scaling, int maxPositions)
    {
        this.maxPositions = maxPositions;
        invFreq = InverseFrequencies(dim, theta, scaling);
    }

    /// <summary>inv_freq[i] = 1 / theta^(2i/d), computed in float32 as transformers' _compute_default_rope_parameters.</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0f / MathF.Pow((float)theta, (2 * i) / (float)headDim);
        if (scaling?.Type == "llama3") ApplyLlama3(inv, scaling);
        return inv;
    }

    /// <summary>Llama 3.1 frequency scaling: transformers' _compute_llama3_parameters (long wavelengths divided by
    /// `factor`, short ones kept, a smooth blend between low_freq_wavelen and high_freq_wavelen).</summary>
    static void ApplyLlama3(float[] inv, RopeScaling s)
    {
        float factor = (float)s.Factor, lowF = (float)s.LowFreqFactorOrDefault, highF = (float)s.HighFreqFactorOrDefault;
        float oldLen = s.OriginalMaxPositionEmbeddingsOrDefault;
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

    public void Dispose() { cos?.Dispose(); sin?.Dispose(); }
}
