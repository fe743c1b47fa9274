using R1Sharp.Models;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Models;

/// <summary>
/// Tensors over 2 GiB: a float32 lm_head of a 7B Qwen model is 2.18 GB, past what a Span (int length) can cover, so
/// every path that takes a tensor's address or bytes (the decode kernel, checkpoint reading and writing) must not go
/// through one. A model whose tied embedding is 2.18 GB (vocabulary 8.5M × hidden 64) is initialised, run through
/// the decode path, saved, loaded back and run again.
/// </summary>
[Collection(LargeMemory.Name)]
public class LargeTensorTests
{
    [Fact]
    public void AModelWithA2Point2GBTensorRunsSavesAndLoadsBack()
    {
        const int vocab = 8_500_000; // × 64 × 4 bytes = 2,176,000,000 > 2^31
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", vocab) with { NumHiddenLayers = 1 };
        using var dir = new TempDir();
        long[] ids = [vocab - 1, 5, 4_000_000, vocab - 2]; // rows past 2 GiB into the embedding
        float[] logits, tail;
        using (var model = CausalLM.Create(cfg))
        {
            Assert.True(model.Embeddings.weight!.numel() * 4 > (long)int.MaxValue + 1);
            model.InitializeRandom(3);
            using var _ = no_grad();
            using var input = tensor(ids, [1, ids.Length]);
            using var positions = AttentionMask.Positions([0], 0, ids.Length, CPU);
            using var mask = AttentionMask.Build([0], 0, ids.Length, ids.Length, CPU);
            // One row: the decode kernel reads the whole 2.18 GB weight through its address.
            using var last = model.ForwardLast(input, positions, mask);
            using var hidden = model.Hidden(input, positions, mask, null);
            using var reference = nn.functional.linear(hidden.narrow(1, ids.Length - 1, 1), model.OutputWeight.Dense!).squeeze(1);
            Assert.True(allclose(last, reference, rtol: 1e-4, atol: 1e-5), $"largest difference {(last - reference).abs().max().item<float>()}");
            // The last rows of the vocabulary (bytes past 2^31) are real values, not zeros or garbage.
            Assert.True(last[0, vocab - 1].item<float>() != 0 && float.IsFinite(last[0, vocab - 1].item<float>()));
            logits = last.data<float>().ToArray();
            tail = model.Embeddings.weight!.narrow(0, vocab - 3, 3).contiguous().data<float>().ToArray();
            ModelFolder.Save(model, dir.Path);
        }
        using var loaded = ModelFolder.Load(dir.Path);
        Assert.Equal(tail, loaded.Embeddings.weight!.narrow(0, vocab - 3, 3).contiguous().data<float>().ToArray());
        using (no_grad())
        {
            using var again = loaded.ForwardLast(tensor(ids, [1, ids.Length]), AttentionMask.Positions([0], 0, ids.Length, CPU),
                AttentionMask.Build([0], 0, ids.Length, ids.Length, CPU));
            Assert.Equal(logits, again.data<float>().ToArray());
        }
    }
}

/// <summary>Tests that hold several GB at once run one at a time, not beside each other.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LargeMemory
{
    public const string Name = "large memory";
}
