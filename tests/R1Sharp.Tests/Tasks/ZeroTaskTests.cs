using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Tests.Training;
using R1Sharp.Text;

namespace R1Sharp.Tests.Tasks;

public class ZeroTaskTests
{
    [Fact]
    public void Steps_AreTheColumnAdditions_AndTheCompletionIsWellFormedAndCorrect()
    {
        var task = new AdditionTask(3);
        var p = new Problem("457+68", "525", 457, 68);
        Assert.Equal("7+8+0=15 5+6+1=12 4+0+1=05", task.Steps(p));
        foreach (bool steps in new[] { true, false })
        {
            string c = task.Completion(p, steps);
            Assert.True(FormatReward.IsWellFormed(c), c);
            Assert.Equal(1, AccuracyReward.Create().Score(p.Prompt, c, p.Answer));
        }
    }

    [Fact]
    public void AnAnswerWithoutSteps_IsAnEstimate_RightOnlyWhenTheSumEndsInZero()
    {
        var task = new AdditionTask(2);
        var p = new Problem("57+68", "125", 57, 68);
        Assert.Equal(130, AdditionTask.Estimate(p));                                   // halves round up
        Assert.Equal(" <think></think> <answer>130</answer>", task.Completion(p, showSteps: false, estimate: true));
        Assert.Equal(" <think>7+8+0=15 5+6+1=12</think> <answer>125</answer>", task.Completion(p, showSteps: true, estimate: true));
        Assert.Equal(0, AccuracyReward.Create().Score(p.Prompt, task.Completion(p, false, estimate: true), p.Answer));
        var q = new Problem("41+29", "70", 41, 29);
        Assert.Equal(1, AccuracyReward.Create().Score(q.Prompt, task.Completion(q, false, estimate: true), q.Answer));
        // Over the task's problems, an estimate is right about one time in ten.
        var all = task.Sample(2000, 3, heldOut: false);
        Assert.InRange(all.Count(x => AdditionTask.Estimate(x) == x.A + x.B) / 2000.0, 0.08, 0.12);
    }

    [Fact]
    public void HeldOutSplit_IsDisjointFromTraining()
    {
        var task = new AdditionTask(3);
        var held = task.Sample(200, 1, heldOut: true);
        var train = task.Sample(5000, 2, heldOut: false);
        Assert.Equal(200, held.Select(p => p.Prompt).Distinct().Count());
        Assert.Empty(held.Select(p => p.Prompt).Intersect(train.Select(p => p.Prompt)));
        Assert.All(held, p => Assert.Equal(p.A + p.B, long.Parse(p.Answer)));
    }

    [Fact]
    public void Tokenizer_RoundTrips_WithTheTemplateAsFewTokens()
    {
        var tok = TinyGrpo.Tokenizer();
        string prompt = R1ZeroTemplate.Format("123+456");
        var ids = tok.Encode(prompt);
        Assert.Equal(prompt, tok.Decode(ids));
        // preamble, " User:", " ", 7 characters, ".", " Assistant:"
        Assert.Equal(12, ids.Count);
        string completion = " <think>3+6+0=09</think> <answer>579</answer>";
        var cids = tok.Encode(completion);
        Assert.Equal(completion, tok.Decode(cids));
        Assert.Equal(tok.TokenToId("<think>"), cids[1]);
        Assert.Equal("<|endoftext|>", tok.IdToToken(tok.EosTokenId!.Value));
    }

    [Fact]
    public void ModelFolder_OfTheDemo_LoadsAsALocalModel_WithTheR1ZeroChatTemplate()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using (var m = TinyGrpo.Model(tok)) ModelFolder.Save(m, dir.Path, TinyGrpo.TokenizerFolder);
        using var lm = LocalModel.Load(dir.Path);
        var (prompt, opensThink) = lm.RenderChat([new ChatMessage("user", "12+34")]);
        Assert.Equal(R1ZeroTemplate.Format("12+34"), prompt);
        Assert.False(opensThink);
        var r = lm.Generator.Generate([prompt], new SamplingOptions { MaxTokens = 4, Seed = 1 });
        Assert.True(r[0].TokenIds.Length is > 0 and <= 4);
    }
}
