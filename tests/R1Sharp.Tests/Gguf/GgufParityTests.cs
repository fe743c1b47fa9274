using R1Sharp.Generation;
using R1Sharp.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Gguf;

/// <summary>
/// llama.cpp as the independent reference: our exported GGUF, run by llama.cpp, must give the logits and greedy
/// continuations our CausalLM gives on the same weights.
/// </summary>
[Collection(GgufModelsCollection.Name)]
public sealed class GgufParityTests(GgufTestModels models, ITestOutputHelper output)
{
    /// <summary>A few hundred tokens of real English text with code and markup (the design guide).</summary>
    int[] Text(int count) => models.Tokenizer.Encode(File.ReadAllText(SharedData.Path("GUIDE.md"))).Take(count).ToArray();

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    [InlineData("qwen3")]
    public void NextTokenLogitsMatchLlamaCpp(string arch)
    {
        var tokens = Text(300);
        using var llama = new LlamaCpp(models.Gguf(arch));
        var reference = llama.AllLogits(tokens);

        using var model = ModelFolder.Load(models.Folder(arch));
        float[] ours;
        using (no_grad())
        {
            int[] pad = [0];
            var ids = tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Length]);
            using var logits = model.Forward(ids, AttentionMask.Positions(pad, 0, tokens.Length, CPU), AttentionMask.Build(pad, 0, tokens.Length, tokens.Length, CPU));
            ours = logits.data<float>().ToArray();
        }
        int vocab = model.Config.VocabSize;
        Assert.Equal(vocab, llama.VocabSize);
        // Per position: the largest difference relative to that position's largest logit.
        double worst = 0;
        int worstAt = 0, argmaxAgree = 0;
        for (int i = 0; i < tokens.Length; i++)
        {
            var o = ours.AsSpan(i * vocab, vocab);
            var r = reference[i];
            double maxDiff = 0, scale = 0;
            for (int v = 0; v < vocab; v++) { maxDiff = Math.Max(maxDiff, Math.Abs(o[v] - r[v])); scale = Math.Max(scale, Math.Abs(r[v])); }
            if (maxDiff / scale > worst) { worst = maxDiff / scale; worstAt = i; }
            if (LlamaCpp.ArgMax(o) == LlamaCpp.ArgMax(r)) argmaxAgree++;
        }
        output.WriteLine($"{arch}: {tokens.Length} positions, max |ours − llama.cpp| / max |llama.cpp| = {worst:E2} (position {worstAt}); argmax agrees at {argmaxAgree}/{tokens.Length}");
        Assert.True(worst < 1e-4, $"{arch}: relative logit difference {worst:E2} at position {worstAt}");
        Assert.Equal(tokens.Length, argmaxAgree);
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    [InlineData("qwen3")]
    public void GreedyContinuationsMatchLlamaCpp(string arch)
    {
        var prompt = Text(24);
        using var llama = new LlamaCpp(models.Gguf(arch));
        var reference = llama.Greedy(prompt, 24);
        using var model = ModelFolder.Load(models.Folder(arch));
        var ours = new GenerationEngine(model).Generate([prompt], new SamplingOptions { Temperature = 0, MaxTokens = 24 }, []);
        Assert.Equal(reference, ours[0].TokenIds);
    }
}
