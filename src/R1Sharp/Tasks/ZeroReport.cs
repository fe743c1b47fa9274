using System.Text;
using R1Sharp.Training;

namespace R1Sharp.Tasks;

/// <summary>report.md of an `r1 zero` run: the numbers before and after RL, the curves, and sample completions of the
/// same held-out problems at the start and at the end. Written to a temporary name, then renamed.</summary>
public static class ZeroReport
{
    public static void Write(string dir, ZeroSummary s, EvalResult before, EvalResult after, List<Dictionary<string, double>> metrics, ZeroOptions o)
    {
        var plots = RunPlots.TryWrite(dir, metrics);
        var sb = new StringBuilder();
        sb.AppendLine("# R1-Zero on a CPU: run report").AppendLine();
        sb.AppendLine($"Task: {(o.Task == "code" ? CodeTask.Description(o.Digits, o.StepsFraction) + (o.DirectAnswers == "estimate" ? " Values given without the expression are round estimates (the sum to the nearest ten). " : " ") : $"{o.Digits}-digit addition; base corpus shows column steps in {o.StepsFraction:P0} of solutions, the others give " +
                      (o.DirectAnswers == "estimate" ? "a round estimate (the sum to the nearest ten). " : "the exact answer alone. "))}" +
                      $"Model: Qwen2, hidden {o.HiddenSize}, {o.Layers} layers. GRPO: loss_type {o.Grpo.LossType}, G={o.Grpo.NumGenerations}, " +
                      $"{o.Grpo.PromptsPerStep} prompts/step, {o.Grpo.MaxSteps} steps, lr {o.Grpo.LearningRate}, beta {o.Grpo.Beta}.").AppendLine();
        sb.AppendLine("| | base | after GRPO |").AppendLine("|---|---|---|");
        sb.AppendLine($"| held-out pass@1 ({s.Problems} problems × k={s.K}) | {s.BasePassAt1:P1} | {s.FinalPassAt1:P1} |");
        sb.AppendLine($"| mean response length (tokens) | {s.BaseMeanLength:F1} | {s.FinalMeanLength:F1} |");
        sb.AppendLine($"| well-formed (format reward) | {s.BaseFormatRate:P1} | {s.FinalFormatRate:P1} |").AppendLine();
        sb.AppendLine($"Wall time: pre-training {s.PretrainSeconds:F0} s, GRPO {s.GrpoSeconds:F0} s, total {s.TotalSeconds:F0} s " +
                      $"(CPU time {s.CpuSeconds:F0} s; load average {s.LoadAverage:F1} at the end).").AppendLine();
        foreach (var p in plots) sb.AppendLine($"![{Path.GetFileNameWithoutExtension(p)}]({Path.GetFileName(p)})");
        if (plots.Count > 0) sb.AppendLine();
        sb.AppendLine("## Training curve (every 5th step)").AppendLine();
        sb.AppendLine("| step | reward | accuracy | mean length | zero-std groups | clip ratio | entropy |").AppendLine("|---|---|---|---|---|---|---|");
        foreach (var m in metrics.Where(m => (int)m["step"] % 5 == 0 || m == metrics[^1]))
            sb.AppendLine($"| {m["step"]} | {m["reward"]:F3} | {m.GetValueOrDefault("accuracy", m.GetValueOrDefault("rewards/code_accuracy/mean")):F3} | {m["completions/mean_length"]:F1} | {m["frac_reward_zero_std"]:F2} | {m["clip_ratio"]:F3} | {m["entropy"]:F3} |");
        sb.AppendLine();
        Samples(sb, "Sample completions of the base model", before);
        Samples(sb, "Sample completions after GRPO", after);
        string path = Path.Combine(dir, "report.md");
        File.WriteAllText(path + ".tmp", sb.ToString());
        File.Move(path + ".tmp", path, overwrite: true);
    }

    static void Samples(StringBuilder sb, string title, EvalResult r)
    {
        sb.AppendLine($"## {title}").AppendLine();
        // The first sample of the first problems: the same problems before and after.
        foreach (var s in r.Samples.Where((_, i) => i % r.K == 0).Take(6))
            sb.AppendLine($"- `{s.Prompt}` (answer {s.Reference}) {(s.Correct ? "✓" : "✗")}: `{s.Completion.Trim()}`");
        sb.AppendLine();
    }
}
