using R1Sharp.Models;
using R1Sharp.Models.Lora;
using R1Sharp.Training;
using Xunit.Abstractions;
using static R1Sharp.Tests.Cli.TrainKillResumeTests;

namespace R1Sharp.Tests.Cli;

/// <summary>
/// `r1 distill --mode on-policy` with use_peft: killed with SIGKILL a few times (mid-step, inside a checkpoint write,
/// at a random moment) and resumed until it finishes, it ends with the adapter and AdamW's moments bit-identical to an
/// uninterrupted run; bad adapter keys, in its recipe or in a pipeline's distill stage, are one line on stderr.
/// </summary>
public class DistillLoraCliTests(ITestOutputHelper output)
{
    const int MaxSteps = 6;
    static readonly string[] Moments = ["mid-step", "checkpoint", "anytime"];

    [Fact]
    public void WithAdapters_SigkillThenResume_EndsBitIdentical()
    {
        using var dir = new TempDir();
        PipelineKillResumeTests.Write(dir); // tiny/ (the student, and its own teacher) and prompts.jsonl
        string teacher = dir.File("teacher");
        using (var m = ModelFolder.Load(dir.File("tiny")))
        {
            using (TorchSharp.torch.no_grad()) m.StateDict()["model.norm.weight"].mul_(10); // a sharper teacher: the loss is not zero
            ModelFolder.Save(m, teacher, dir.File("tiny"));
        }
        string[] Args(string outDir) => ["distill", "--mode", "on-policy", "--teacher", teacher, "--student", dir.File("tiny"),
            "--prompts", dir.File("prompts.jsonl"), "--config", Recipe(dir, outDir), "--out", outDir];

        string straightDir = dir.File("straight"), killedDir = dir.File("killed");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var straight = CliRunner.Run(Args(straightDir));
        var straightTime = clock.Elapsed;
        Assert.True(straight.ExitCode == 0, straight.Stderr);
        output.WriteLine($"uninterrupted run: {straightTime.TotalSeconds:F1} s");

        var rng = new Random(20250206);
        int kills = 0;
        CliRunner.Result? finished = null;
        while (finished is null)
        {
            var before = new Attempt(Hidden(killedDir), ReadShared(Metrics(killedDir)), NewestCheckpoint(killedDir));
            using var run = CliRunner.Start(Args(killedDir));
            string? moment = kills < Moments.Length ? KillAt(run, killedDir, Moments[kills], rng, before, straightTime) : null;
            if (moment is null) { finished = run.WaitForExit(TimeSpan.FromMinutes(5)); Assert.NotNull(finished); break; }
            kills++;
            output.WriteLine($"kill {kills}: {moment}; {Rows(killedDir)} metric rows");
        }
        Assert.True(finished.ExitCode == 0, finished.Stderr);
        Assert.True(kills >= 2, $"only {kills} kills landed before the run finished");

        string Adapter(string d) => Path.Combine(d, "adapter", LoraModel.WeightsFile);
        using (var m = ModelFolder.Load(dir.File("tiny")))
        {
            var lora = LoraModel.Of(m);
            lora.Load(Path.Combine(straightDir, "adapter"));
            Assert.True(lora.NamedParameters().Where(p => p.Name.EndsWith("lora_B.weight")).All(p => p.Param.abs().max().item<float>() > 0), "training left a B at zero");
        }
        Assert.True(File.ReadAllBytes(Adapter(straightDir)).SequenceEqual(File.ReadAllBytes(Adapter(killedDir))), "final adapter differs after kills and resumes");
        string Optimizer(string d) => Path.Combine(d, $"checkpoint-{MaxSteps}", "optimizer.safetensors");
        Assert.True(File.ReadAllBytes(Optimizer(straightDir)).SequenceEqual(File.ReadAllBytes(Optimizer(killedDir))), "AdamW moments differ");
        // The base folder was never written to; model/ holds the merged student.
        Assert.True(File.Exists(Path.Combine(killedDir, "model", "model.safetensors")));
        var a = MetricsLog.Read(Metrics(straightDir));
        var b = MetricsLog.Read(Metrics(killedDir));
        Assert.Equal(Enumerable.Range(1, MaxSteps).Select(s => (double)s), b.Select(r => r["step"]));
        for (int i = 0; i < MaxSteps; i++)
            foreach (var (key, value) in a[i].Where(kv => !kv.Key.Contains("second")))
                Assert.True(value.Equals(b[i][key]), $"step {i + 1}: {key} {value} vs {b[i][key]}");
    }

    [Fact]
    public void BadAdapterKeys_InADistillRecipeOrAPipelineStage_AreOneLineErrors()
    {
        using var dir = new TempDir();
        PipelineKillResumeTests.Write(dir);
        string[] Args(string config) => ["distill", "--mode", "on-policy", "--teacher", dir.File("tiny"), "--student", dir.File("tiny"),
            "--prompts", dir.File("prompts.jsonl"), "--config", config, "--out", dir.File("out")];
        string gkd = dir.File("gkd.yaml");
        File.WriteAllText(gkd, "max_steps: 1\nuse_peft: true\nlora_r: 0\n");
        var r = CliRunner.Run(Args(gkd));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {gkd}: lora_r must be a positive integer, got 0", r.Stderr.Trim());

        // A module the student does not have: said when the adapters are attached, before any step.
        File.WriteAllText(gkd, "max_steps: 1\nuse_peft: true\nlora_target_modules: [q_proj, qkv_proj]\n");
        r = CliRunner.Run(Args(gkd));
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"error: {gkd}: target module \"qkv_proj\" is not a linear layer of this qwen2 model", r.Stderr.Trim());
        Assert.DoesNotContain('\n', r.Stderr.Trim());
        Assert.False(File.Exists(dir.File("out/checkpoint-1/trainer_state.json")));

        string pipeline = dir.File("pipeline.yaml");
        File.WriteAllText(pipeline, $"""
            output_dir: run
            base_model: {dir.File("tiny")}
            stages:
              - name: gkd
                kind: distill
                model_name_or_path: base
                teacher_model_name_or_path: base
                dataset_path: prompts.jsonl
                use_peft: true
                lora_alpha: -2
            """);
        r = CliRunner.Run("pipeline", "--config", pipeline);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {pipeline}:4: lora_alpha must be > 0, got -2", r.Stderr.Trim());
    }

    static string Recipe(TempDir dir, string outputDir)
    {
        string path = dir.File(Path.GetFileName(outputDir) + ".yaml");
        File.WriteAllText(path, $"""
            use_peft: true
            lora_r: 4
            lora_alpha: 8
            lora_dropout: 0.1
            lora_target_modules: all-linear
            gradient_checkpointing: true
            prompt_template: r1_zero
            max_new_tokens: 8
            per_device_train_batch_size: 4
            gradient_accumulation_steps: 2
            learning_rate: 0.02
            lr_scheduler_type: cosine
            warmup_steps: 2
            max_steps: {MaxSteps}
            save_steps: 1
            seed: 5
            num_threads: 1
            """);
        return path;
    }
}
