using R1Sharp.Eval;
using R1Sharp.Training.Sampling;
using R1Sharp.Training.Sft;

namespace R1Sharp.Training.Distill;

/// <summary>
/// DeepSeek-R1's distillation (§2.4: the R1-Distill models are plain SFT of a student on the teacher's samples) as one
/// resumable job in one folder: the teacher's completions are rejection-sampled into sample/ (exactly `r1 sample`:
/// appended as they arrive, kept when verified and readable), then the student is fine-tuned on them into sft/
/// (exactly `r1 train sft`, resuming from its newest checkpoint). Running it again on the same folder pays only for
/// what is missing.
/// </summary>
public sealed class OffPolicyDistillation
{
    public required string OutputDir { get; init; }
    public required IReadOnlyList<BenchProblem> Problems { get; init; }
    public required EvalSettings Sampling { get; init; }
    public int K { get; init; } = 4;
    /// <summary>Accepted completions kept per prompt, shortest first (0: all).</summary>
    public int Keep { get; init; }
    public ReadabilityFilter Filter { get; init; } = new();
    /// <summary>The SFT hyper-parameters; model_name_or_path is the student. dataset_path and output_dir are set here.</summary>
    public required SftConfig Sft { get; init; }

    public string SampleDir => Path.Combine(OutputDir, "sample");
    public string SftDir => Path.Combine(OutputDir, "sft");

    /// <summary>The teacher's samples, judged, into sample/sft.jsonl.</summary>
    public Task<SamplingSummary> SampleAsync(IEvalBackend teacher, Action<EvalProgress>? progress = null, CancellationToken cancel = default) =>
        RejectionSampling.RunAsync(Problems, K, Sampling, teacher, Filter, Keep, SampleDir, progress, cancel);

    /// <summary>SFT of the student on the kept samples (after <see cref="SampleAsync"/>).</summary>
    public TrainingResult Train(SamplingSummary sampled, TrainingHooks? hooks = null)
    {
        if (sampled.Kept == 0)
            throw new R1SharpException($"{Path.Combine(SampleDir, RejectionSampling.SummaryFile)}: none of the teacher's {sampled.Samples} samples was " +
                $"kept ({string.Join(", ", sampled.Verdicts.Select(v => $"{v.Key} {v.Value}"))}); nothing to distil");
        Sft.DatasetPath = Path.Combine(SampleDir, RejectionSampling.DatasetFile);
        Sft.OutputDir = SftDir;
        return SftRun.Run(Sft, "r1 distill", resume: true, hooks);
    }
}
