using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Lora;

/// <summary>Chunked log-probs and activation checkpointing change memory, not results: the same log-probs, entropies
/// and gradients as the plain forward and backward (to float rounding), for full fine-tuning and for adapters.</summary>
public class MemoryWorkTests
{
    static SequenceBatch Batch(CausalLM m)
    {
        int[][] prompts = [[5, 6, 7, 8, 9], [12, 13], [14, 15, 16]];
        int[][] completions = [[20, 21, 22], [22, 23, 24, 25, 26], [30]];
        return new SequenceBatch(prompts, completions, m.Device);
    }

    /// <summary>The loss Σ logp·w (a weight per token, so every row's gradient differs) and every gradient it gives.</summary>
    static (float[] LogProbs, float[] Entropy, Dictionary<string, float[]> Grads) Run(CausalLM m, IEnumerable<(string Name, Tensor Param)> trained, TrainingMemory memory)
    {
        using var batch = Batch(m);
        using var scope = NewDisposeScope();
        var scores = batch.Score(m, memory);
        var weights = arange(scores.LogProbs.numel(), dtype: ScalarType.Float32).view(scores.LogProbs.shape).sin();
        var loss = (scores.LogProbs * weights * batch.CompletionMask).sum();
        scores.Pass.Backward(loss);
        var grads = new Dictionary<string, float[]>();
        foreach (var (name, p) in trained)
        {
            grads[name] = p.grad is { } g ? g.data<float>().ToArray() : [];
            p.grad = null;
        }
        return (scores.LogProbs.detach().data<float>().ToArray(), scores.Entropy.data<float>().ToArray(), grads);
    }

