using TorchSharp;
using R1Sharp.Generation;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>Chunked prefill (<see cref="DecodeEngine.PrefillChunkTokens"/>): prompts fed over several steps in time
/// chunks give the tokens and first-token logits of the prompts fed whole, for the GQA and the MLA caches, in batch
/// generation and with a long prompt joining rows that are already decoding.</summary>
public class ChunkedPrefillTests
{
    static readonly int[][] Prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [100, 200, 300, 400], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]];

    static CausalLM Tiny(string arch, ScalarType dtype = ScalarType.Float32)
    {
        CausalLM m;
        if (arch == "deepseek_v3")
        {
            m = CausalLM.Create(DeepseekV3Config.Preset("tiny", 512));
            m.InitializeRandom(seed: 3, std: 0.3);
        }
        else
        {
            m = CausalLM.Create(ModelPresets.Create(arch, "tiny", 512));
            m.InitializeRandom(seed: 7, std: 0.5); // large std: confident, tie-free argmax
        }
        if (dtype != ScalarType.Float32) m.to(dtype);
        return m;
    }

    [Theory]
    [InlineData("qwen2", ScalarType.Float32)]
    [InlineData("qwen2", ScalarType.BFloat16)]
    [InlineData("deepseek_v3", ScalarType.Float32)]
    public void GreedyChunkedEqualsWhole(string arch, ScalarType dtype)
    {
        using var m = Tiny(arch, dtype);
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 10 };
        var whole = new GenerationEngine(m).Generate(Prompts, opts, []);
        foreach (int budget in new[] { 3, 8 })
        {
            var chunked = new GenerationEngine(m) { PrefillChunkTokens = budget }.Generate(Prompts, opts, []);
            for (int i = 0; i < Prompts.Length; i++) Assert.Equal(whole[i].TokenIds, chunked[i].TokenIds);
        }
    }

    /// <summary>The default chunk follows the model's width: 256 positions from the 1.5B shape's 1536 up, more for
    /// narrower models (the same activation bytes a step), whatever engine builds it over a model.</summary>
    [Fact]
    public void DefaultChunkScalesWithTheModelsWidth()
    {
        Assert.Equal(256, DecodeEngine.PrefillChunkFor(1536));
        Assert.Equal(256, DecodeEngine.PrefillChunkFor(3584)); // never below the measured default
        Assert.Equal(3072, DecodeEngine.PrefillChunkFor(128));
        Assert.Equal(256, DecodeEngine.PrefillChunkFor(0));
        using var m = Tiny("qwen2");
        using var backend = new ModelBackend(m, slots: 2, capacity: 16, ownsModel: false);
        Assert.Equal(DecodeEngine.PrefillChunkFor(m.Config.HiddenSize), new DecodeEngine(backend).PrefillChunkTokens);
        Assert.Equal(5, new DecodeEngine(backend) { PrefillChunkTokens = 5 }.PrefillChunkTokens);
    }

    /// <summary>The first token's logits: one step for the whole prompts, the step of each prompt's last chunk when
    /// chunked (a chunk of 1 token with 4 rows and a budget of 3: row i's prompt ends at step Prompts[i].Length).</summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("deepseek_v3")]
    public void FirstTokenLogitsAgree(string arch)
    {
        using var m = Tiny(arch);
        using var _ = no_grad();
        var whole = StepLogits(m, int.MaxValue);
        var chunked = StepLogits(m, 3);
        Assert.Equal(Prompts.Max(p => p.Length), chunked.Count);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var a = whole[0][i];
            var b = chunked[Prompts[i].Length - 1][i];
            Assert.True(allclose(a, b, rtol: 1e-4, atol: 1e-4), $"row {i}: max difference {(a - b).abs().max().item<float>()}");
        }
    }

    static List<Tensor> StepLogits(CausalLM m, int budget)
    {
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 1 + Prompts.Max(p => p.Length) };
        using var inner = new ModelBackend(m, Prompts.Length, 64, ownsModel: false);
        var recorder = new RecordingBackend(inner);
        var engine = new DecodeEngine(recorder) { PrefillChunkTokens = budget };
        var eos = new HashSet<int>();
        engine.Submit(Prompts.Select((p, i) => new Sequence(p, opts, eos, index: i)));
        // Only the steps before any row finishes: every row is then in each step's logits, in slot order.
        for (int s = 0; s < (budget == int.MaxValue ? 1 : Prompts.Max(p => p.Length)); s++) engine.Step();
        return recorder.Logits;
    }

    /// <summary>A server-like stream: one sequence decodes alone, a prompt longer than the budget joins mid-decode and
    /// is prefilled over several steps while the first goes on decoding, a third joins later; each must match its
    /// generation alone with the prompt fed whole.</summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("deepseek_v3")]
    public void LongPromptJoiningMidDecodeMatches(string arch)
    {
        using var m = Tiny(arch);
        using var _ = no_grad();
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 12 };
        var eos = new HashSet<int>();
        var alone = new GenerationEngine(m);
        using var backend = new ModelBackend(m, 3, 64, ownsModel: false);
        var engine = new DecodeEngine(backend) { PrefillChunkTokens = 4 };
        var first = new Sequence(Prompts[1], opts, eos);
        var second = new Sequence(Prompts[3], opts, eos); // 11 tokens: 4 chunks of at most 2 with two rows busy
        var third = new Sequence(Prompts[0], opts, eos);
        engine.Submit(first);
        for (int i = 0; i < 3; i++) engine.Step();
        engine.Submit(second);
        for (int i = 0; i < 2; i++) engine.Step();
        Assert.True(second.Tokens.Count == 0, "the long prompt should still be prefilling");
        engine.Submit(third);
        int steps = 0;
        while (!engine.Idle) { engine.Step(); Assert.True(++steps < 200); }
        foreach (var (s, p) in new[] { (first, Prompts[1]), (second, Prompts[3]), (third, Prompts[0]) })
            Assert.Equal(alone.Generate([p], opts, [])[0].TokenIds, s.Tokens.ToArray());
    }

    sealed class RecordingBackend(IDecodeBackend inner) : IDecodeBackend
    {
        public List<Tensor> Logits { get; } = [];
        public int Slots => inner.Slots;
        public int Capacity => inner.Capacity;
        public int RowLength(int slot) => inner.RowLength(slot);
        public Tensor Step(IReadOnlyList<int[]?> feeds)
        {
            var l = inner.Step(feeds);
            Logits.Add(l.clone().DetachFromDisposeScope());
            return l;
        }
        public void Release(int slot) => inner.Release(slot);
        public IDisposable PrepareWeights(string modelPath) => inner.PrepareWeights(modelPath);
        public void SwapWeights(IDisposable prepared) => inner.SwapWeights(prepared);
        public void Dispose() => inner.Dispose();
    }
}
