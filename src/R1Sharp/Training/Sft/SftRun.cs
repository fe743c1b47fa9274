using R1Sharp.Generation;
using R1Sharp.Models;

namespace R1Sharp.Training.Sft;

/// <summary>
/// `r1 train sft` as a function, for the CLI, `r1 distill` and the pipeline: loads the model folder and the datasets,
/// tokenizes through the model's chat template, trains (resuming from output_dir's newest checkpoint when asked),
/// writes the loss curves and the final model to output_dir/model.
/// </summary>
public static class SftRun
{
    /// <param name="source">the recipe's name for error messages (its path)</param>
    /// <param name="datasets">the training rows, concatenated in order; default the recipe's dataset_path</param>
    public static TrainingResult Run(SftConfig cfg, string source, bool resume, TrainingHooks? hooks = null, IReadOnlyList<string>? datasets = null)
    {
        hooks ??= new TrainingHooks();
        datasets ??= cfg.DatasetPath.Length > 0 ? [cfg.DatasetPath] : [];
        if (cfg.ModelNameOrPath.Length == 0) throw new R1SharpException($"{source}: model_name_or_path is required");
        if (datasets.Count == 0) throw new R1SharpException($"{source}: dataset_path is required");
        if (cfg.EvalSteps > 0 && cfg.EvalDatasetPath.Length == 0) throw new R1SharpException($"{source}: eval_steps needs eval_dataset_path");
        using var lm = LocalModel.Load(cfg.ModelNameOrPath);
        var tokenizer = new SftTokenizer(lm.Tokenizer, lm.Template, cfg.AssistantOnlyLoss, cfg.CompletionOnlyLoss ?? true, lm.Generator.EosIds);
        var train = datasets.SelectMany(SftDataset.Load).Select(tokenizer.Tokenize).ToList();
        var eval = cfg.EvalDatasetPath.Length > 0 ? SftDataset.Load(cfg.EvalDatasetPath).Select(tokenizer.Tokenize).ToList() : null;
        int truncated = train.Count(s => s.Length > cfg.MaxLength);
        var trainer = new SftTrainer(cfg, lm.Model, train, eval, cfg.ModelNameOrPath, source) { OnLog = hooks.Log };
        hooks.Log?.Invoke($"{train.Count} samples ({truncated} truncated to {cfg.MaxLength} tokens) in {trainer.Rows.Count} rows; {trainer.TotalSteps} steps");
        if (tokenizer.UntrainedTurns > 0)
            hooks.Log?.Invoke($"{tokenizer.UntrainedTurns} earlier assistant turns are context only: the chat template rewrites history, so only each row's last turn is trained");
        if (resume && trainer.Resume()) hooks.Log?.Invoke($"resumed at step {trainer.State.Step}");
        hooks.Train(trainer);
        RunPlots.TryWrite(cfg.OutputDir, trainer.Metrics.Rows, RunPlots.SftCurves, "SFT step", hooks.Log);
        string modelDir = PeftOptions.SaveResult(lm.Model, cfg.OutputDir, cfg.ModelNameOrPath); // with use_peft: adapter/ too
        return new TrainingResult(cfg.OutputDir, modelDir, trainer.State.Step, trainer.Metrics.Rows.ToList());
    }
}