    static void AssertClose(float[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = Math.Max(1e-6, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * scale, $"{what}[{i}]: {expected[i]} vs {actual[i]}");
    }

    static void AssertSame((float[] LogProbs, float[] Entropy, Dictionary<string, float[]> Grads) a, (float[] LogProbs, float[] Entropy, Dictionary<string, float[]> Grads) b)
    {
        AssertClose(a.LogProbs, b.LogProbs, 1e-5, "logp");
        AssertClose(a.Entropy, b.Entropy, 1e-5, "entropy");
        Assert.Equal(a.Grads.Keys, b.Grads.Keys);
        int nonzero = 0;
        foreach (var (name, g) in a.Grads)
        {
            Assert.True(g.Length > 0, $"{name} got no gradient");
            if (g.Any(x => x != 0)) nonzero++;
            AssertClose(g, b.Grads[name], 1e-4, name);
        }
        Assert.True(nonzero > a.Grads.Count / 2, "most gradients are zero: the comparison proves little");
    }

    [Theory]
    [InlineData(false, true)]   // full fine-tuning, tied embeddings: the output head is the embedding, trained twice over
    [InlineData(false, false)]  // full fine-tuning, separate lm_head
    [InlineData(true, false)]   // adapters, frozen base
    public void ChunkedLogProbs_AndCheckpointing_GiveThePlainLogProbsAndGradients(bool lora, bool tied)
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok, tied: tied);
        IEnumerable<(string, Tensor)> trained = m.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        if (lora)
        {
            var l = LoraModel.Of(m);
            l.AddFresh(new LoraConfig { R = 4, TargetModules = [LoraConfig.AllLinear] }, seed: 2);
            LoraTestModels.RandomizeB(l);
            l.FreezeBase();
            trained = l.NamedParameters().ToList();
        }
        var plain = Run(m, trained, TrainingMemory.Default);
        AssertSame(plain, Run(m, trained, new TrainingMemory(LogprobChunkSize: 4)));          // chunks of 4 rows of 3 × 7
        AssertSame(plain, Run(m, trained, new TrainingMemory(GradientCheckpointing: true)));
        AssertSame(plain, Run(m, trained, new TrainingMemory(true, 5)));
    }

    /// <summary>With LoRA dropout on, the checkpointed backward recomputes each layer with the random state its forward
    /// had, so the masks and the gradients are the plain backward's, and the generator ends where the plain run's does.</summary>
    [Fact]
    public void Checkpointing_WithDropout_ReplaysTheForwardsMasks()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok);
        var l = LoraModel.Of(m);
        l.AddFresh(new LoraConfig { R = 4, TargetModules = [LoraConfig.AllLinear], LoraDropout = 0.3 }, seed: 2);
        LoraTestModels.RandomizeB(l);
        l.FreezeBase();
        var trained = l.NamedParameters().ToList();
        l.Routing.Training = true;
        try
        {
            var dropout = l.Routing.DropoutGenerator;
            (float[] LogProbs, float[] Entropy, Dictionary<string, float[]> Grads, float Next, float NextDropout) Seeded(TrainingMemory memory, long globalSeed = 123)
            {
                manual_seed(globalSeed);
                dropout.manual_seed(123);
                var r = Run(m, trained, memory);
                return (r.LogProbs, r.Entropy, r.Grads, rand(1).item<float>(), rand(1, generator: dropout).item<float>());
            }
            var plain = Seeded(TrainingMemory.Default);
            var other = Seeded(TrainingMemory.Default);
            var checkpointed = Seeded(new TrainingMemory(GradientCheckpointing: true));
            AssertSame((plain.LogProbs, plain.Entropy, plain.Grads), (checkpointed.LogProbs, checkpointed.Entropy, checkpointed.Grads));
            Assert.Equal(plain.Next, checkpointed.Next);
            Assert.Equal(plain.NextDropout, checkpointed.NextDropout);
            // The masks come from the adapters' generator alone: whatever else draws from libtorch's global generator
            // (another job in the process) changes nothing.
            var otherGlobal = Seeded(TrainingMemory.Default, globalSeed: 999);
            AssertSame((plain.LogProbs, plain.Entropy, plain.Grads), (otherGlobal.LogProbs, otherGlobal.Entropy, otherGlobal.Grads));
            // Dropout is on: another seed gives other gradients (so the equality above is about the masks).
            dropout.manual_seed(124);
            var reseeded = Run(m, trained, TrainingMemory.Default);
            Assert.Contains(reseeded.Grads, kv => !kv.Value.SequenceEqual(plain.Grads[kv.Key]));
            Assert.Equal(plain.Next, other.Next);
        }
        finally { l.Routing.Training = false; }
    }

    [Fact]
    public void ReferenceLogProbs_WithAdaptersOff_EqualTheBaseModels()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = LoraTestModels.Model(tok);
        using var batch = Batch(m);
        float[] Score() { using var _ = no_grad(); return batch.TokenLogProbs(m).LogProbs.data<float>().ToArray(); }
        var baseLogp = Score();
        var lora = LoraModel.Of(m);
        lora.AddFresh(new LoraConfig { R = 4, TargetModules = [LoraConfig.AllLinear] }, seed: 2);
        LoraTestModels.RandomizeB(lora);
        Assert.True(LoraTestModels.MaxAbsDiff(baseLogp, Score()) > 1e-4);
        // What GRPO scores π_ref with: the policy with its adapters switched off.
        var rollout = new Rollout(Enumerable.Range(0, 2).Select(i => new RolloutCompletion("p", [5, 6, 7], "a", [20 + i, 21], "t", false, "v0", "local")).ToList(), 2);
        using var mbs = new MicroBatches(rollout, 2, false, m.Config, m.Device);
        mbs.ScoreFixedPolicies(m, null, needOld: false, adaptersOff: lora);
        using var direct = new SequenceBatch([[5, 6, 7], [5, 6, 7]], [[20, 21], [21, 21]], m.Device);
        float[] expected;
        using (lora.Disabled()) { using var _ = no_grad(); expected = direct.TokenLogProbs(m).LogProbs.data<float>().ToArray(); }
        using var baseModel = LoraTestModels.Model(tok);
        using (no_grad()) Assert.Equal(direct.TokenLogProbs(baseModel).LogProbs.data<float>().ToArray(), expected);
        var mb = mbs.Items[0];
        var order = mb.Rows;
        var got = mb.RefLogProbs!.data<float>().ToArray();
        int width = (int)mb.RefLogProbs.size(1);
        for (int r = 0; r < order.Length; r++)
            Assert.Equal(expected.Skip(order[r] * width).Take(width), got.Skip(r * width).Take(width));
        Assert.Equal(0, lora.Routing.Active); // switched back on after
    }
}
