using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training.Sft;
using R1Sharp.Tests.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Sft;

public class SftTrainerTests
{
    static TokenizedSample Sample(Random rng, int length, int vocab)
    {
        var ids = Enumerable.Range(0, length).Select(_ => rng.Next(vocab)).ToArray();
        // Context first, then trained tokens, with one untrained token inside (as a history turn would be).
        var trained = Enumerable.Range(0, length).Select(i => i >= length / 3 && i != length - 2).ToArray();
        return new TokenizedSample(ids, trained);
    }

    static (double Loss, long Correct, int Tokens) LossOf(CausalLM m, params IReadOnlyList<TokenizedSample>[] rows)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var batch = new SftBatch(rows, CPU);
        var (sum, correct) = batch.Loss(m);
        return (sum.item<float>(), correct, batch.LossTokens);
    }

    [Fact]
    public void APackedRow_GivesTheLossOfItsSamplesRunAlone()
    {
        var tok = TinyGrpo.Tokenizer();
        using var m = TinyGrpo.Model(tok, seed: 3);
        var rng = new Random(7);
        var s = new[] { Sample(rng, 9, tok.VocabSize), Sample(rng, 14, tok.VocabSize), Sample(rng, 6, tok.VocabSize) };

        var alone = s.Select(x => LossOf(m, [x])).ToList();
        var packed = LossOf(m, [s[0], s[1], s[2]]);
        var padded = LossOf(m, [s[0]], [s[1]], [s[2]]);      // one sample per row, right-padded
        double aloneSum = alone.Sum(a => a.Loss);
        Assert.Equal(alone.Sum(a => a.Tokens), packed.Tokens);
        Assert.Equal(aloneSum, packed.Loss, 4);
        Assert.Equal(aloneSum, padded.Loss, 4);
        Assert.Equal(alone.Sum(a => a.Correct), packed.Correct);

        // Without the sample boundaries (one long sample) the same tokens give another loss: the mask is what matters.
        var joined = new TokenizedSample(s.SelectMany(x => x.Ids).ToArray(), s.SelectMany(x => x.Trained.Select((t, i) => t && i > 0)).ToArray());
        Assert.True(Math.Abs(LossOf(m, [joined]).Loss - aloneSum) > 1e-2);

        using var batch = new SftBatch([[s[0], s[1], s[2]]], CPU);
        Assert.Equal(Enumerable.Range(0, 9).Concat(Enumerable.Range(0, 14)).Concat(Enumerable.Range(0, 6)).Select(i => (long)i),
            batch.Positions.data<long>().ToArray());
    }

    [Fact]
    public void BestFitDecreasing_FillsRowsAndKeepsEverySample()
    {
        var lengths = new[] { 5, 9, 3, 7, 2, 8, 1 };
        var rows = Packing.BestFitDecreasing(lengths, 10);
        Assert.Equal(Enumerable.Range(0, lengths.Length), rows.SelectMany(r => r).Order());
        Assert.All(rows, r => Assert.True(r.Sum(i => lengths[i]) <= 10));
        // 35 tokens in rows of 10: four rows, which best fit reaches ([9,1], [8,2], [7,3], [5]).
        Assert.Equal(4, rows.Count);
        Assert.Equal([[1, 6], [5, 4], [3, 2], [0]], rows.Select(r => r.ToArray()).ToArray());
    }

    const string Trace = "<think>\n12+30: 2+0=2, 1+3=4\n</think>\n<answer>42</answer>";

    [Fact]
    public void ATinyRun_LossFalls_AndGreedyDecodingReproducesTheMemorisedTrace()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        var template = ChatTemplate.FromTokenizerConfig(Path.Combine(TinyGrpo.TokenizerFolder, "tokenizer_config.json"));
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 16, IntermediateSize = 128,
        };
        using var model = CausalLM.Create(cfg);
        model.InitializeRandom(11);
        var sft = new SftTokenizer(tok, template);
        var rows = new[] { ("12+30", Trace), ("7+5", "<think>\n7+5: 12\n</think>\n<answer>12</answer>") }
            .Select(p => new SftExample("t") { Messages = [new("user", p.Item1), new("assistant", p.Item2)] }).ToList();
        var samples = rows.Select(sft.Tokenize).ToList();
        var trainer = new SftTrainer(new SftConfig
        {
            OutputDir = dir.Path, MaxSteps = 60, PerDeviceTrainBatchSize = 2, LearningRate = 1e-2, LrSchedulerType = "constant",
            SaveSteps = 0, Seed = 1, NumThreads = 1, Packing = true,
        }, model, samples);
        while (!trainer.Done) trainer.Step();
        var loss = trainer.Metrics.Rows.Select(r => r["loss"]).ToList();
        Assert.True(loss[^1] < loss[0] / 20, $"loss {loss[0]:F3} → {loss[^1]:F4}");
        Assert.True(trainer.Metrics.Rows[^1]["mean_token_accuracy"] > 0.99);

        var gen = new TextGenerator(model, tok, [tok.EosTokenId!.Value]);
        string prompt = template.Render([new ChatMessage("user", "12+30")], addGenerationPrompt: true);
        var output = gen.Generate([prompt], new SamplingOptions { Temperature = 0, MaxTokens = 80 })[0];
        Assert.Equal(Trace, output.Text);
        Assert.Equal("stop", output.FinishReason);
    }

    [Fact]
    public void ANonFiniteLoss_SkipsTheUpdate_AndTrainingGoesOn()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var rng = new Random(1);
        var samples = Enumerable.Range(0, 4).Select(_ => Sample(rng, 8, tok.VocabSize)).ToList();
        var trainer = new SftTrainer(new SftConfig { OutputDir = dir.Path, MaxSteps = 3, PerDeviceTrainBatchSize = 2, SaveSteps = 0, NumThreads = 1 },
            model, samples);
        var before = TinyGrpo.Weights(model);
        int calls = 0;
        trainer.LossTransform = l => ++calls == 1 ? l * float.NaN : l;
        var first = trainer.Step();
        Assert.Equal(1, first["skipped"]);
        Assert.Equal(before, TinyGrpo.Weights(model));
        var second = trainer.Step();
        Assert.Equal(0, second["skipped"]);
        Assert.True(double.IsFinite(second["loss"]));
        Assert.NotEqual(before, TinyGrpo.Weights(model));
        Assert.Equal(2, trainer.State.Step);
        Assert.Equal(1, trainer.State.OptimizerStep);
    }
}
