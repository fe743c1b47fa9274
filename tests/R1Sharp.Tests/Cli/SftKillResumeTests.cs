using System.Text.Json;
using R1Sharp.Models;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using Xunit.Abstractions;
using static R1Sharp.Tests.Cli.TrainKillResumeTests;

namespace R1Sharp.Tests.Cli;

/// <summary>
/// `r1 train sft` killed with SIGKILL at seeded-random moments (mid-step, inside a checkpoint write, while starting),
/// resumed with --resume each time until it finishes, ends bit-identical to an uninterrupted run; and the CLI's
/// one-line errors for an unknown recipe key and a malformed row.
/// </summary>
public class SftKillResumeTests(ITestOutputHelper output)
{
    const int MaxSteps = 16;
    static readonly string[] Moments = ["mid-step", "checkpoint", "anytime", "checkpoint", "mid-step"];

    [Fact]
    public void SigkillAtAnyMoment_ThenResume_EndsBitIdenticalToAnUninterruptedRun()
    {
        using var dir = new TempDir();
        string model = TinyModel(dir);
        WriteData(dir.File("train.jsonl"), 120, 0);
        WriteData(dir.File("eval.jsonl"), 6, 1000);

        string straightDir = dir.File("straight"), killedDir = dir.File("killed");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var straight = CliRunner.Run("train", "sft", "--config", Recipe(dir, model, straightDir), "--json");
        var straightTime = clock.Elapsed;
        output.WriteLine($"uninterrupted run: {straightTime.TotalSeconds:F1} s");
        Assert.True(straight.ExitCode == 0, straight.Stderr);
        Assert.Equal(MaxSteps, JsonDocument.Parse(straight.Stdout).RootElement.GetProperty("steps").GetInt32());
        Assert.True(File.Exists(Path.Combine(straightDir, "loss.png")), "no loss curve");

        string recipe = Recipe(dir, model, killedDir);
        var rng = new Random(20250122);
        int kills = 0, killsInsideACheckpoint = 0;
        CliRunner.Result? finished = null;
        while (finished is null)
        {
            var before = new Attempt(Hidden(killedDir), ReadShared(Metrics(killedDir)), NewestCheckpoint(killedDir));
            using var run = CliRunner.Start("train", "sft", "--config", recipe, "--resume");
            string? moment = kills < Moments.Length ? KillAt(run, killedDir, Moments[kills], rng, before, straightTime) : null;
            if (moment is null) { finished = run.WaitForExit(TimeSpan.FromMinutes(5)); Assert.NotNull(finished); break; }
            kills++;
            if (Hidden(killedDir).Except(before.Hidden).Any()) killsInsideACheckpoint++;
            output.WriteLine($"kill {kills}: {moment}; {Rows(killedDir)} metric rows");
        }
        Assert.True(finished.ExitCode == 0, finished.Stderr);
        output.WriteLine($"{kills} kills, {killsInsideACheckpoint} inside a checkpoint write");
        Assert.True(kills >= 3, $"only {kills} kills landed before the run finished");

        string Weights(string d) => Path.Combine(d, "model", "model.safetensors");
        Assert.False(File.ReadAllBytes(Path.Combine(model, "model.safetensors")).SequenceEqual(File.ReadAllBytes(Weights(straightDir))), "training did not change the weights");
        Assert.True(File.ReadAllBytes(Weights(straightDir)).SequenceEqual(File.ReadAllBytes(Weights(killedDir))), "final weights differ after kills and resumes");
        string Optimizer(string d) => Path.Combine(d, $"checkpoint-{MaxSteps}", "optimizer.safetensors");
        Assert.True(File.ReadAllBytes(Optimizer(straightDir)).SequenceEqual(File.ReadAllBytes(Optimizer(killedDir))), "AdamW moments differ");

        var a = MetricsLog.Read(Path.Combine(straightDir, "metrics.jsonl"));
        var b = MetricsLog.Read(Path.Combine(killedDir, "metrics.jsonl"));
        Assert.Equal(Enumerable.Range(1, MaxSteps).Select(s => (double)s), b.Select(r => r["step"]));
        Assert.True(a[^1]["loss"] < a[0]["loss"], "loss did not fall");
        Assert.Contains("eval_loss", a[4].Keys);
        Assert.DoesNotContain("eval_loss", a[3].Keys);
        for (int i = 0; i < MaxSteps; i++)
            foreach (var (key, value) in a[i].Where(kv => !kv.Key.Contains("second") && !kv.Key.StartsWith("memory/")))
                Assert.True(value.Equals(b[i][key]), $"step {i + 1}: {key} {value} vs {b[i][key]}");
    }

    [Fact]
    public void UnknownRecipeKey_AndMalformedRow_AreOneLineErrors()
    {
        using var dir = new TempDir();
        string model = TinyModel(dir);
        File.WriteAllText(dir.File("bad-key.yaml"), $"model_name_or_path: {model}\ndataset_path: train.jsonl\nmax_seq_length: 64\n");
        var r = CliRunner.Run("train", "sft", "--config", dir.File("bad-key.yaml"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {dir.File("bad-key.yaml")}:3: unknown key \"max_seq_length\"", r.Stderr.Trim());

        File.WriteAllLines(dir.File("train.jsonl"), ["""{"text": "ok"}""", """{"messages": [{"role": "user"}]}"""]);
        File.WriteAllText(dir.File("ok.yaml"), $"model_name_or_path: {model}\ndataset_path: train.jsonl\noutput_dir: {dir.File("out")}\n");
        r = CliRunner.Run("train", "sft", "--config", dir.File("ok.yaml"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {dir.File("train.jsonl")}:2: messages[0] has no \"content\"", r.Stderr.Trim());
    }

    static string TinyModel(TempDir dir)
    {
        string path = dir.File("tiny");
        var tok = TinyGrpo.Tokenizer();
        // Large enough that a step takes a while: the kills need moments to land in.
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 32, IntermediateSize = 384,
        };
        using var m = CausalLM.Create(cfg);
        m.InitializeRandom(2);
        ModelFolder.Save(m, path, TinyGrpo.TokenizerFolder);
        return path;
    }

    static void WriteData(string path, int n, int from) =>
        File.WriteAllLines(path, Enumerable.Range(from, n).Select(i => JsonSerializer.Serialize(new
        {
            messages = new[]
            {
                new { role = "user", content = $"{i}+{i % 7}" },
                new { role = "assistant", content = $"<think>{i} plus {i % 7} is {i + i % 7}</think> <answer>{i + i % 7}</answer>" },
            },
        })));

    static string Recipe(TempDir dir, string model, string outputDir)
    {
        string path = dir.File(Path.GetFileName(outputDir) + ".yaml");
        File.WriteAllText(path, $"""
            model_name_or_path: {model}
            dataset_path: train.jsonl
            eval_dataset_path: eval.jsonl
            output_dir: {outputDir}
            max_length: 192
            packing: true
            per_device_train_batch_size: 4
            gradient_accumulation_steps: 2
            learning_rate: 0.01
            lr_scheduler_type: cosine
            warmup_ratio: 0.2
            weight_decay: 0.01
            max_steps: {MaxSteps}
            save_steps: 1
            eval_steps: 5
            seed: 3
            num_threads: 1
            """);
        return path;
    }
}
