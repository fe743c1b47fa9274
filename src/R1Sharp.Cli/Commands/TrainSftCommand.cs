using System.CommandLine;
using R1Sharp.Training;
using R1Sharp.Training.Sft;

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
        int samples = 0, rows = 0;
        var result = TrainProgress.Run("SFT", hooks => SftRun.Run(cfg, recipePath, resume, hooks with
        {
            Started = t => { var s = (SftTrainer)t; samples = s.Rows.Sum(r => r.Count); rows = s.Rows.Count; hooks.Started?.Invoke(t); },
        }), row => $"SFT loss {row["loss"]:F3} acc {row["mean_token_accuracy"]:F3} {row["tokens_per_second"]:F0} tok/s");
        if (json) CliCommon.PrintJson(new { output_dir = result.OutputDir, model = result.ModelDir, steps = result.Steps, samples, rows, last_metrics = result.Last });
        else Console.WriteLine($"trained {result.Steps} steps; model: {result.ModelDir}; metrics: {Path.Combine(result.OutputDir, "metrics.jsonl")}");
        return 0;
    }
}
