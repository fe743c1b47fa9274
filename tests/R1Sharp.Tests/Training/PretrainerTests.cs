using R1Sharp.Tasks;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

/// <summary>The demo's pre-training as a trainer: its loss falls, and a run stopped after a checkpoint and resumed into
/// other weights ends bit-identical to an uninterrupted one (what lets a pipeline's zero/pretrain stage resume).</summary>
public class PretrainerTests
{
    static IReadOnlyList<(int[], int[])> Batch(int step)
    {
        var tok = TinyGrpo.Tokenizer();
        var task = new AdditionTask(2);
        return task.Sample(8, 100 + step, heldOut: false).Select(p => (tok.Encode(R1ZeroTemplate.Format(p.Prompt)).ToArray(),
            tok.Encode(task.Completion(p, step % 2 == 0)).Append(tok.EosTokenId!.Value).ToArray())).ToList();
    }

    static readonly PretrainOptions Options = new() { Steps = 8, BatchSize = 8, LearningRate = 1e-2, WarmupSteps = 2, SaveSteps = 3 };

    [Fact]
    public void ResumedPretraining_IsBitIdentical_AndTheLossFalls()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var straight = TinyGrpo.Model(tok, seed: 1);
        var a = new Pretrainer(straight, Options, Batch, dir.File("straight"));
        TrainingLoop.Run(a);
        Assert.True(a.Metrics.Rows[^1]["loss"] < a.Metrics.Rows[0]["loss"], "pre-training loss did not fall");

        using (var first = TinyGrpo.Model(tok, seed: 1))
            TrainingLoop.Run(new Pretrainer(first, Options, Batch, dir.File("resumed")), shouldStop: step => step == 3);
        using var other = TinyGrpo.Model(tok, seed: 4);
        var b = new Pretrainer(other, Options, Batch, dir.File("resumed"));
        Assert.True(b.Resume());
        Assert.Equal(3, b.State.Step);
        TrainingLoop.Run(b);
        var wa = TinyGrpo.Weights(straight);
        var wb = TinyGrpo.Weights(other);
        foreach (var (name, w) in wa) Assert.True(w.SequenceEqual(wb[name]), $"{name} differs after resume");
        // (rows restored from a checkpoint carry metrics.jsonl's 6 decimals)
        Assert.Equal(a.Metrics.Rows.Select(r => Math.Round(r["loss"], 6)), b.Metrics.Rows.Select(r => Math.Round(r["loss"], 6)));
    }
}
