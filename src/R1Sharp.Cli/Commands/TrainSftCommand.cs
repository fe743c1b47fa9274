using System.CommandLine;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Training;
using R1Sharp.Training.Sft;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 train sft --config sft.yaml [--resume] [--json]`: supervised fine-tuning on a model folder.</summary>
public static class TrainSftCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "recipe YAML with TRL's SFTConfig option names", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue from the newest checkpoint in output_dir" };
        var json = new Option<bool>("--json") { Description = "print the summary as JSON" };
        var sft = new Command("sft", "Supervised fine-tuning (cold start, distillation) on messages, prompt/completion or text rows") { config, resume, json };
        sft.SetAction(p => CliCommon.Run(p, () => Run(p.GetValue(config)!, p.GetValue(resume), p.GetValue(json))));
        return sft;
    }

    static int Run(string recipePath, bool resume, bool json)
    {
        var cfg = RecipeLoader.Load<SftConfig>(recipePath);
        if (cfg.ModelNameOrPath.Length == 0) throw new R1SharpException($"{recipePath}: model_name_or_path is required");
        if (cfg.DatasetPath.Length == 0) throw new R1SharpException($"{recipePath}: dataset_path is required");
        if (cfg.EvalSteps > 0 && cfg.EvalDatasetPath.Length == 0) throw new R1SharpException($"{recipePath}: eval_steps needs eval_dataset_path");
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        using var lm = LocalModel.Load(cfg.ModelNameOrPath);
        var tokenizer = new SftTokenizer(lm.Tokenizer, lm.Template, cfg.AssistantOnlyLoss, cfg.CompletionOnlyLoss ?? true, lm.Generator.EosIds);
        var train = SftDataset.Load(cfg.DatasetPath).Select(tokenizer.Tokenize).ToList();
        var eval = cfg.EvalDatasetPath.Length > 0 ? SftDataset.Load(cfg.EvalDatasetPath).Select(tokenizer.Tokenize).ToList() : null;
        int truncated = train.Count(s => s.Length > cfg.MaxLength);
        var trainer = new SftTrainer(cfg, lm.Model, train, eval, cfg.ModelNameOrPath, recipePath) { OnLog = m => err.MarkupLineInterpolated($"[grey]{m}[/]") };
        err.MarkupLineInterpolated($"{train.Count} samples ({truncated} truncated to {cfg.MaxLength} tokens) in {trainer.Rows.Count} rows; {trainer.TotalSteps} steps");
        if (tokenizer.UntrainedTurns > 0)
            err.MarkupLineInterpolated($"[grey]{tokenizer.UntrainedTurns} earlier assistant turns are context only: the chat template rewrites history, so only each row's last turn is trained[/]");
        if (resume && trainer.Resume()) err.MarkupLineInterpolated($"resumed at step {trainer.State.Step}");
        Dictionary<string, double>? last = null;
        err.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("SFT", maxValue: trainer.TotalSteps);
                task.Value = trainer.State.Step;
                trainer.Train(onStep: row =>
                {
                    last = row;
                    task.Value = trainer.State.Step;
                    task.Description = $"SFT loss {row["loss"]:F3} acc {row["mean_token_accuracy"]:F3} {row["tokens_per_second"]:F0} tok/s";
                });
            });
        RunPlots.TryWrite(cfg.OutputDir, trainer.Metrics.Rows, RunPlots.SftCurves, "SFT step", m => err.MarkupLineInterpolated($"[yellow]{m}[/]"));
        string modelDir = Path.Combine(cfg.OutputDir, "model");
        ModelFolder.Save(lm.Model, modelDir, cfg.ModelNameOrPath);
        last ??= trainer.Metrics.Rows.LastOrDefault();
        if (json) CliCommon.PrintJson(new { output_dir = cfg.OutputDir, model = modelDir, steps = trainer.State.Step, samples = train.Count, rows = trainer.Rows.Count, last_metrics = last });
        else Console.WriteLine($"trained {trainer.State.Step} steps; model: {modelDir}; metrics: {trainer.Metrics.Path}");
        return 0;
    }
}
