using R1Sharp.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Generation;

public class SamplerTests
{
    /// <summary>transformers' TopKLogitsWarper then TopPLogitsWarper, written the plain way (full ascending sort).</summary>
    static bool[] ReferenceKeep(float[] logits, int topK, float topP)
    {
        int v = logits.Length;
        var keep = Enumerable.Repeat(true, v).ToArray();
        var order = Enumerable.Range(0, v).OrderByDescending(i => logits[i]).ToArray();
        if (topK > 0) for (int r = topK; r < v; r++) keep[order[r]] = false;
        var kept = order.Where(i => keep[i]).ToArray();
        double max = kept.Max(i => (double)logits[i]);
        double z = kept.Sum(i => Math.Exp(logits[i] - max));
        // ascending cumulative probability; remove where cum <= 1 - top_p, always keeping the most likely token
        double cum = 0;
        foreach (int i in kept.Reverse())
        {
            cum += Math.Exp(logits[i] - max) / z;
            if (cum <= 1 - topP && i != kept[0]) keep[i] = false;
        }
        return keep;
    }

    [Theory]
    [InlineData(3.0, 0, 0.9f)]     // peaked: the nucleus is inside the candidates
    [InlineData(0.05, 0, 0.95f)]   // flat: falls back to the threshold search
    [InlineData(1.0, 40, 0.8f)]    // top-k then top-p over the renormalised top-k
    [InlineData(1.0, 100, 1.0f)]   // top-k alone
    public void KeptSetEqualsTransformersWarpers(double scale, int topK, float topP)
    {
        var gen = new Generator(5);
        var logits = (randn(30000, generator: gen) * scale).to(ScalarType.Float32);
        var probs = Sampler.Distribution(logits, new SamplingOptions { TopK = topK, TopP = topP });
        var kept = probs.gt(0).data<bool>().ToArray();
        var expected = ReferenceKeep(logits.data<float>().ToArray(), topK, topP);
        Assert.Equal(expected.Count(k => k), kept.Count(k => k));
        Assert.Equal(expected, kept);
    }

    [Fact]
    public void GreedyPicksTheArgmaxOfEachRow()
    {
        var logits = tensor(new float[] { 0, 5, 1, 9, 2, 3 }, [2, 3]);
        Assert.Equal(new[] { 1, 0 }, Sampler.Sample(logits, new SamplingOptions { Temperature = 0 }, [null, null]));
    }

    [Fact]
    public void SamplesFollowTheDistribution()
    {
        var logits = tensor(new float[] { MathF.Log(0.7f), MathF.Log(0.2f), MathF.Log(0.1f) }).unsqueeze(0);
        var gen = new Generator(9);
        var counts = new int[3];
        for (int i = 0; i < 4000; i++) counts[Sampler.Sample(logits, new SamplingOptions(), [gen])[0]]++;
        Assert.InRange(counts[0] / 4000.0, 0.67, 0.73);
        Assert.InRange(counts[2] / 4000.0, 0.085, 0.115);
        // top-p 0.8 keeps {0.7, 0.2}: the 0.1 token is never drawn
        var capped = new int[3];
        for (int i = 0; i < 1000; i++) capped[Sampler.Sample(logits, new SamplingOptions { TopP = 0.8f }, [gen])[0]]++;
        Assert.Equal(0, capped[2]);
    }
}
