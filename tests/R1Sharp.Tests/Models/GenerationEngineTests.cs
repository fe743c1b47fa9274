using TorchSharp;
using R1Sharp.Generation;
using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

public class GenerationEngineTests
{
    static CausalLM TinyModel(string arch, ScalarType dtype = ScalarType.Float32, int vocab = 512)
    {
        var cfg = ModelPresets.Create(arch, "tiny", vocab);
        var m = CausalLM.Create(cfg);
        m.InitializeRandom(seed: 7, std: 0.5); // large std: confident, tie-free argmax
        if (dtype != ScalarType.Float32) m.to(dtype);
        return m;
    }

    static readonly int[][] Prompts = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [100, 200, 300, 400]];

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    public void GreedyWithCacheEqualsWithoutCache(string arch)
    {
        using var m = TinyModel(arch);
        var engine = new GenerationEngine(m);
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 12 };
        var cached = engine.Generate(Prompts, opts, []);
        var uncached = engine.Generate(Prompts, opts, [], useCache: false);
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(uncached[i].TokenIds, cached[i].TokenIds);
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    public void GreedyAloneEqualsInsideBatch(string arch)
    {
        using var m = TinyModel(arch);
        var engine = new GenerationEngine(m);
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 12 };
        var batch = engine.Generate(Prompts, opts, []);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var alone = engine.Generate([Prompts[i]], opts, []);
            Assert.Equal(alone[0].TokenIds, batch[i].TokenIds);
        }
    }

    [Fact]
    public void CachedLogitsMatchFullForward()
    {
        using var m = TinyModel("qwen2");
        using var _ = no_grad();
        int[] pad = [0];
        var ids = tensor(new long[] { 5, 6, 7, 8, 9, 10 }, [1, 6]);
        var full = m.Forward(ids, AttentionMask.Positions(pad, 0, 6, m.Device), AttentionMask.Build(pad, 0, 6, 6, m.Device));
        using var cache = m.CreateCache(1, 16);
        m.Forward(ids.narrow(1, 0, 4), AttentionMask.Positions(pad, 0, 4, m.Device), AttentionMask.Build(pad, 0, 4, 4, m.Device), cache);
        cache.Advance(4); // the model writes the new positions; whoever drives it advances the cache
        var step5 = m.Forward(ids.narrow(1, 4, 1), AttentionMask.Positions(pad, 4, 1, m.Device), AttentionMask.Build(pad, 4, 1, 5, m.Device), cache);
        cache.Advance(1);
        var step6 = m.Forward(ids.narrow(1, 5, 1), AttentionMask.Positions(pad, 5, 1, m.Device), AttentionMask.Build(pad, 5, 1, 6, m.Device), cache);
        Assert.True(allclose(full[0, 4], step5[0, 0], rtol: 1e-4, atol: 1e-4));
        Assert.True(allclose(full[0, 5], step6[0, 0], rtol: 1e-4, atol: 1e-4));
    }

    [Fact]
    public void SeededSamplingRepeatsAndDoesNotDependOnBatch()
    {
        using var m = TinyModel("qwen2");
        var engine = new GenerationEngine(m);
        var opts = new SamplingOptions { Temperature = 1.0f, TopP = 0.9f, TopK = 50, MaxTokens = 10, Seed = 42 };
        var a = engine.Generate(Prompts, opts, []);
        var b = engine.Generate(Prompts, opts, []);
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(a[i].TokenIds, b[i].TokenIds);
        var first = engine.Generate([Prompts[0]], opts, []);
        Assert.Equal(a[0].TokenIds, first[0].TokenIds);
        var other = engine.Generate(Prompts, opts with { Seed = 43 }, []);
        Assert.NotEqual(a.SelectMany(c => c.TokenIds), other.SelectMany(c => c.TokenIds));
    }

    [Fact]
    public void StopsOnEosAndMaxTokens()
    {
        using var m = TinyModel("qwen2");
        var engine = new GenerationEngine(m);
        var greedy = new SamplingOptions { Temperature = 0, MaxTokens = 8 };
        var free = engine.Generate([Prompts[0]], greedy, [])[0];
        Assert.Equal(8, free.TokenIds.Length);
        Assert.Equal(FinishReason.Length, free.FinishReason);
        int eos = free.TokenIds[3];
        int firstEos = Array.IndexOf(free.TokenIds, eos);
        var stopped = engine.Generate([Prompts[0]], greedy, [eos])[0];
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(free.TokenIds[..(firstEos + 1)], stopped.TokenIds);
    }

    [Fact]
    public void Bf16GreedyMatchesItsOwnUncachedRun()
    {
        using var m = TinyModel("llama", ScalarType.BFloat16);
        var engine = new GenerationEngine(m);
        var opts = new SamplingOptions { Temperature = 0, MaxTokens = 8 };
        var cached = engine.Generate(Prompts, opts, []);
        var uncached = engine.Generate(Prompts, opts, [], useCache: false);
        Assert.Equal(ScalarType.BFloat16, m.DType);
        Assert.Equal(uncached[0].TokenIds, cached[0].TokenIds);
    }

    /// <summary>bf16 inference takes its matmuls in float32 (attention; projections past 16 rows), rounded where
    /// libtorch's bf16 ops round; training runs libtorch's bf16 ops as they are. Both give the same logits to bf16
    /// precision over a 300-token prefill, so neither path can drift from the other.</summary>
    [Fact]
    public void Bf16InferenceLogitsMatchTheAutogradPath()
    {
        using var m = TinyModel("qwen2", ScalarType.BFloat16);
        int t = 300;
        using var ids = tensor(Enumerable.Range(0, t).Select(i => (long)((i * 37) % 500)).ToArray(), [1, t]);
        using var pos = AttentionMask.Positions([0], 0, t, m.Device);
        using var mask = AttentionMask.Build([0], 0, t, t, m.Device);
        Tensor inference;
        using (no_grad()) inference = m.Forward(ids, pos, mask);
        using var training = m.Forward(ids, pos, mask).detach();
        Assert.True(m.parameters().First().requires_grad);
        var a = inference.data<float>().ToArray();
        var b = training.data<float>().ToArray();
        double maxAbs = b.Max(Math.Abs), worst = a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst <= 0.03 * maxAbs, $"largest logit difference {worst} against logits up to {maxAbs}");
        inference.Dispose();
    }
}

