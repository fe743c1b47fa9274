using R1Sharp.IO;
using R1Sharp.Tasks;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using R1Sharp.Training.Sft;

namespace R1Sharp.Tests.Training.Lora;

public class GrpoLoraTests
{
    static GrpoConfig Config(string dir)
    {
        var cfg = TinyGrpo.Config(dir);
        cfg.UsePeft = true; cfg.LoraR = 4; cfg.LoraAlpha = 8; cfg.LoraDropout = 0.1; cfg.LoraTargetModules = ["all-linear"];
        cfg.Beta = 0.04; cfg.LearningRate = 0.05;
        return cfg;
    }

    [Fact]
    public void Grpo_WithAdapters_TrainsOnlyTheAdapters_WithNoSecondCopy()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var m = TinyGrpo.Model(tok);
        var before = TinyGrpo.Weights(m);
        using var t = new GrpoTrainer(Config(dir.Path), m, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
        t.Train();
        // The base is bit-identical; every adapter's B moved away from zero.
        foreach (var (name, w) in TinyGrpo.Weights(m)) Assert.True(w.SequenceEqual(before[name]), $"{name} changed");
        Assert.All(t.Adapters!.NamedParameters().Where(p => p.Name.EndsWith("lora_B.weight")), p => Assert.True(p.Param.abs().max().item<float>() > 0, p.Name));
        // The checkpoint is a PEFT adapter, and the optimizer state covers the adapters only.
        string ckpt = Path.Combine(dir.Path, "checkpoint-4");
        Assert.True(File.Exists(Path.Combine(ckpt, "adapter", "adapter_model.safetensors")));
        Assert.False(Directory.Exists(Path.Combine(ckpt, "model")));
        using var opt = SafetensorsFile.Open(Path.Combine(ckpt, "optimizer.safetensors"));
        Assert.All(opt.Entries.Keys, k => Assert.Contains(".lora_", k));
        Assert.Equal(t.Adapters.NamedParameters().Count() * 2, opt.Entries.Count);
    }

    [Fact]
    public void ResumeWithAdapters_EndsBitIdentical()
    {
        var tok = TinyGrpo.Tokenizer();
        byte[] Run(string outDir, bool interrupt)
        {
            var cfg = Config(outDir);
            cfg.MaxSteps = 5; cfg.SaveSteps = 2; cfg.NumIterations = 2;
            if (interrupt)
            {
                using var m1 = TinyGrpo.Model(tok);
                using var t1 = new GrpoTrainer(cfg, m1, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
                t1.Train(shouldStop: step => step == 3);
            }
            using var m2 = TinyGrpo.Model(tok);
            using var t2 = new GrpoTrainer(cfg, m2, tok, TinyGrpo.Sevens(), TinyGrpo.Data(), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
            Assert.Equal(interrupt, t2.Resume());
            t2.Train();
            return File.ReadAllBytes(Path.Combine(outDir, "checkpoint-5", "adapter", "adapter_model.safetensors"));
        }
        using var a = new TempDir();
        using var b = new TempDir();
        Assert.True(Run(a.Path, false).SequenceEqual(Run(b.Path, true)), "adapter differs after resume");
    }
}
