using System.Text.Json.Nodes;
using R1Sharp.IO;
using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Tasks;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using R1Sharp.Training.Distill;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training.Lora;

/// <summary>On-policy distillation with use_peft: only the adapters train (the base bit-identical, every B moved), the
/// result is a PEFT adapter with PEFT's key names beside the merged model, a run interrupted and resumed ends
/// bit-identical, and bad adapter keys in a distillation recipe are one clear error.</summary>
public class DistillLoraTests
{
    static DistillConfig Config(string outputDir, int steps = 4) => new()
    {
        OutputDir = outputDir, MaxNewTokens = 6, Temperature = 1.0, PerDeviceTrainBatchSize = 4, GradientAccumulationSteps = 2,
        LearningRate = 5e-2, MaxSteps = steps, SaveSteps = 2, LrSchedulerType = "constant", Seed = 5, NumThreads = 1,
        UsePeft = true, LoraR = 4, LoraAlpha = 8, LoraDropout = 0.1, LoraTargetModules = ["all-linear"], GradientCheckpointing = true,
    };

    /// <summary>A teacher the student can imitate: its own weights with the final norm scaled up (sharper logits).</summary>
    static CausalLM Sharpened(CausalLM student)
    {
        var teacher = student.FrozenCopy();
        using (no_grad()) teacher.StateDict()["model.norm.weight"].mul_(10);
        return teacher;
    }

    [Fact]
    public void Distill_WithAdapters_TrainsOnlyTheAdapters()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var student = TinyGrpo.Model(tok, seed: 1);
        using var teacher = Sharpened(student);
        var before = TinyGrpo.Weights(student);
        var trainer = new OnPolicyDistillTrainer(Config(dir.Path), student, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
        TrainingLoop.Run(trainer);
        foreach (var (name, w) in TinyGrpo.Weights(student)) Assert.True(w.SequenceEqual(before[name]), $"{name} changed");
        var bs = trainer.Adapters!.NamedParameters().Where(p => p.Name.EndsWith("lora_B.weight")).ToList();
        Assert.Equal(7, bs.Count); // all-linear on one decoder layer: q, k, v, o, gate, up, down
        Assert.All(bs, p => Assert.True(p.Param.abs().max().item<float>() > 0, $"{p.Name} is still zero"));
        Assert.All(trainer.Metrics.Rows, r => Assert.Equal(0, r["skipped"]));
        // The checkpoint is the adapter (no copy of the frozen base), and AdamW has moments for the adapters only.
        string ckpt = Path.Combine(dir.Path, "checkpoint-4");
        Assert.True(File.Exists(Path.Combine(ckpt, "adapter", LoraModel.WeightsFile)));
        Assert.False(Directory.Exists(Path.Combine(ckpt, "model")));
        using var opt = SafetensorsFile.Open(Path.Combine(ckpt, "optimizer.safetensors"));
        Assert.All(opt.Entries.Keys, k => Assert.Contains(".lora_", k));
        Assert.Equal(trainer.Adapters.NamedParameters().Count() * 2, opt.Entries.Count);
    }

    [Fact]
    public void DistillRun_WithAdapters_WritesAPeftAdapter_AndTheMergedStudent()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        string studentDir = dir.File("student"), teacherDir = dir.File("teacher");
        using (var s = TinyGrpo.Model(tok, seed: 1))
        {
            ModelFolder.Save(s, studentDir, TinyGrpo.TokenizerFolder);
            using var t = Sharpened(s);
            ModelFolder.Save(t, teacherDir, TinyGrpo.TokenizerFolder);
        }
        File.WriteAllLines(dir.File("prompts.jsonl"), TinyGrpo.Data(16).Select(p => new JsonObject { ["problem"] = p.Prompt, ["answer"] = p.Answer }.ToJsonString()));
        var cfg = Config(dir.File("out"), steps: 2);
        cfg.LoraTargetModules = ["q_proj", "v_proj"];
        cfg.ModelNameOrPath = studentDir; cfg.TeacherModelNameOrPath = teacherDir; cfg.DatasetPath = dir.File("prompts.jsonl");
        cfg.PromptTemplate = "r1_zero";
        var result = OnPolicyDistillRun.Run(cfg, "distill.yaml", resume: false);
        Assert.Equal(dir.File("out/model"), result.ModelDir);

        // PEFT's layout, written out by hand from its documented format: base_model.model.<module>.lora_{A,B}.weight.
        string adapter = dir.File("out/adapter");
        using (var f = SafetensorsFile.Open(Path.Combine(adapter, LoraModel.WeightsFile)))
            Assert.Equal(new[]
            {
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
            }, f.Entries.Keys.Order(StringComparer.Ordinal));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")))!.AsObject();
        Assert.Equal("LORA", (string?)config["peft_type"]);
        Assert.Equal(4, (int)config["r"]!);
        Assert.Equal(8.0, (double)config["lora_alpha"]!);
        Assert.Equal(new[] { "q_proj", "v_proj" }, config["target_modules"]!.AsArray().Select(x => (string)x!));
        Assert.Equal(studentDir, (string?)config["base_model_name_or_path"]);