public class KvCacheRowsTests
{
    /// <summary>Two rows at different lengths in one cache (continuous batching) decode exactly as each alone.</summary>
    [Fact]
    public void RowsOfDifferentLengthsDecodeAsIfAlone()
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 300);
        using var m = CausalLM.Create(cfg);
        m.InitializeRandom(5, std: 0.3);
        using var _ = no_grad();
        long[] a = [5, 6, 7, 8, 9], bRow = [20, 21];
        Tensor Alone(long[] ids)
        {
            int[] pad = [0];
            return m.Forward(tensor(ids, [1, ids.Length]), AttentionMask.Positions(pad, 0, ids.Length, m.Device), AttentionMask.Build(pad, 0, ids.Length, ids.Length, m.Device))[0, -1];
        }
        using var cache = m.CreateCache(2, 16);
        // Prefill row 0 with 4 tokens and row 1 with 1 token in two separate batch-wide passes: row lengths then differ.
        int[] zero = [0, 0];
        m.Forward(tensor(new long[] { 5, 6, 7, 8, 20, 20, 20, 20 }, [2, 4]), AttentionMask.Positions(zero, 0, 4, m.Device), AttentionMask.Build(zero, 0, 4, 4, m.Device), cache);
        cache.Advance(4);
        cache.SetRowLength(1, 1); // row 1 keeps only its first token (20)
        int[] starts = cache.RowLengths();
        Assert.Equal(new[] { 4, 1 }, starts);
        var step = m.Forward(tensor(new long[] { 9, 21 }, [2, 1]), AttentionMask.Positions(zero, starts, 1, m.Device),
            AttentionMask.Build(zero, starts, 1, cache.Length + 1, m.Device), cache);
        cache.Advance(1);
        Assert.True(allclose(Alone(a), step[0, 0], rtol: 1e-4, atol: 1e-4));
        Assert.True(allclose(Alone(bRow), step[1, 0], rtol: 1e-4, atol: 1e-4));
        Assert.Equal(new[] { 5, 2 }, cache.RowLengths());
    }
}

