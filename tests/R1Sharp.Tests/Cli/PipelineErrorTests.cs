using R1Sharp.Training.Pipeline;
using static R1Sharp.Tests.Cli.PipelineKillResumeTests;

namespace R1Sharp.Tests.Cli;

/// <summary>Malformed pipeline and distillation recipes: one line on stderr naming the file, the line and the key (or
/// kind, or stage), exit code 1, nothing run.</summary>
public class PipelineErrorTests
{
    [Fact]
    public void MalformedPipelineRecipes_AreOneLineErrorsNamingFileLineAndKey()
    {
        using var dir = new TempDir();
        Write(dir);
        string good = File.ReadAllText(Recipe(dir, dir.File("run"), stages: 2));
        (string Edit, string Expected)[] cases =
        [
            (good.Replace("kind: grpo", "kind: rlhf"), "{0}:26: unknown stage kind \"rlhf\" (expected sft, grpo, sample, distill, zero, pretrain)"),
            (good.Replace("kind: grpo", "kind: grp"), "{0}:26: unknown stage kind \"grp\" (did you mean \"grpo\"?)"),
            (good.Replace("    learning_rate: 0.01\n    lr_scheduler_type", "    learning_rat: 0.01\n    lr_scheduler_type"), "{0}:19: unknown key \"learning_rat\" (did you mean \"learning_rate\"?)"),
            (good.Replace("stages:", "stagse:"), "{0}:12: unknown key \"stagse\" (did you mean \"stages\"?)"),
            (good.Replace("  k: 2", "  k: many"), "{0}:5: \"k\" expects an integer, found \"many\""),
            (good.Replace("model_name_or_path: cold", "model_name_or_path: later"), "{0}:27: model_name_or_path \"later\" is not base, an earlier stage or an existing path"),
            (good.Replace("    model_name_or_path: base", "    model_name_or_path: rl"), "{0}:15: model_name_or_path \"rl\" is not base, an earlier stage or an existing path"),
            (good.Replace("  - name: rl", "  - name: cold"), "{0}:25: a stage named \"cold\" already exists"),
            (good.Replace("    max_steps: 4\n", "    max_steps: 4\n    output_dir: elsewhere\n"), "{0}:36: \"output_dir\" of a stage is set by the pipeline (the run folder's subfolder named after the stage)"),
            (good.Replace("    max_steps: 6", "    max_steps: 6\n    time_budget_of: rl"), "{0}:13: time_budget_of names \"rl\", which is not an earlier stage"),
            (good.Replace("  max_batch: 16", "  max_batch: 16: 17"), "{0}:10: malformed YAML: "),
            (good.Replace("  max_batch: 16", "  max_batch: [16"), "{0}: malformed YAML: "),
        ];
        foreach (var (edit, expected) in cases)
        {
            string path = dir.File("bad.yaml");
            File.WriteAllText(path, edit);
            var r = CliRunner.Run("pipeline", "--config", path);
            Assert.Equal(1, r.ExitCode);
            string line = r.Stderr.Trim();
            Assert.DoesNotContain('\n', line);
            Assert.True(line.StartsWith("error: " + string.Format(expected, path), StringComparison.Ordinal), $"expected {string.Format(expected, path)}, got {line}");
        }
        Assert.False(Directory.Exists(dir.File("run")), "a malformed recipe must not start anything");
    }

    [Fact]
    public void MalformedDistillRecipeAndArguments_AreOneLineErrors()
    {
        using var dir = new TempDir();
        Write(dir);
        File.WriteAllText(dir.File("gkd.yaml"), "learning_rate: 1.0e-5\nmax_new_token: 16\n");
        var r = CliRunner.Run("distill", "--teacher", dir.File("tiny"), "--student", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"),
            "--mode", "on-policy", "--config", dir.File("gkd.yaml"), "--out", dir.File("out"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {dir.File("gkd.yaml")}:2: unknown key \"max_new_token\" (did you mean \"max_new_tokens\"?)", r.Stderr.Trim());

        File.WriteAllText(dir.File("sft.yaml"), "learning_rate: fast\n");
        r = CliRunner.Run("distill", "--teacher", dir.File("tiny"), "--student", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"), "--config", dir.File("sft.yaml"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {dir.File("sft.yaml")}:1: \"learning_rate\" expects a finite number, found \"fast\"", r.Stderr.Trim());

        r = CliRunner.Run("distill", "--student", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: give exactly one of --teacher DIR (local) or --endpoint URL (with --model-name)", r.Stderr.Trim());

        r = CliRunner.Run("distill", "--endpoint", "http://127.0.0.1:9/v1", "--model-name", "t", "--student", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"), "--mode", "on-policy");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: --mode on-policy needs a local --teacher DIR: the teacher scores every token of the student's samples", r.Stderr.Trim());

        r = CliRunner.Run("distill", "--teacher", dir.File("tiny"), "--prompts", dir.File("prompts.jsonl"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: r1 distill needs --student DIR (or no arguments at all for the embedded proof)", r.Stderr.Trim());
    }

    [Fact]
    public void TheShippedRecipes_Parse()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "R1Sharp.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        string recipes = Path.Combine(dir.FullName, "recipes");
        PipelineRecipe Parse(string name) => PipelineRecipe.Parse(File.ReadAllText(Path.Combine(recipes, name)), name, recipes, checkPaths: false);
        var r1 = Parse("r1.yaml");
        Assert.Equal(["cold_start", "reasoning_rl", "rejection_sampling", "sft", "final_rl"], r1.Stages.Select(s => s.Name));
        var rl = (R1Sharp.Training.GrpoConfig)r1.Stages[1].Options;
        Assert.Equal(["accuracy", "format", "language_consistency"], rl.RewardFuncs);
        Assert.Equal(32, rl.PromptsPerStep);
        Assert.Equal(["rejection_sampling", "data/non-reasoning.jsonl"], r1.Stages[3].Inputs["dataset_path"].Values);
        Assert.Equal("base", r1.Stages[3].Inputs["model_name_or_path"].Values[0]);
        var distill = Parse("distill.yaml");
        Assert.Equal(["traces", "student"], distill.Stages.Select(s => s.Name));
        Assert.Equal(64, ((R1Sharp.Training.Sft.SftConfig)distill.Stages[1].Options).RowsPerStep);
        Assert.Equal(5, Parse("zero-distill.yaml").Stages.Count);
    }

    [Fact]
    public void TheBuiltInRecipe_Parses()
    {
        var recipe = R1Sharp.Training.Pipeline.EmbeddedRecipe.Load(Path.Combine(Path.GetTempPath(), "unused"));
        Assert.Equal(["teacher", "student", "student_grpo", "traces", "student_sft"], recipe.Stages.Select(s => s.Name));
        Assert.Equal(["student", "student_grpo", "student_sft"], recipe.Compare);
        Assert.Equal("student_grpo", recipe.Stages[^1].TimeBudgetOf);
        Assert.Equal("teacher/heldout.jsonl", recipe.EvalInput!.Values[0]);
    }
}
