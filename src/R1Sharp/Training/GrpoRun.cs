using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Text;

namespace R1Sharp.Training;

/// <summary>
/// `r1 train grpo` as a function, for the CLI and the pipeline: loads the model folder and the prompts, builds the
/// recipe's rewards and prompt template, trains (resuming from output_dir's newest checkpoint when asked), writes the
/// curves and the final model to output_dir/model.
/// </summary>
public static class GrpoRun
{
    /// <param name="source">the recipe's name for error messages (its path)</param>
    /// <param name="rollouts">where completions come from, given the loaded model (inference servers); null: this process</param>
    public static TrainingResult Run(GrpoConfig cfg, string source, bool resume, TrainingHooks? hooks = null,
        Func<LocalModel, IRolloutSource?>? rollouts = null)
    {
        hooks ??= new TrainingHooks();
        if (cfg.ModelNameOrPath.Length == 0) throw new R1SharpException($"{source}: model_name_or_path is required");
        if (cfg.DatasetPath.Length == 0) throw new R1SharpException($"{source}: dataset_path is required");
        using var lm = LocalModel.Load(cfg.ModelNameOrPath);
        CheckFitsContext(cfg, source, lm);
        var data = PromptDataset.Load(cfg.DatasetPath, cfg.PromptField, cfg.AnswerField);
        var rewards = new RewardSet(RewardRegistry.Build(cfg, countTokens: s => lm.Tokenizer.Encode(s).Count),
            TimeSpan.FromSeconds(cfg.RewardTimeoutSeconds));
        using var remote = rollouts?.Invoke(lm);
        using var trainer = new GrpoTrainer(cfg, lm.Model, lm.Tokenizer, rewards, data, Template(cfg.PromptTemplate, lm), cfg.ModelNameOrPath, remote)
        {
            OnLog = hooks.Log,
        };
        if (resume && trainer.Resume()) hooks.Log?.Invoke($"resumed at step {trainer.State.Step}");
        hooks.Train(trainer);
        RunPlots.TryWrite(cfg.OutputDir, trainer.Metrics.Rows, hooks.Log);
        string modelDir = PeftOptions.SaveResult(lm.Model, cfg.OutputDir, cfg.ModelNameOrPath); // with use_peft: adapter/ too
        return new TrainingResult(cfg.OutputDir, modelDir, trainer.State.Step, trainer.Metrics.Rows.ToList());
    }

    /// <summary>prompt_template as a function of the question: r1_zero (DeepSeek-R1 Table 1), chat (the model's chat
    /// template with the generation prompt) or none.</summary>
    public static Func<string, string> Template(string name, LocalModel lm) => name switch
    {
        "r1_zero" => R1ZeroTemplate.Format,
        "chat" => q => lm.RenderChat([new ChatMessage("user", q)]).Prompt,
        _ => q => q,
    };

    /// <summary>A completion of max_completion_length tokens after at least one prompt token must fit the model's context:
    /// said up front with the recipe key rather than by the engine at the first generation.</summary>
    static void CheckFitsContext(GrpoConfig cfg, string source, LocalModel lm)
    {
        int context = lm.Model.Config.MaxPositionEmbeddings;
        if (cfg.MaxCompletionLength >= context)
            throw new R1SharpException($"{source}: max_completion_length {cfg.MaxCompletionLength} does not fit the model's context of {context} tokens " +
                $"(max_position_embeddings in {Path.Combine(cfg.ModelNameOrPath, "config.json")}); lower it below {context}");
    }
}