public class LinearTests
{
    /// <summary>The bfloat16 decode kernel computes what libtorch's float32 linear computes on the same (bf16) values.</summary>
    [Theory]
    [InlineData(1, 40, 72, true)]
    [InlineData(3, 130, 896, false)]
    [InlineData(16, 17, 33, true)]
    public void Bf16KernelMatchesLibtorch(int rows, int outF, int inF, bool bias)
    {
        var lin = new R1Sharp.Models.Linear(inF, outF, bias);
        using (no_grad())
        {
            lin.weight!.copy_(randn(outF, inF));
            lin.bias?.copy_(randn(outF));
        }
        lin.to(ScalarType.BFloat16);
        var x = randn(rows, 1, inF).to(ScalarType.BFloat16);
        using var _ = no_grad();
        var fast = lin.forward(x);
        var reference = nn.functional.linear(x.to(ScalarType.Float32), lin.weight.to(ScalarType.Float32), lin.bias?.to(ScalarType.Float32));
        Assert.Equal(new long[] { rows, 1, outF }, fast.shape);
        Assert.Equal(ScalarType.BFloat16, fast.dtype);
        // one bfloat16 rounding of the float32 result: relative error ≤ 2⁻⁸
        Assert.True(allclose(fast.to(ScalarType.Float32), reference, rtol: 1.0 / 128, atol: 1e-2), "bf16 kernel differs from float32 reference");
    }

    [Theory]
    [InlineData(1, 40, 72)]
    [InlineData(4, 130, 896)]
    [InlineData(7, 33, 1001)]
    [InlineData(16, 64, 40)]
    public void F32KernelMatchesLibtorch(int rows, int outF, int inF)
    {
        var lin = new R1Sharp.Models.Linear(inF, outF, true);
        using (no_grad()) { lin.weight!.copy_(randn(outF, inF)); lin.bias!.copy_(randn(outF)); }
        var x = randn(rows, inF);
        using var _ = no_grad();
        var fast = lin.forward(x);
        var reference = nn.functional.linear(x, lin.weight, lin.bias);
        Assert.True(allclose(fast, reference, rtol: 1e-5, atol: 1e-4), "f32 kernel differs from libtorch");
    }
}

public class BatchCompactionTests
{
    /// <summary>Rows that stop early leave the batch; the others go on exactly as they would alone.</summary>
    [Fact]
    public void RowsFinishingEarlyDoNotChangeTheOthers()
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 400);
        using var m = CausalLM.Create(cfg);
        m.InitializeRandom(8, std: 0.5);
        var engine = new GenerationEngine(m);
        int[][] prompts = [[1, 2, 3], [4, 5, 6, 7, 8], [9], [10, 11]];
        var opts = new SamplingOptions { Temperature = 0.8f, MaxTokens = 12, Seed = 5 };
        var free = engine.Generate(prompts, opts, []);
        // Stop row 1 after 2 tokens and row 3 after 5 via the callback; rows 0 and 2 must be unchanged.
        var counts = new int[4];
        var stopped = engine.Generate(prompts, opts, [], (row, _) => ++counts[row] >= (row == 1 ? 2 : row == 3 ? 5 : 99));
        Assert.Equal(free[0].TokenIds, stopped[0].TokenIds);
        Assert.Equal(free[2].TokenIds, stopped[2].TokenIds);
        Assert.Equal(free[1].TokenIds[..2], stopped[1].TokenIds);
        Assert.Equal(free[3].TokenIds[..5], stopped[3].TokenIds);
        Assert.Equal(FinishReason.Stop, stopped[1].FinishReason);
        Assert.Equal(FinishReason.Length, stopped[0].FinishReason);
        var uncached = engine.Generate(prompts, opts, [], (row, _) => false, useCache: false);
        Assert.Equal(free[2].TokenIds, uncached[2].TokenIds);
    }
}
