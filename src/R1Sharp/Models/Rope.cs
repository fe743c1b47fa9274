using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// config.json's "rope_scaling": the frequency scaling a long-context model was trained with. Its type is "rope_type"
/// (or "type" in older configs): llama3 (Llama 3.1: factor, low/high_freq_factor, original_max_position_embeddings) or
/// yarn (Peng et al. 2023, as DeepSeek-V2/V3 and R1-0528-Qwen3 use it: factor, original_max_position_embeddings,
/// beta_fast, beta_slow, mscale, mscale_all_dim, attention_factor, truncate); other keys are kept for the round trip.
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
    public double? BetaFast { get; init; }
    public double? BetaSlow { get; init; }
    public double? Mscale { get; init; }
    public double? MscaleAllDim { get; init; }
    public double? AttentionFactor { get; init; }
    public bool? Truncate { get; init; }
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

    /// <summary>YaRN as DeepSeek-V3 and R1 ship it (factor 40 over an original context of 4096, betas 32 and 1,
    /// mscale and mscale_all_dim 1).</summary>
    public static RopeScaling Yarn(double factor = 40, int original = 4096, double betaFast = 32, double betaSlow = 1, double? mscale = 1, double? mscaleAllDim = 1) =>
        new() { TypeKey = "yarn", Factor = factor, OriginalMaxPositionEmbeddings = original, BetaFast = betaFast, BetaSlow = betaSlow, Mscale = mscale, MscaleAllDim = mscaleAllDim };

    /// <summary>YaRN's attention temperature (Peng et al. 2023, eq. 22; transformers' get_mscale):
    /// 0.1·mscale·ln(scale) + 1, and 1 when the context is not extended.</summary>
    public static double YarnMscale(double scale, double mscale = 1) => scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;

    /// <summary>The factor YaRN's frequencies use: transformers' _compute_yarn_parameters replaces rope_scaling.factor
    /// by max_position_embeddings / original_max_position_embeddings when the latter is given (DeepSeek-V3's configs
    /// state both, consistently).</summary>
    public double YarnFactor(int maxPositionEmbeddings) =>
        OriginalMaxPositionEmbeddings is { } original ? (double)maxPositionEmbeddings / original : Factor;

    /// <summary>The scale YaRN puts on cos and sin (transformers' attention_factor): attention_factor when given, else
    /// mscale(f, mscale) / mscale(f, mscale_all_dim) when both are set (DeepSeek: 1), else mscale(f).</summary>
    public double YarnAttentionFactor(int maxPositionEmbeddings)
    {
        if (AttentionFactor is { } a) return a;
        double f = YarnFactor(maxPositionEmbeddings);
        if (Mscale is { } m && m != 0 && MscaleAllDim is { } all && all != 0) return YarnMscale(f, m) / YarnMscale(f, all);
        return YarnMscale(f);
    }

    /// <summary>transformers' _validate_yarn_parameters and _validate_llama3_parameters, as errors naming the key; the
    /// factors within float32's range, in which the frequencies are computed.</summary>
    public void Validate(string source)
    {
        if (Type == "yarn")
        {
            if (!(Factor > 0 && Factor <= float.MaxValue))
                throw new ConfigValueException(source, "rope_scaling.factor", $"must be a positive number, found {Show(Factor)}");
            if (OriginalMaxPositionEmbeddings is <= 0)
                throw new ConfigValueException(source, "rope_scaling.original_max_position_embeddings", $"must be a positive integer, found {OriginalMaxPositionEmbeddings}");
            if (BetaFast is { } bf && !(bf >= 0 && bf <= float.MaxValue))
                throw new ConfigValueException(source, "rope_scaling.beta_fast", $"must be a non-negative number, found {Show(bf)}");
            if (BetaSlow is { } bs && !(bs >= 0 && bs <= float.MaxValue))
                throw new ConfigValueException(source, "rope_scaling.beta_slow", $"must be a non-negative number, found {Show(bs)}");
            if (Mscale is { } ms && !double.IsFinite(ms))
                throw new ConfigValueException(source, "rope_scaling.mscale", $"must be a finite number, found {Show(ms)}");
            if (MscaleAllDim is { } ma && !double.IsFinite(ma))
                throw new ConfigValueException(source, "rope_scaling.mscale_all_dim", $"must be a finite number, found {Show(ma)}");
            if (AttentionFactor is { } af && !(af > 0 && af <= float.MaxValue))
                throw new ConfigValueException(source, "rope_scaling.attention_factor", $"must be a positive number, found {Show(af)}");
        }
        if (Type == "llama3")
        {
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
    readonly float attentionFactor;
    Tensor? cos, sin; // [capacity, headDim] float32
    int capacity;
    readonly int maxPositions;

    /// <param name="dim">the rotated dimensions of a head (head_dim, or DeepSeek's qk_rope_head_dim)</param>
    /// <param name="maxPositions">max_position_embeddings (YaRN derives its factor from it)</param>
    public Rope(int dim, double theta, RopeScaling? scaling, int maxPositions)
    {
        this.maxPositions = maxPositions;
        invFreq = InverseFrequencies(dim, theta, scaling, maxPositions);
        attentionFactor = scaling?.Type == "yarn" ? (float)scaling.YarnAttentionFactor(maxPositions) : 1f;
    }

    /// <summary>The factor cos and sin are multiplied by (YaRN's attention_factor; 1 otherwise).</summary>
    public float AttentionFactor => attentionFactor;

    /// <summary>inv_freq[i] = 1 / theta^(2i/d), computed in float32 as transformers' _compute_default_rope_parameters,
    /// then scaled as rope_scaling says (llama3 or yarn).</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling, int maxPositions = 0)
    {
        if (scaling?.Type == "yarn") return YarnInverseFrequencies(headDim, theta, scaling, maxPositions);
        int half = headDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0f / MathF.Pow((float)theta, (2 * i) / (float)headDim);
        if (scaling?.Type == "llama3") ApplyLlama3(inv, scaling);
        return inv;
    }

    /// <summary>
    /// YaRN's frequencies (Peng et al. 2023, "NTK-by-parts"), as transformers' _compute_yarn_parameters computes them in
    /// float32: dimensions that turn fewer than beta_slow times over the original context are interpolated (divided by
    /// the factor), those that turn more than beta_fast times are kept, with a linear ramp between the two correction
    /// dimensions (floored and ceiled unless truncate is false).
    /// </summary>
    static float[] YarnInverseFrequencies(int dim, double theta, RopeScaling s, int maxPositions)
    {
        double factor = s.YarnFactor(maxPositions);
        int original = s.OriginalMaxPositionEmbeddings ?? maxPositions;
        // transformers reads them with `or`: an explicit 0 means the default too.
        double betaFast = s.BetaFast is { } bf && bf != 0 ? bf : 32, betaSlow = s.BetaSlow is { } bs && bs != 0 ? bs : 1;
        double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(betaFast), high = CorrectionDim(betaSlow);
        if (s.Truncate ?? true) { low = Math.Floor(low); high = Math.Ceiling(high); }
        low = Math.Max(low, 0); high = Math.Min(high, dim - 1);
        if (low == high) high += 0.001; // transformers: prevents a singularity
        int half = dim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            float posFreq = MathF.Pow((float)theta, (2 * i) / (float)dim);
            float extrapolation = 1f / posFreq, interpolation = 1f / ((float)factor * posFreq);
            float ramp = Math.Clamp((i - (float)low) / (float)(high - low), 0f, 1f);
            float keep = 1 - ramp; // inv_freq_extrapolation_factor
            inv[i] = interpolation * (1 - keep) + extrapolation * keep;
        }
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
        using var stop = cap.ToScalar(); // arange(stop) would make stop, start 0 and step 1 temporary Scalars (HeldScalars)
        var pos = arange(HeldScalars.Zero, stop, HeldScalars.One, dtype: ScalarType.Float32);
        var freqs = outer(pos, tensor(invFreq));          // [cap, d/2], float32 as in HF
        var emb = cat([freqs, freqs], dim: 1);            // rotate_half layout
        cos?.Dispose(); sin?.Dispose();
        // transformers multiplies cos and sin by attention_scaling (YaRN's attention factor) in float32.
        using var factor = attentionFactor.ToScalar();
        cos = (attentionFactor == 1f ? emb.cos() : emb.cos().mul_(factor)).DetachFromDisposeScope();
        sin = (attentionFactor == 1f ? emb.sin() : emb.sin().mul_(factor)).DetachFromDisposeScope();
        capacity = cap;
    }

    /// <summary>cos and sin for the given positions [B, T], shaped [B, 1, T, headDim] in the given dtype and device.</summary>
    public (Tensor cos, Tensor sin) Gather(Tensor positions, ScalarType dtype, Device device)
    {
        if (positions.numel() <= SmallGather && positions.device_type == DeviceType.CPU && device.type == DeviceType.CPU && (cos is null || cos.device_type == DeviceType.CPU)
            && positions.dtype == ScalarType.Int64 && (dtype == ScalarType.Float32 || dtype == ScalarType.BFloat16))
            return GatherFew(positions, dtype);
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

    /// <summary>Up to this many positions (a decode step's rows) the rows of the tables are copied in C#: the max,
    /// two index_selects, views and casts of <see cref="Gather"/> cost more than the copy.</summary>
    const int SmallGather = 64;

    /// <summary><see cref="Gather"/> for a few positions on the CPU: the same values (float32 rows, rounded to bfloat16
    /// to nearest even as .to() does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // on the decode path each step: no tier-0 phase
    unsafe (Tensor cos, Tensor sin) GatherFew(Tensor positions, ScalarType dtype)
    {
        long b = positions.size(0), t = positions.size(1);
        var pos = positions.contiguous().data<long>().ToArray();
        EnsureCapacity((int)pos.Max() + 1);
        int d = (int)cos!.size(1);
        var c = empty([b, 1, t, d], dtype: dtype);
        var s = empty([b, 1, t, d], dtype: dtype);
        bool bf16 = dtype == ScalarType.BFloat16;
        nint cp = Kernels.TensorMemory.Address(cos), sp = Kernels.TensorMemory.Address(sin!);
        nint co = Kernels.TensorMemory.Address(c), so = Kernels.TensorMemory.Address(s);
        for (int i = 0; i < pos.Length; i++)
        {
            if (pos[i] < 0) throw new ArgumentOutOfRangeException(nameof(positions), $"position {pos[i]} is negative");
            float* cr = (float*)cp + pos[i] * d, sr = (float*)sp + pos[i] * d;
            for (int j = 0; j < d; j++)
            {
                long o = (long)i * d + j;
                if (bf16) { ((ushort*)co)[o] = Kernels.Bf16.FromFloat(cr[j]); ((ushort*)so)[o] = Kernels.Bf16.FromFloat(sr[j]); }
                else { ((float*)co)[o] = cr[j]; ((float*)so)[o] = sr[j]; }
            }
        }
        GC.KeepAlive(cos); GC.KeepAlive(sin);
        return (c, s);
    }

    public void Dispose() { cos?.Dispose(); sin?.Dispose(); }
}
