using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

public class GrpoTrainerTests
{
    [Fact]
    public void Reward_Rises_OnAnEasyTask()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.MaxSteps = 30; cfg.LearningRate = 2e-2; cfg.LossType = "dr_grpo"; cfg.ScaleRewards = "none"; cfg.Beta = 0.0;
        using var trainer = new GrpoTrainer(cfg, model, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format);
        var rewards = new List<double>();
        while (!trainer.Done) rewards.Add(trainer.Step()["reward"]);
        double first = rewards.Take(5).Average(), last = rewards.TakeLast(5).Average();
        Assert.True(last > first + 0.2, $"reward went from {first:F3} to {last:F3}");
        Assert.Equal(30, MetricsLog.Read(Path.Combine(dir.Path, "metrics.jsonl")).Count);
    }

    /// <summary>rollouts.jsonl carries each completion's advantage as the loss used it: the group-relative formula
    /// (DeepSeekMath eq. 3) recomputed here by hand from the logged rewards.</summary>
    [Fact]
    public void RolloutLogRecordsTheAdvantageOfEachCompletion()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.MaxSteps = 1;
        using var trainer = new GrpoTrainer(cfg, model, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format);
        trainer.Step();
        var rows = RolloutLog.Read(Path.Combine(dir.Path, "rollouts.jsonl"));
        Assert.Equal(cfg.GenerationBatchSize, rows.Count);
        foreach (var group in rows.GroupBy(r => (int)r["group"]!))
        {
            var rewards = group.Select(r => (double)r["reward"]!).ToArray();
            double mean = rewards.Average(), std = Math.Sqrt(rewards.Sum(x => (x - mean) * (x - mean)) / (rewards.Length - 1));
            foreach (var r in group)
                Assert.Equal(((double)r["reward"]! - mean) / (std + 1e-4), (double)r["advantage"]!, 4);
        }
    }

    [Theory]
    [InlineData("grpo", "group", "token", 0.04, 1)]
    [InlineData("dapo", "group", "token", 0.0, 2)]
    [InlineData("dr_grpo", "none", "token", 0.0, 1)]
    [InlineData("grpo", "batch", "sequence", 0.0, 2)]
    public void EveryVariant_RunsAndMovesTheWeights(string loss, string scale, string level, double beta, int iterations)
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var before = TinyGrpo.Weights(model);
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.LossType = loss; cfg.ScaleRewards = scale; cfg.ImportanceSamplingLevel = level; cfg.Beta = beta;
        cfg.NumIterations = iterations; cfg.MaxSteps = 1; cfg.EpsilonHigh = 0.28;
        using var trainer = new GrpoTrainer(cfg, model, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format);
        var m = trainer.Step();
        Assert.Equal(0, m["skipped_updates"]);
        Assert.True(double.IsFinite(m["loss"]) && double.IsFinite(m["entropy"]));
        Assert.NotEqual(before["model.embed_tokens.weight"], TinyGrpo.Weights(model)["model.embed_tokens.weight"]);
        Assert.Equal(iterations, trainer.State.OptimizerStep);
    }

    [Fact]
    public void NanLoss_SkipsTheUpdate_AndTheRunGoesOn()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var before = TinyGrpo.Weights(model);
        var log = new List<string>();
        using var trainer = new GrpoTrainer(TinyGrpo.Config(dir.Path), model, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format)
        {
            OnLog = log.Add, LossTransform = l => l * double.NaN,
        };
        var m = trainer.Step();
        Assert.Equal(1, m["skipped_updates"]);
        Assert.Equal(before, TinyGrpo.Weights(model));
        Assert.Contains(log, l => l.Contains("non-finite loss, update skipped"));
        trainer.LossTransform = null;
        Assert.Equal(0, trainer.Step()["skipped_updates"]);
        Assert.NotEqual(before["model.norm.weight"], TinyGrpo.Weights(model)["model.norm.weight"]);
    }

    [Fact]
    public void DynamicSampling_DropsZeroVarianceGroups_AndRefills()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.DynamicSampling = true; cfg.MaxDynamicSamplingRounds = 6;
        // Prompts with an even number always score 1 (no variance); odd ones score by completion length (varies).
        var reward = new RewardSet([new RewardFunction("r", (p, c, _) => int.Parse(p.Split('+')[0]) % 2 == 0 ? 1 : c.Length % 3)]);
        using var trainer = new GrpoTrainer(cfg, model, tok, reward, TinyGrpo.Data(), R1ZeroTemplate.Format);
        var m = trainer.Step();
        Assert.Equal(0, m["frac_reward_zero_std"]);
        Assert.True(m["sampling_rounds"] >= 2, $"rounds {m["sampling_rounds"]}");
        Assert.Equal(0, m["skipped_updates"]);
    }

    [Fact]
    public void AHangingReward_ScoresZero_IsLogged_AndTheRunFinishes()
    {
        using var dir = new TempDir();
        using var release = new ManualResetEventSlim();
        var tok = TinyGrpo.Tokenizer();
        using var model = TinyGrpo.Model(tok);
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.MaxSteps = 2;
        var rewards = new RewardSet([TinyGrpo.Sevens().Functions[0], new RewardFunction("hangs", (_, _, _) => { release.Wait(); return 1; })],
            TimeSpan.FromMilliseconds(100));
        var log = new List<string>();
        using var trainer = new GrpoTrainer(cfg, model, tok, rewards, TinyGrpo.Data(), R1ZeroTemplate.Format) { OnLog = log.Add };
        trainer.Train(); // never returned before: the trainer waited for the reward
        release.Set();
        Assert.Equal(2, trainer.State.Step);
        Assert.Contains(log, l => l.StartsWith("reward hangs did not return within 0.1s: scored 0"));
        Assert.Contains(log, l => l.StartsWith("reward hangs disabled for the rest of the run"));
    }

    [Fact]
    public void ResumeAfterAbort_EndsBitIdentical()
    {
        var tok = TinyGrpo.Tokenizer();
        Dictionary<string, float[]> Run(string outDir, bool interrupt)
        {
            var cfg = TinyGrpo.Config(outDir);
            cfg.MaxSteps = 5; cfg.SaveSteps = 2; cfg.NumIterations = 2; cfg.LrSchedulerType = "cosine"; cfg.WarmupSteps = 2;
            if (interrupt)
            {
                // The "killed" process: trains past the step-2 checkpoint, then dies before step 4's.
                using var m1 = TinyGrpo.Model(tok);
                using var t1 = new GrpoTrainer(cfg, m1, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
                t1.Train(shouldStop: step => step == 3);
                Assert.Equal(3, t1.State.Step);
            }
            // A fresh process: new model (different init, to prove the checkpoint overwrites it), resumes, finishes.
            using var m2 = TinyGrpo.Model(tok, seed: interrupt ? 99 : 1);
            using var t2 = new GrpoTrainer(cfg, m2, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
            Assert.Equal(interrupt, t2.Resume());
            if (interrupt) Assert.Equal(2, t2.State.Step);
            t2.Train();
            Assert.Equal(5, MetricsLog.Read(Path.Combine(outDir, "metrics.jsonl")).Count);
            return TinyGrpo.Weights(m2);
        }
        using var a = new TempDir();
        using var b = new TempDir();
        var straight = Run(a.Path, interrupt: false);
        var resumed = Run(b.Path, interrupt: true);
        foreach (var (name, w) in straight) Assert.True(w.SequenceEqual(resumed[name]), $"{name} differs after resume");
        Assert.True(File.Exists(Path.Combine(b.Path, "checkpoint-5", "model", "model.safetensors")));
    }

    [Fact]
    public void Resume_TakesTheNewestCompleteCheckpoint_AndIgnoresWhatAKillLeftHalfDone()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        var cfg = TinyGrpo.Config(dir.Path);
        cfg.SaveSteps = 1;
        using (var m1 = TinyGrpo.Model(tok))
        using (var t1 = new GrpoTrainer(cfg, m1, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder))
            t1.Train(shouldStop: step => step == 3);
        // What a kill can leave: checkpoint-3 moved aside to be replaced (the re-save of a resumed run's last step),
        // a half-written checkpoint-4 under its temporary name, "latest" naming the folder that is gone, and a torn
        // metrics row.
        Directory.Move(Path.Combine(dir.Path, "checkpoint-3"), Path.Combine(dir.Path, ".checkpoint-3.old-0badf00d"));
        string tmp = Path.Combine(dir.Path, ".checkpoint-4.tmp-0badf00d");
        Directory.CreateDirectory(Path.Combine(tmp, "model"));
        File.WriteAllBytes(Path.Combine(tmp, "model", "model.safetensors"), [1, 2, 3]);
        File.AppendAllText(Path.Combine(dir.Path, "metrics.jsonl"), "{\"step\": 4, \"rew");

        using var m2 = TinyGrpo.Model(tok, seed: 99);
        using var t2 = new GrpoTrainer(cfg, m2, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
        Assert.True(t2.Resume());
        Assert.Equal(2, t2.State.Step);
        Assert.Equal([1.0, 2.0], MetricsLog.Read(Path.Combine(dir.Path, "metrics.jsonl")).Select(r => r["step"]));
        t2.Train();
        Assert.Equal(cfg.MaxSteps, MetricsLog.Read(Path.Combine(dir.Path, "metrics.jsonl")).Count);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".checkpoint-*"));
        Assert.Equal($"checkpoint-{cfg.MaxSteps}", File.ReadAllText(Path.Combine(dir.Path, "latest")));
    }
}
