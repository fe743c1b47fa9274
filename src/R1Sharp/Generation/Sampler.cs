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
        int b = (int)logits.shape[0];
        var result = new int[b];
        if (o.Greedy)
        {
            var arg = logits.argmax(-1).cpu();
            for (int i = 0; i < b; i++) result[i] = (int)arg[i].item<long>();
            return result;
        }
        var scaled = logits / o.Temperature;
        for (int i = 0; i < b; i++) result[i] = SampleRow(scaled[i], o, generators[i]);
        return result;
    }

    static int SampleRow(Tensor row, SamplingOptions o, Generator? gen)
    {
        long vocab = row.shape[0];
        bool useTopK = o.TopK > 0 && o.TopK < vocab;
        if (!useTopK && o.TopP >= 1f) return Draw(row.softmax(-1), null, gen);

        long c = useTopK ? o.TopK : Math.Min(vocab, Candidates);
        var (values, indices) = row.topk((int)c, dim: -1, largest: true, sorted: true);
        // With top-k, top-p applies to the renormalised top-k distribution (TopK warper runs first);
        // without it, candidate probabilities are relative to the full vocabulary.
        var probs = useTopK ? values.softmax(-1) : (values - row.logsumexp(0)).exp();
        if (o.TopP < 1f)
        {
            var cum = probs.cumsum(0);
            if (!useTopK && cum[-1].item<float>() < o.TopP && c < vocab)
            {
                (values, indices) = row.sort(descending: true);
                probs = values.softmax(-1);
                cum = probs.cumsum(0);
            }
            // Keep a token while the mass strictly before it is < top_p (transformers removes tokens whose ascending
            // cumulative probability is ≤ 1 - top_p); the first token is always kept.
            var before = cum - probs;
            var keep = before.lt(o.TopP);
            keep[0] = tensor(true);
            probs = probs.masked_fill(keep.logical_not(), 0);
        }
        return Draw(probs, indices, gen);
    }

    static int Draw(Tensor probs, Tensor? indices, Generator? gen)
    {
        var pick = multinomial(probs.to(ScalarType.Float32), 1, replacement: false, generator: gen);
        var idx = indices is null ? pick : indices.index_select(0, pick);
        return (int)idx.cpu().item<long>();
    }
}
