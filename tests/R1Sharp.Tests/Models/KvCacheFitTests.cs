using R1Sharp.Generation;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>The KV cache is written in full when created: one that cannot fit is refused up front in one line, not a
/// libtorch allocation failure (a 20-line native dump) or a machine swapping to a halt. A model's whole context times
/// a batch (r1 eval's default max tokens is what the context leaves) is easily more than a machine holds.</summary>
public class KvCacheFitTests
{
    [Theory]
    [InlineData("qwen2", "f32")]
    [InlineData("llama", "bf16")]
    [InlineData("qwen3", "f32")]
    public void CacheBytesIsWhatTheCacheAllocates(string arch, string dtype)
    {
        using var model = CausalLM.Create(ModelPresets.Create(arch, "tiny", 256), ModelFolder.ParseDType(dtype));
        using var cache = model.CreateCache(3, 40);
        Assert.Equal(cache.Bytes, model.CacheBytes(3, 40));
    }

    [Fact]
    public void ACacheThatCannotFitIsRefusedBeforeAllocating()
    {
        using var model = CausalLM.Create(ModelPresets.Create("qwen2", "tiny", 256) with { MaxPositionEmbeddings = int.MaxValue });
        model.CheckCacheFits(8, 4096); // 8 × 4096 positions of a tiny model: a few MB
        var e = Assert.Throws<R1SharpException>(() => model.CheckCacheFits(8, int.MaxValue));
        Assert.StartsWith("a KV cache for 8 sequences of up to 2,147,483,647 tokens would take", e.Message);
        Assert.Contains("--max-tokens", e.Message);
        // Generation asks before it allocates: the same request through the engine.
        var options = new SamplingOptions { Temperature = 0, MaxTokens = int.MaxValue - 10 };
        e = Assert.Throws<R1SharpException>(() => new GenerationEngine(model).Generate([[1, 2, 3]], options, [0]));
        Assert.StartsWith("a KV cache for 1 sequence of up to", e.Message);
    }
}
