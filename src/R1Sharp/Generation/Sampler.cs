using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>
/// Picks next tokens from logits. Top-p never sorts the whole vocabulary in the common case: it takes the top
/// candidates (top-k when set, else <see cref="Candidates"/>) and measures their mass against the full softmax;
/// only when those candidates hold less than top_p of the mass (near-uniform distributions) does it sort everything,
/// so the result is always exactly transformers' TopPLogitsWarper.
/// </summary>
public static class Sampler
{
    /// <summary>Candidate count for top-p when top-k is off: a trained model's nucleus is almost always inside it.</summary>
    public const int Candidates = 1024;

    /// <summary>Next token for each row of float32 logits [B, V].</summary>
    public static int[] Sample(Tensor logits, SamplingOptions o, Generator?[] generators)
    {
        using var scope = NewDisposeScope();
        int b = (int)logits.size(0);
        var result = new int[b];
        if (o.Greedy)
        {
            if (Kernels.ArgMax.Applies(logits))
            {
                bool done = true;
                for (int i = 0; i < b && done; i++) done = Kernels.ArgMax.Row(logits, i, out result[i]);
                if (done) return result;
            }
            var arg = logits.argmax(-1).cpu();
            for (int i = 0; i < b; i++) result[i] = (int)arg[i].item<long>();
            return result;
        }
        using var temperature = o.Temperature.ToScalar(); // held for the call (HeldScalars)
        var scaled = logits.div(temperature);
        for (int i = 0; i < b; i++) result[i] = SampleRow(scaled[i], o, generators[i]);
        return result;
    }

    static int SampleRow(Tensor row, SamplingOptions o, Generator? gen)
    {
        var probs = Distribution(row, o);
        var pick = multinomial(probs, 1, replacement: false, generator: gen);
        return (int)pick.cpu().item<long>();
    }

    /// <summary>
    /// The distribution a row is sampled from after top-k and top-p, over the whole vocabulary (zero outside the kept
    /// set, not renormalised: multinomial does that). Logits must already be divided by the temperature.
    /// </summary>
    public static Tensor Distribution(Tensor row, SamplingOptions o)
    {
        row = row.to(ScalarType.Float32);
        long vocab = row.size(0);
        bool useTopK = o.TopK > 0 && o.TopK < vocab;
        if (!useTopK && o.TopP >= 1f) return row.softmax(-1);

        long c = useTopK ? o.TopK : Math.Min(vocab, Candidates);
        var (values, indices) = row.topk((int)c, dim: -1, largest: true, sorted: true);
        // With top-k, top-p applies to the renormalised top-k distribution (TopK warper runs first);
        // without it, candidate probabilities are relative to the full vocabulary.
        var probs = useTopK ? values.softmax(-1) : (values - row.logsumexp(0)).exp();
        if (o.TopP < 1f)
        {
            var cum = probs.cumsum(0);
            if (!useTopK && cum[-1].item<float>() < o.TopP && c < vocab)
                return NucleusByThreshold(row.softmax(-1), o.TopP);
            // Keep a token while the mass strictly before it is < top_p (transformers removes tokens whose ascending
            // cumulative probability is ≤ 1 - top_p); the first token is always kept.
            using var topP = o.TopP.ToScalar(); // held for the call (HeldScalars)
            var keep = (cum - probs).lt(topP);
            keep[0] = tensor(true);
            probs = probs.masked_fill(keep.logical_not(), HeldScalars.Zero);
        }
        return zeros(vocab, dtype: ScalarType.Float32, device: row.device).index_put_(probs, indices);
    }

    /// <summary>
    /// The nucleus of a flat distribution without sorting: bisect for the probability t of the last kept token (the
    /// largest t whose strictly-greater mass is still ≥ top_p), on a managed copy so each of the ~40 passes is a tight
    /// loop rather than a round of tensor ops. Tokens within the final bracket (2⁻⁴⁰ of the largest probability) of
    /// that boundary are kept too, the only departure from a sort.
    /// </summary>
    static Tensor NucleusByThreshold(Tensor probs, float topP)
    {
        var p = probs.cpu().data<float>().ToArray();
        double lo = 0, hi = 0;
        foreach (var v in p) hi = Math.Max(hi, v);    // mass above lo ≥ top_p; mass above hi is 0 < top_p
        for (int i = 0; i < 40 && hi - lo > 1e-15; i++)
        {
            double mid = (lo + hi) / 2, mass = 0;
            foreach (var v in p) if (v > mid) mass += v;
            if (mass >= topP) lo = mid; else hi = mid;
        }
        for (int i = 0; i < p.Length; i++) if (p[i] <= lo) p[i] = 0;
        return tensor(p, device: probs.device);
    }
}
