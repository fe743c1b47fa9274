using System.CommandLine;
using R1Sharp.Generation;
using R1Sharp.Models;
using R1Sharp.Rewards;
using R1Sharp.Tasks;
using R1Sharp.Text;
using R1Sharp.Training;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 train grpo --config recipe.yaml [--resume]`: GRPO on a model folder and a prompt dataset.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "recipe YAML with TRL's option names", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue from the newest checkpoint in output_dir" };
        var json = new Option<bool>("--json") { Description = "print the final metrics as JSON" };
        var endpoints = new Option<string?>("--rollout-endpoints")
        {
            Description = "URL[,URL…] of OpenAI-compatible servers (r1 serve, SGLang) that generate the rollouts; each update is " +
                "saved under --weights-dir and loaded by them through POST /update_weights_from_disk",
        };
        var weightsDir = new Option<string?>("--weights-dir") { Description = "a folder the rollout servers can read (default: output_dir/rollout-weights)" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the rollout servers' API key" };
        var grpo = new Command("grpo", "Reinforcement learning with GRPO (and DAPO, Dr. GRPO, GSPO) on verifiable rewards") { config, resume, json, endpoints, weightsDir, apiKeyEnv };
        grpo.SetAction(p => CliCommon.Run(p, () => RunGrpo(p.GetValue(config)!, p.GetValue(resume), p.GetValue(json),
            p.GetValue(endpoints), p.GetValue(weightsDir), p.GetValue(apiKeyEnv))));
        return new Command("train", "Train a model") { grpo, TrainSftCommand.Create() };
    }

    /// <summary>A completion of max_completion_length tokens after at least one prompt token must fit the model's context:
    /// said up front with the recipe key rather than by the engine at the first generation.</summary>
    static void CheckFitsContext(GrpoConfig cfg, string recipePath, LocalModel lm)
    {
        int context = lm.Model.Config.MaxPositionEmbeddings;
        if (cfg.MaxCompletionLength >= context)
            throw new R1SharpException($"{recipePath}: max_completion_length {cfg.MaxCompletionLength} does not fit the model's context of {context} tokens " +
                $"(max_position_embeddings in {Path.Combine(cfg.ModelNameOrPath, "config.json")}); lower it below {context}");
    }

    static int RunGrpo(string recipePath, bool resume, bool json, string? endpoints, string? weightsDir, string? apiKeyEnv)
    {
        var cfg = RecipeLoader.Load(recipePath);
        if (endpoints != null) cfg.RolloutEndpoints = endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (weightsDir != null) cfg.RolloutWeightsDir = weightsDir;
        string? apiKey = apiKeyEnv is null ? null : CliCommon.RequiredEnv(apiKeyEnv);
        if (cfg.ModelNameOrPath.Length == 0) throw new R1SharpException($"{recipePath}: model_name_or_path is required");
        if (cfg.DatasetPath.Length == 0) throw new R1SharpException($"{recipePath}: dataset_path is required");
        using var lm = LocalModel.Load(cfg.ModelNameOrPath);
        CheckFitsContext(cfg, recipePath, lm);
        var data = PromptDataset.Load(cfg.DatasetPath, cfg.PromptField, cfg.AnswerField);
        Func<string, string> template = cfg.PromptTemplate switch
        {
            "r1_zero" => R1ZeroTemplate.Format,
            "chat" => q => lm.RenderChat([new ChatMessage("user", q)]).Prompt,
            _ => q => q,
        };
        var rewards = new RewardSet(RewardRegistry.Build(cfg, countTokens: s => lm.Tokenizer.Encode(s).Count),
            TimeSpan.FromSeconds(cfg.RewardTimeoutSeconds));
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        using var remote = cfg.RolloutEndpoints.Count == 0 ? null
            : new EndpointRolloutSource(cfg.RolloutEndpoints, cfg.RolloutWeightsDir.Length > 0 ? cfg.RolloutWeightsDir : Path.Combine(cfg.OutputDir, "rollout-weights"),
                lm.Tokenizer, cfg.ModelNameOrPath, apiKey, cfg.RolloutConcurrency,
                new R1Sharp.Eval.EndpointPolicy { RequestTimeout = TimeSpan.FromSeconds(cfg.RolloutRequestTimeout) })
            {
                OnLog = m => err.MarkupLineInterpolated($"[grey]{m}[/]"),
            };
        using var trainer = new GrpoTrainer(cfg, lm.Model, lm.Tokenizer, rewards, data, template, cfg.ModelNameOrPath, remote)
        {
            OnLog = m => err.MarkupLineInterpolated($"[grey]{m}[/]"),
        };
        if (resume && trainer.Resume()) err.MarkupLineInterpolated($"resumed at step {trainer.State.Step}");
        Dictionary<string, double>? last = null;
        err.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("GRPO", maxValue: cfg.MaxSteps);
                task.Value = trainer.State.Step;
                trainer.Train(onStep: row =>
                {
                    last = row;
                    task.Value = trainer.State.Step;
                    task.Description = $"GRPO reward {row["reward"]:F3} len {row["completions/mean_length"]:F0}";
                });
            });
        RunPlots.TryWrite(cfg.OutputDir, trainer.Metrics.Rows, m => err.MarkupLineInterpolated($"[yellow]{m}[/]"));
        // With use_peft the result is the adapter in PEFT's layout (as TRL saves it); r1 merge makes a full model of it.
        string modelDir = Path.Combine(cfg.OutputDir, trainer.Adapters is null ? "model" : "adapter");
        if (trainer.Adapters is { } adapters) adapters.Save(modelDir, baseModel: cfg.ModelNameOrPath);
        else ModelFolder.Save(lm.Model, modelDir, cfg.ModelNameOrPath);
        if (json) CliCommon.PrintJson(new { output_dir = cfg.OutputDir, model = modelDir, steps = trainer.State.Step, last_metrics = last });
        else Console.WriteLine($"trained {trainer.State.Step} steps; model: {modelDir}; metrics: {trainer.Metrics.Path}");
        return 0;
    }
}
