using R1Sharp.IO;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tests.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>
/// Linear and Embedding holding either kind of weight: the dense path is libtorch's (the embedding's gradient bit for
/// bit nn.Embedding's), a quantized one reads the blocks (the same values as dequantising them), and a model built
/// under <see cref="DeferredWeights"/> allocates no matrix.
/// </summary>
public sealed class QuantizedModulesTests
{
    [Fact]
    public void DenseEmbeddingMatchesNnEmbeddingForwardAndGradient()
    {
        const int vocab = 300, dim = 48;
        var gen = new Generator(3);
        using var reference = nn.Embedding(vocab, dim);
        using var ours = new Embedding(vocab, dim);
        using (no_grad()) ours.weight!.copy_(reference.weight!);
        // 40 × 50 ids with many repeats: embedding's backward sums a repeated id's rows in parallel above 1000 ids.
        using var ids = randint(0, 40, [40, 50], dtype: ScalarType.Int64, generator: gen);
        using var upstream = randn([40, 50, dim], generator: gen);
        using var a = reference.forward(ids);
        using var b = ours.forward(ids);
        Assert.Equal(a.shape, b.shape);
        Assert.True(a.equal(b).all().item<bool>());
        (a * upstream).sum().backward();
        (b * upstream).sum().backward();
        var ga = reference.weight!.grad!.data<float>().ToArray();
        var gb = ours.weight!.grad!.data<float>().ToArray();
        for (int i = 0; i < ga.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(ga[i]) == BitConverter.SingleToInt32Bits(gb[i]), $"gradient {i}: nn.Embedding {ga[i]}, ours {gb[i]}");
    }

    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q8_0)]
    public void QuantizedEmbeddingDequantisesTheSelectedRows(GgmlType type)
    {
        var m = QuantTestData.RandomMatrix(type, 50, 512, seed: 4);
        var table = m.ToFloat();
        using var e = new Embedding(50, 512, ScalarType.BFloat16);
        e.Attach(m);
        Assert.Empty(e.parameters());
        Assert.Equal(ScalarType.BFloat16, e.DType);
        long[] ids = [7, 0, 49, 7, 3, 12];
        using var y = e.forward(tensor(ids, [2, 3]));
        Assert.Equal([2L, 3, 512], y.shape);
        var rows = ids.SelectMany(i => table.Skip((int)i * 512).Take(512)).ToArray();
        using var expected = tensor(rows, [2, 3, 512]).to(ScalarType.BFloat16);
        Assert.True(y.equal(expected).all().item<bool>());
        Assert.Throws<IndexOutOfRangeException>(() => e.forward(tensor(new long[] { 50 })));
    }

    [Fact]
    public void QuantizedLinearIsTheKernelsProductAndHoldsNoParameter()
    {
        var m = QuantTestData.RandomMatrix(GgmlType.Q4_K, 24, 256, seed: 8);
        using var lin = new Linear(256, 24, hasBias: true);
        using (no_grad()) lin.bias!.copy_(arange(24, dtype: ScalarType.Float32));
        lin.Attach(m);
        Assert.Equal(["bias"], lin.named_parameters().Select(p => p.name));
        using var x = randn(3, 5, 256, generator: new Generator(1));
        using var y = lin.forward(x);
        using var expected = QuantLinear.Apply(x, m, lin.bias);
        Assert.True(y.equal(expected).all().item<bool>());
        Assert.Throws<R1SharpException>(() => lin.Attach(QuantTestData.RandomMatrix(GgmlType.Q4_K, 24, 512, seed: 9)));
    }

    [Fact]
    public void DeferredModelHasOnlyNormsAndBiasesUntilMatricesAreAttached()
    {
        var cfg = ModelPresets.Create("qwen2", "tiny", 512);
        CausalLM model;
        using (DeferredWeights.Begin()) model = ModelRegistry.Get(cfg.ModelType).Build(cfg, ScalarType.Float32);
        using (model)
        {
            Assert.False(DeferredWeights.Active);
            var names = model.named_parameters().Select(p => p.name).ToList();
            Assert.NotEmpty(names);
            Assert.All(names, n => Assert.True(n.EndsWith("norm.weight") || n.EndsWith(".bias"), n));
            Assert.Throws<InvalidOperationException>(() => model.OutputWeight);
            // A model built on another thread meanwhile is whole.
            using (DeferredWeights.Begin())
            {
                CausalLM? other = null;
                var thread = new Thread(() => other = ModelRegistry.Get(cfg.ModelType).Build(cfg, ScalarType.Float32));
                thread.Start();
                thread.Join();
                using (other) Assert.Contains(other!.named_parameters(), p => p.name == "model.embed_tokens.weight");
            }
        }
    }
}
