using System.Text.Json;
using R1Sharp.Models;
using R1Sharp.Tests.Training;
using R1Sharp.Training;
using R1Sharp.Training.Pipeline;
using Xunit.Abstractions;
using static R1Sharp.Tests.Cli.TrainKillResumeTests;

namespace R1Sharp.Tests.Cli;

/// <summary>
/// `r1 pipeline` on a three-stage recipe of tiny models (cold-start SFT → GRPO → on-policy distillation, a held-out
/// eval after each) killed with SIGKILL inside a stage's training, between two stages, inside a checkpoint write, inside
/// an evaluation and inside the last stage, resumed with --resume each time: it ends with the same models, the same
/// evaluations and the same report as an uninterrupted run.
/// </summary>
public class PipelineKillResumeTests(ITestOutputHelper output)
{
    [Fact]
    public void KilledBetweenAndInsideStages_ResumesToTheSameResult()
    {
        using var dir = new TempDir();
        Write(dir);
        string straightDir = dir.File("straight"), killedDir = dir.File("killed");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var straight = CliRunner.Run("pipeline", "--config", Recipe(dir, straightDir), "--json");
        output.WriteLine($"uninterrupted: {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(straight.ExitCode == 0, straight.Stderr);

        string recipe = Recipe(dir, killedDir);
        string Stage(string name, string file = "") => Path.Combine(killedDir, name, file);
        // Each kill waits for its moment in the run folder, then SIGKILLs; the next attempt resumes.
        var moments = new (string What, Func<bool> Reached)[]
        {
            ("inside cold's training (2 metric rows)", () => Rows(Stage("cold")) >= 2),
            ("between cold and rl (cold's stage.json just written)", () => File.Exists(Stage("cold", StageRecord.File))),
            ("inside a checkpoint write of rl", () => Hidden(Stage("rl")).Length > 0),
            ("inside rl's held-out evaluation", () => ReadShared(Stage("rl", "eval/samples.jsonl")).Count(c => c == '\n') >= 2),
            ("inside the distill stage (1 metric row)", () => Rows(Stage("student")) >= 1),
        };
        int kills = 0;
        foreach (var (what, reached) in moments)
        {
            using var run = CliRunner.Start("pipeline", "--config", recipe, "--resume");
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            while (!reached() && !run.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(1);
            if (run.HasExited) { output.WriteLine($"exited before: {what}"); continue; }
            run.Kill();
            kills++;
            output.WriteLine($"kill {kills}: {what}");
        }
        Assert.True(kills >= 4, $"only {kills} of {moments.Length} kills landed");
        var finished = CliRunner.Run("pipeline", "--config", recipe, "--resume", "--json");
        Assert.True(finished.ExitCode == 0, finished.Stderr);

        foreach (var stage in new[] { "cold", "rl", "student" })
        {
            string Weights(string root) => Path.Combine(root, stage, "model", "model.safetensors");
            Assert.True(File.ReadAllBytes(Weights(straightDir)).SequenceEqual(File.ReadAllBytes(Weights(killedDir))), $"{stage}: weights differ after kills and resumes");
            var a = StageRecord.TryLoad(Path.Combine(straightDir, stage))!;
            var b = StageRecord.TryLoad(Path.Combine(killedDir, stage))!;
            Assert.Equal(a.Steps, b.Steps);
            Assert.Equal(a.Eval! with { Seconds = 0 }, b.Eval! with { Seconds = 0 });
            var ma = MetricsLog.Read(Path.Combine(straightDir, stage, "metrics.jsonl"));
            var mb = MetricsLog.Read(Path.Combine(killedDir, stage, "metrics.jsonl"));
            Assert.Equal(ma.Count, mb.Count);
            for (int i = 0; i < ma.Count; i++)
                foreach (var (key, value) in ma[i].Where(kv => !kv.Key.Contains("second") && !kv.Key.Contains("per_second") && !kv.Key.StartsWith("memory/")))
                    Assert.True(value.Equals(mb[i][key]), $"{stage} step {i + 1}: {key} {value} vs {mb[i][key]}");
            Assert.Equal(File.ReadAllLines(Path.Combine(straightDir, stage, "eval", "samples.jsonl")).Order(),
                File.ReadAllLines(Path.Combine(killedDir, stage, "eval", "samples.jsonl")).Order());
        }
        // The base model was evaluated too, and the report covers every stage.
        Assert.True(File.Exists(Path.Combine(killedDir, "base", StageRecord.File)));
        string report = File.ReadAllText(Path.Combine(killedDir, PipelineReport.ReportFile));
        foreach (var stage in new[] { "| base |", "| cold |", "| rl |", "| student |" }) Assert.Contains(stage, report);
        using var json = JsonDocument.Parse(finished.Stdout);
        Assert.Equal(4, json.RootElement.GetProperty("stages").GetArrayLength());
    }

    [Fact]
    public void AFinishedStageWhoseRecipeChanged_IsAnErrorNotSilentlyReused()
    {
        using var dir = new TempDir();
        Write(dir);
        string recipe = Recipe(dir, dir.File("run"), stages: 1);
        var r = CliRunner.Run("pipeline", "--config", recipe);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var again = CliRunner.Run("pipeline", "--config", recipe);
        Assert.Equal(1, again.ExitCode);
        Assert.Equal($"error: {dir.File("run")}: the output_dir already holds a run; --resume continues it (or choose another output_dir)", again.Stderr.Trim());
        File.WriteAllText(recipe, File.ReadAllText(recipe).Replace("learning_rate: 0.01", "learning_rate: 0.02"));
        var changed = CliRunner.Run("pipeline", "--config", recipe, "--resume");
        Assert.Equal(1, changed.ExitCode);
        Assert.Equal($"error: {recipe}:13: stage \"cold\" changed since it ran in {dir.File("run/cold")}; delete that folder to run it again, or restore the recipe",
            changed.Stderr.Trim());
    }

    internal static void Write(TempDir dir)
    {
        var tok = TinyGrpo.Tokenizer();
        // Large enough that a step takes a moment for the kills to land in.
        var cfg = (LlamaConfig)ModelPresets.Create("qwen2", "tiny", tok.VocabSize, null, [tok.EosTokenId!.Value]) with
        {
            HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 32, IntermediateSize = 384,
        };
        using (var m = CausalLM.Create(cfg)) { m.InitializeRandom(2); ModelFolder.Save(m, dir.File("tiny"), TinyGrpo.TokenizerFolder); }
        File.WriteAllLines(dir.File("cold.jsonl"), Enumerable.Range(0, 40).Select(i => JsonSerializer.Serialize(new
        {
            messages = new[]
            {
                new { role = "user", content = $"{i}+{i % 7}" },
                new { role = "assistant", content = $" <think>{i} plus {i % 7}</think> <answer>{i + i % 7}</answer>" },
            },
        })));
        string Problems(int from, int n) => string.Concat(Enumerable.Range(from, n).Select(i =>
            JsonSerializer.Serialize(new { id = $"p{i}", prompt = $"{i}+{i % 5}", problem = $"{i}+{i % 5}", answer = (i + i % 5).ToString() }) + "\n"));
        File.WriteAllText(dir.File("prompts.jsonl"), Problems(0, 24));
        File.WriteAllText(dir.File("heldout.jsonl"), Problems(100, 6));
    }

    internal static string Recipe(TempDir dir, string outputDir, int stages = 3)
    {
        string path = dir.File(Path.GetFileName(outputDir) + ".yaml");
        string text = $"""
            output_dir: {outputDir}
            base_model: tiny
            eval:
              dataset_path: heldout.jsonl
              k: 2
              max_tokens: 8
              temperature: 1.0
              instruction: ""
              force_think: false
              max_batch: 16
              seed: 3
            stages:
              - name: cold
                kind: sft
                model_name_or_path: base
                dataset_path: cold.jsonl
                max_length: 64
                per_device_train_batch_size: 4
                learning_rate: 0.01
                lr_scheduler_type: cosine
                max_steps: 6
                save_steps: 1
                seed: 3
                num_threads: 1
              - name: rl
                kind: grpo
                model_name_or_path: cold
                dataset_path: prompts.jsonl
                num_generations: 4
                per_device_train_batch_size: 8
                max_completion_length: 8
                reward_funcs: [overlong]
                overlong_buffer_len: 8
                learning_rate: 0.01
                max_steps: 4
                save_steps: 1
                seed: 5
                num_threads: 1
              - name: student
                kind: distill
                model_name_or_path: base
                teacher_model_name_or_path: rl
                dataset_path: prompts.jsonl
                prompt_template: r1_zero
                max_new_tokens: 8
                per_device_train_batch_size: 4
                learning_rate: 0.01
                max_steps: 4
                save_steps: 1
                seed: 7
                num_threads: 1
            """;
        // The first `stages` stages only.
        var lines = text.Split('\n').ToList();
        int cut = lines.FindIndex(l => l.TrimStart().StartsWith("- name:") && lines.Take(lines.IndexOf(l)).Count(x => x.TrimStart().StartsWith("- name:")) == stages);
        File.WriteAllText(path, string.Join('\n', cut < 0 ? lines : lines.Take(cut)) + "\n");
        return path;
    }
}
