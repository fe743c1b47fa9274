using System.CommandLine;
using R1Sharp.Generation;
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

    static int RunGrpo(string recipePath, bool resume, bool json, string? endpoints, string? weightsDir, string? apiKeyEnv)
    {
        var cfg = RecipeLoader.Load(recipePath);
        if (endpoints != null) cfg.RolloutEndpoints = endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (weightsDir != null) cfg.RolloutWeightsDir = weightsDir;
        string? apiKey = apiKeyEnv is null ? null : CliCommon.RequiredEnv(apiKeyEnv);
        var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        IRolloutSource? Remote(LocalModel lm) => cfg.RolloutEndpoints.Count == 0 ? null
            : new EndpointRolloutSource(cfg.RolloutEndpoints, cfg.RolloutWeightsDir.Length > 0 ? cfg.RolloutWeightsDir : Path.Combine(cfg.OutputDir, "rollout-weights"),
                lm.Tokenizer, cfg.ModelNameOrPath, apiKey, cfg.RolloutConcurrency,
                new R1Sharp.Eval.EndpointPolicy { RequestTimeout = TimeSpan.FromSeconds(cfg.RolloutRequestTimeout) })
            {
                OnLog = m => err.MarkupLineInterpolated($"[grey]{m}[/]"),
            };
        var result = TrainProgress.Run("GRPO", hooks => GrpoRun.Run(cfg, recipePath, resume, hooks, Remote),
            row => $"GRPO reward {row["reward"]:F3} len {row["completions/mean_length"]:F0}");
        if (json) CliCommon.PrintJson(new { output_dir = result.OutputDir, model = result.ModelDir, steps = result.Steps, last_metrics = result.Last });
        else Console.WriteLine($"trained {result.Steps} steps; model: {result.ModelDir}; metrics: {Path.Combine(result.OutputDir, "metrics.jsonl")}");
        return 0;
    }
}
