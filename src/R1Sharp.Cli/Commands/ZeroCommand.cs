using System.CommandLine;
using R1Sharp.Tasks;
using Spectre.Console;

namespace R1Sharp.Cli.Commands;

/// <summary>`r1 zero`: the embedded R1-Zero demo — pre-train a tiny base model, run GRPO, report pass@1 before and after.</summary>
public static class ZeroCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print the summary as JSON" };
        var output = new Option<string>("--out") { Description = "run folder", DefaultValueFactory = _ => "runs/zero" };
        var seed = new Option<int>("--seed") { Description = "seed of everything (data, init, sampling)", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "CPU threads", DefaultValueFactory = _ => new ZeroOptions().Threads };
        var pretrainSteps = new Option<int?>("--pretrain-steps") { Description = "base model pre-training steps" };
        var grpoSteps = new Option<int?>("--grpo-steps") { Description = "GRPO steps" };
        var task = new Option<string>("--task") { Description = "addition, or code: the answer is a Python expression, checked by a hidden test run in the sandbox", DefaultValueFactory = _ => "addition" };
        var digits = new Option<int?>("--digits") { Description = "digits per addend of the synthetic task" };
        var stepsFraction = new Option<double?>("--steps-fraction") { Description = "share of base-corpus solutions that show their steps" };
        var pretrainLr = new Option<double?>("--pretrain-lr") { Description = "peak learning rate of pre-training" };
        var pretrainBatch = new Option<int?>("--pretrain-batch") { Description = "documents per pre-training step" };
        var directAnswers = new Option<string?>("--direct-answers") { Description = "estimate (default: answer-only corpus solutions are rounded to the ten) or exact" };
        var arch = new Option<string>("--arch") { Description = "qwen2 (dense) or deepseek_v3 (MLA + MoE + MTP, the same width)", DefaultValueFactory = _ => "qwen2" };
        var baseModel = new Option<string?>("--base") { Description = "start from this base model folder (another run's base/) instead of pre-training" };
        var grpoLr = new Option<double?>("--grpo-lr") { Description = "GRPO learning rate (default 1e-4)" };
        var loraR = new Option<int?>("--lora-r") { Description = "GRPO with LoRA adapters of this rank on all linear layers (use_peft) instead of full fine-tuning" };
        var loraAlpha = new Option<int>("--lora-alpha") { Description = "lora_alpha with --lora-r", DefaultValueFactory = _ => 32 };
        var cmd = new Command("zero", "R1-Zero on this CPU: pre-train a tiny base model on a synthetic task, run GRPO, compare held-out pass@1")
            { json, output, seed, threads, task, pretrainSteps, grpoSteps, digits, stepsFraction, pretrainLr, pretrainBatch, directAnswers, arch, baseModel, grpoLr, loraR, loraAlpha };
        cmd.SetAction(p => CliCommon.Run(p, () =>
        {
            var d = new ZeroOptions();
            var o = d with { OutputDir = p.GetValue(output)!, Seed = p.GetValue(seed), Threads = p.GetValue(threads), Task = p.GetValue(task)!, Arch = p.GetValue(arch)! };
            if (p.GetValue(pretrainSteps) is { } ps) o = o with { Pretrain = o.Pretrain with { Steps = ps } };
            if (p.GetValue(grpoSteps) is { } gs) o.Grpo.MaxSteps = gs;
            if (p.GetValue(digits) is { } dg) o = o with { Digits = dg };
            if (p.GetValue(stepsFraction) is { } sf) o = o with { StepsFraction = sf };
            if (p.GetValue(pretrainLr) is { } lr) o = o with { Pretrain = o.Pretrain with { LearningRate = lr } };
            if (p.GetValue(pretrainBatch) is { } pb) o = o with { Pretrain = o.Pretrain with { BatchSize = pb } };
            if (p.GetValue(directAnswers) is { } da)
                o = o with { DirectAnswers = da is "estimate" or "exact" ? da : throw new R1SharpException($"--direct-answers \"{da}\" is unknown (expected estimate or exact)") };
            if (p.GetValue(baseModel) is { } bm) o = o with { BaseModel = bm };
            if (p.GetValue(grpoLr) is { } glr) o.Grpo.LearningRate = glr;
            if (p.GetValue(loraR) is { } r)
            {
                o.Grpo.UsePeft = true; o.Grpo.LoraR = r; o.Grpo.LoraAlpha = p.GetValue(loraAlpha);
                o.Grpo.LoraDropout = 0; o.Grpo.LoraTargetModules = ["all-linear"];
                o.Grpo.Validate("--lora-r");
            }
            o.Validate();
            var run = new ZeroRun(o);
            var err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            run.OnLog = m => err.MarkupLineInterpolated($"[grey]{m}[/]");
            run.OnGrpoStep = m => err.MarkupLineInterpolated(
                $"[grey]GRPO step {m["step"]}: reward {m["reward"]:F3}, accuracy {m.GetValueOrDefault("accuracy", m.GetValueOrDefault("rewards/code_accuracy/mean")):F3}, length {m["completions/mean_length"]:F1}, zero-std {m["frac_reward_zero_std"]:F2}, rollout {m["rollout_seconds"]:F1}s, update {m["update_seconds"]:F1}s[/]");
            ZeroSummary s = null!;
            err.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    run.OnProgress = (phase, done, total) =>
                    {
                        if (!tasks.TryGetValue(phase, out var t)) tasks[phase] = t = ctx.AddTask(phase, maxValue: total);
                        t.Value = done;
                    };
                    s = run.Run();
                });
            if (p.GetValue(json)) CliCommon.PrintJson(s);
            else
            {
                Console.WriteLine($"held-out pass@1 ({s.Problems} problems x {s.K} samples): base {s.BasePassAt1:P1} -> after GRPO {s.FinalPassAt1:P1} ({(s.FinalPassAt1 - s.BasePassAt1) * 100:+0.0;-0.0} points)");
                Console.WriteLine($"mean response length: {s.BaseMeanLength:F1} -> {s.FinalMeanLength:F1} tokens");
                Console.WriteLine($"wall time: {s.TotalSeconds:F0} s (pre-training {s.PretrainSeconds:F0} s, GRPO {s.GrpoSeconds:F0} s); CPU time {s.CpuSeconds:F0} s; load average at the end {s.LoadAverage:F1}");
                Console.WriteLine($"run folder: {s.OutputDir} (report.md, metrics.jsonl); model: {s.ModelDir}");
                Console.WriteLine($"look at it: ./r1 board {(p.GetValue(output)!.Contains(' ') ? $"\"{p.GetValue(output)}\"" : p.GetValue(output))}");
            }
            return 0;
        }));
        return cmd;
    }
}
