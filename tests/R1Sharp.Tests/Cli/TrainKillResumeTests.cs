using R1Sharp.Models;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Cli;

/// <summary>
/// `r1 train grpo` killed with SIGKILL at seeded-random moments (mid-step, inside a checkpoint write, while starting
/// or resuming), resumed with --resume each time until it finishes, ends bit-identical to an uninterrupted run.
/// </summary>
public class TrainKillResumeTests(ITestOutputHelper output)
{
    const int MaxSteps = 8;
    // Moments to kill at, in order: after a step plus a random delay, at the first sight of a checkpoint being
    // written, after a random delay from the start (loading, resuming or training), and so on.
    static readonly string[] Moments = ["mid-step", "checkpoint", "anytime", "checkpoint", "mid-step", "checkpoint"];

    [Fact]
    public void SigkillAtAnyMoment_ThenResume_EndsBitIdenticalToAnUninterruptedRun() => KillAndResume(Moments, peft: false);

    /// <summary>The same with LoRA adapters (dropout on, π_ref = the base with adapters off): the adapter and its AdamW
    /// moments end bit-identical.</summary>
    [Fact]
    public void WithAdapters_SigkillAtAnyMoment_ThenResume_EndsBitIdentical() => KillAndResume(["mid-step", "checkpoint", "anytime", "checkpoint"], peft: true);

    void KillAndResume(string[] moments, bool peft)
    {
        using var dir = new TempDir();
        string model = dir.File("tiny");
        var tok = TinyGrpo.Tokenizer();
        using (var m = TinyGrpo.Model(tok)) ModelFolder.Save(m, model, TinyGrpo.TokenizerFolder);
        ParquetFiles.WritePrompts(dir.File("train.parquet"), TinyGrpo.Data(16), groupSize: 5);

        string straightDir = dir.File("straight"), killedDir = dir.File("killed");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var straight = CliRunner.Run("train", "grpo", "--config", Recipe(dir, model, straightDir, peft));
        var straightTime = clock.Elapsed;
        Assert.True(straight.ExitCode == 0, straight.Stderr);

        string recipe = Recipe(dir, model, killedDir, peft);
        var rng = new Random(20250128);
        int kills = 0, killsInsideACheckpoint = 0;
        CliRunner.Result? finished = null;
        while (finished is null)
        {
            // What an earlier kill left behind is not evidence about this attempt.
            var before = new Attempt(Hidden(killedDir), ReadShared(Metrics(killedDir)), NewestCheckpoint(killedDir));
            using var run = CliRunner.Start("train", "grpo", "--config", recipe, "--resume");
            // After the listed moments, more checkpoint kills until one lands inside a write: a small checkpoint (an
            // adapter's) can be renamed into place between the first sight of its temporary folder and the SIGKILL,
            // so a fixed number of tries left the test to chance (it once ended with none of two inside).
            string? next = kills < moments.Length ? moments[kills] : killsInsideACheckpoint == 0 && kills < moments.Length + 8 ? "checkpoint" : null;
            string? moment = next is null ? null : KillAt(run, killedDir, next, rng, before, straightTime);
            if (moment is null) { finished = run.WaitForExit(TimeSpan.FromMinutes(5)); Assert.NotNull(finished); break; }
            kills++;
            bool inCheckpoint = Hidden(killedDir).Except(before.Hidden).Any();
            if (inCheckpoint) killsInsideACheckpoint++;
            output.WriteLine($"kill {kills}: {moment}; {Rows(killedDir)} metric rows; checkpoints [{string.Join(", ", Directory.GetDirectories(killedDir).Select(Path.GetFileName))}]");
        }
        Assert.True(finished.ExitCode == 0, finished.Stderr);
        output.WriteLine($"{kills} kills, {killsInsideACheckpoint} left a checkpoint of their own half written");
        Assert.True(kills >= 3, $"only {kills} kills landed before the run finished");
        Assert.True(killsInsideACheckpoint >= 1, "no kill landed inside a checkpoint write");

        // The weights and the optimizer state are bit-identical, and the weights did move.
        string Weights(string d) => peft ? Path.Combine(d, "adapter", "adapter_model.safetensors") : Path.Combine(d, "model", "model.safetensors");
        if (!peft) Assert.False(File.ReadAllBytes(Path.Combine(model, "model.safetensors")).SequenceEqual(File.ReadAllBytes(Weights(straightDir))), "training did not change the weights");
        else
        {
            using var m = ModelFolder.Load(model);
            var lora = R1Sharp.Models.Lora.LoraModel.Of(m);
            lora.Load(Path.Combine(straightDir, "adapter"));
            Assert.True(lora.NamedParameters().Where(p => p.Name.EndsWith("lora_B.weight")).Any(p => p.Param.abs().max().item<float>() > 0), "training left every B at zero");
        }
        Assert.True(File.ReadAllBytes(Weights(straightDir)).SequenceEqual(File.ReadAllBytes(Weights(killedDir))), "final weights differ after kills and resumes");
        string Optimizer(string d) => Path.Combine(d, $"checkpoint-{MaxSteps}", "optimizer.safetensors");
        Assert.True(File.ReadAllBytes(Optimizer(straightDir)).SequenceEqual(File.ReadAllBytes(Optimizer(killedDir))), "AdamW moments differ");

        // metrics.jsonl has one row per step, none left over from a killed attempt, equal except for timings.
        var a = MetricsLog.Read(Path.Combine(straightDir, "metrics.jsonl"));
        var b = MetricsLog.Read(Path.Combine(killedDir, "metrics.jsonl"));
        Assert.Equal(Enumerable.Range(1, MaxSteps).Select(s => (double)s), b.Select(r => r["step"]));
        for (int i = 0; i < MaxSteps; i++)
            foreach (var (key, value) in a[i].Where(kv => !kv.Key.Contains("second") && !kv.Key.StartsWith("memory/")))
                Assert.True(value.Equals(b[i][key]), $"step {i + 1}: {key} {value} vs {b[i][key]}");
        Assert.Empty(Directory.GetDirectories(killedDir, ".checkpoint-*"));
    }

