using R1Sharp.Generation;
using R1Sharp.Kernels;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Generation;

/// <summary>Greedy decoding's in-place argmax (<see cref="ArgMax"/>) against libtorch's argmax: the first maximal
/// index, ties included, any row length, and NaN rows left to libtorch.</summary>
public class ArgMaxTests
{
    [Theory]
    [InlineData(1, 129280)]
    [InlineData(3, 129281)]
    [InlineData(4, 13)]
    [InlineData(2, 5)]
    public void MatchesLibtorchIncludingTies(int rows, int vocab)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        // Coarse values: many rows hold their maximum more than once, where the first index must win.
        var logits = (randn([rows, vocab], generator: g) * 4).round();
        var oneTie = zeros([1, vocab]); oneTie[0, vocab - 1] = 1; oneTie[0, vocab / 2] = 1;
        var negative = full([1, vocab], float.NegativeInfinity);
        foreach (var l in new[] { logits, oneTie, negative, logits.narrow(1, 0, vocab).contiguous() - 100 })
        {
            Assert.True(ArgMax.Applies(l) || !System.Runtime.Intrinsics.X86.Avx.IsSupported);
            var want = l.argmax(-1).data<long>().ToArray().Select(x => (int)x).ToArray();
            Assert.Equal(want, Sampler.Sample(l, new SamplingOptions { Temperature = 0 }, new Generator?[l.size(0)]));
        }
        Assert.Equal(vocab / 2, Sampler.Sample(oneTie, new SamplingOptions { Temperature = 0 }, [null])[0]);
    }

    [Fact]
    public void ARowWithANaNIsLeftToLibtorch()
    {
        using var scope = NewDisposeScope();
        var l = randn([2, 100], generator: new Generator(4));
        l[1, 37] = float.NaN;
        Assert.False(ArgMax.Row(l, 1, out _));
        Assert.True(ArgMax.Row(l, 0, out int first));
        Assert.Equal((int)l[0].argmax().item<long>(), first);
        var want = l.argmax(-1).data<long>().ToArray().Select(x => (int)x).ToArray();
        Assert.Equal(want, Sampler.Sample(l, new SamplingOptions { Temperature = 0 }, [null, null]));
    }
}