        // The base folder + the adapter, unmerged, gives the merged model/ folder's logits, and they differ from the base's.
        var b = LoraTestModels.Batch(vocab: tok.VocabSize);
        float[] unmerged, merged, plain;
        using (var m = ModelFolder.Load(studentDir)) plain = LoraTestModels.Logits(m, b);
        using (var m = ModelFolder.Load(studentDir)) { LoraModel.Of(m).Load(adapter); unmerged = LoraTestModels.Logits(m, b); }
        using (var m = ModelFolder.Load(result.ModelDir)) merged = LoraTestModels.Logits(m, b);
        Assert.True(LoraTestModels.MaxAbsDiff(plain, unmerged) > 1e-5, "distillation left the adapter at zero");
        Assert.True(LoraTestModels.MaxAbsDiff(unmerged, merged) < 1e-4, $"merged differs by {LoraTestModels.MaxAbsDiff(unmerged, merged)}");
    }

    [Fact]
    public void ResumeWithAdapters_EndsBitIdentical()
    {
        var tok = TinyGrpo.Tokenizer();
        using var teacher = Sharpened(TinyGrpo.Model(tok, seed: 1));
        (byte[] Adapter, byte[] Optimizer, List<double> Loss) Run(string outDir, bool interrupt)
        {
            var cfg = Config(outDir, steps: 5);
            if (interrupt)
            {
                using var m1 = TinyGrpo.Model(tok, seed: 1);
                TrainingLoop.Run(new OnPolicyDistillTrainer(cfg, m1, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder),
                    shouldStop: step => step == 3); // stops after step 3; resumes from the checkpoint of step 2
            }
            using var m2 = TinyGrpo.Model(tok, seed: 1);
            var t2 = new OnPolicyDistillTrainer(cfg, m2, teacher, tok, TinyGrpo.Data(16), R1ZeroTemplate.Format, TinyGrpo.TokenizerFolder);
            Assert.Equal(interrupt, t2.Resume());
            if (interrupt) Assert.Equal(2, t2.State.Step);
            TrainingLoop.Run(t2);
            string ckpt = Path.Combine(outDir, "checkpoint-5");
            return (File.ReadAllBytes(Path.Combine(ckpt, "adapter", LoraModel.WeightsFile)), File.ReadAllBytes(Path.Combine(ckpt, "optimizer.safetensors")),
                MetricsLog.Read(Path.Combine(outDir, "metrics.jsonl")).Select(r => r["loss"]).ToList()); // as written: restored rows are read back
        }
        using var a = new TempDir();
        using var b = new TempDir();
        var straight = Run(a.Path, false);
        var resumed = Run(b.Path, true);
        Assert.True(straight.Adapter.SequenceEqual(resumed.Adapter), "adapter differs after resume");
        Assert.True(straight.Optimizer.SequenceEqual(resumed.Optimizer), "AdamW moments differ after resume");
        Assert.Equal(straight.Loss, resumed.Loss);
    }

    [Theory]
    [InlineData("use_peft: true\nlora_r: 0\n", "distill.yaml: lora_r must be a positive integer, got 0")]
    [InlineData("use_peft: true\nlora_dropout: 1.5\n", "distill.yaml: lora_dropout must be in [0, 1), got 1.5")]
    [InlineData("load_in_4bit: true\n", "distill.yaml: load_in_4bit / load_in_8bit freeze a quantized base, which trains only with use_peft: true")]
    [InlineData("use_peft: true\nlogprob_chunk_size: 64\n", "distill.yaml: logprob_chunk_size (64) does not apply to distillation")]
    public void BadAdapterKeys_InADistillRecipe_AreOneClearError(string yaml, string message)
    {
        var e = Assert.Throws<R1SharpException>(() => RecipeLoader.Parse<DistillConfig>(yaml, "distill.yaml"));
        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void ATargetModuleTheStudentLacks_IsOneClearError()
    {
        using var dir = new TempDir();
        var tok = TinyGrpo.Tokenizer();
        using var student = TinyGrpo.Model(tok, seed: 1);
        using var teacher = student.FrozenCopy();
        var cfg = Config(dir.Path);
        cfg.LoraTargetModules = ["q_proj", "qkv_proj"];
        var e = Assert.Throws<R1SharpException>(() => new OnPolicyDistillTrainer(cfg, student, teacher, tok, TinyGrpo.Data(4), R1ZeroTemplate.Format, source: "distill.yaml"));
        Assert.StartsWith("distill.yaml: target module \"qkv_proj\" is not a linear layer of this qwen2 model", e.Message);
    }
}