    /// <summary>Kills the run at the named kind of moment; null when it exited on its own first.</summary>
    internal sealed record Attempt(string[] Hidden, string Metrics, int Checkpoint);

    internal static string Metrics(string outDir) => Path.Combine(outDir, "metrics.jsonl");

    internal static string[] Hidden(string outDir) => Directory.Exists(outDir) ? Directory.GetDirectories(outDir, ".checkpoint-*") : [];

    internal static int NewestCheckpoint(string outDir) => Directory.Exists(outDir)
        ? Directory.GetDirectories(outDir, "checkpoint-*").Select(d => int.Parse(Path.GetFileName(d)["checkpoint-".Length..])).DefaultIfEmpty(0).Max()
        : 0;

    /// <paramref name="straight"/> is how long an uninterrupted run took: "anytime" falls within its first 40 %, which a
    /// resumed attempt (start-up plus most of the steps still to go) always outlasts, on a fast machine too (a CI run
    /// once finished before a fixed 0.2–3 s delay ran out).
    internal static string? KillAt(CliRunner.Running run, string outDir, string moment, Random rng, Attempt before, TimeSpan straight)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        bool WaitFor(Func<bool> condition)
        {
            while (!condition())
            {
                if (run.HasExited) return false;
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"waiting to kill at {moment}");
                Thread.Sleep(1);
            }
            return true;
        }
        string what;
        switch (moment)
        {
            case "mid-step":
            {
                // The run resumes from the newest checkpoint, rewriting metrics.jsonl to its rows (dropping rows the killed
                // attempt wrote after it), then appends: wait for the file to change and reach the target row.
                int target = before.Checkpoint + 1 + rng.Next(2);
                int delay = rng.Next(0, 150);
                if (!WaitFor(() => Rows(outDir) >= target && ReadShared(Metrics(outDir)) != before.Metrics)) return null;
                Thread.Sleep(delay);
                what = $"{delay} ms after metric row {target}";
                break;
            }
            case "checkpoint":
            {
                // The first sight of checkpoint N's temporary folder, N a little past the one resumed from.
                int step = before.Checkpoint + 1 + rng.Next(2);
                bool Writing() => Hidden(outDir).Except(before.Hidden).Any(d => Path.GetFileName(d).StartsWith($".checkpoint-{step}.tmp-"));
                // A small checkpoint (an adapter's) can be written and renamed between two looks: then the kill lands
                // right after it instead of the test waiting, kill-less, for the run to finish.
                if (!WaitFor(() => Writing() || NewestCheckpoint(outDir) >= step)) return null;
                what = Writing() || NewestCheckpoint(outDir) < step ? $"as checkpoint {step} was being written" : $"just after checkpoint {step} was written (too quick to catch inside)";
                break;
            }
            default:
            {
                int delay = (int)(straight.TotalMilliseconds * (0.05 + 0.35 * rng.NextDouble()));
                Thread.Sleep(delay);
                what = $"{delay} ms after start";
                break;
            }
        }
        if (run.HasExited) return null;
        run.Kill();
        return what;
    }

    internal static int Rows(string outDir) => ReadShared(Metrics(outDir)).Count(c => c == '\n');

    internal static string ReadShared(string path)
    {
        try { return File.Exists(path) ? File.ReadAllText(path) : ""; }
        catch (IOException) { return ""; }
    }

    static string Recipe(TempDir dir, string model, string outputDir, bool peft = false)
    {
        string path = dir.File(Path.GetFileName(outputDir) + ".yaml");
        string lora = peft ? "use_peft: true\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\nlora_target_modules: all-linear\ngradient_checkpointing: true\nlogprob_chunk_size: 16\n" : "";
        File.WriteAllText(path, lora + $"""
            model_name_or_path: {model}
            dataset_path: train.parquet
            output_dir: {outputDir}
            prompt_template: r1_zero
            num_generations: 4
            per_device_train_batch_size: 8
            gradient_accumulation_steps: 1
            max_completion_length: 8
            # Overlong over the whole length: the penalty counts the tokens of the decoded text, which varies with the
            # random bytes sampled, so rewards differ within a group and the weights move.
            reward_funcs: [overlong]
            overlong_buffer_len: 8
            learning_rate: 0.01
            lr_scheduler_type: cosine
            warmup_steps: 2
            num_iterations: 2
            beta: 0.04
            max_steps: {MaxSteps}
            save_steps: 1
            seed: 5
            num_threads: 1
            """);
        return path;
    }
}
