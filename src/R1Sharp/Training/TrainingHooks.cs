namespace R1Sharp.Training;

/// <summary>What a caller hooks into a training run (<see cref="Sft.SftRun"/>, <see cref="GrpoRun"/>, distillation):
/// log lines, the trainer once it is built and resumed (progress totals), each step's metrics, and when to stop early.</summary>
public sealed record TrainingHooks
{
    public Action<string>? Log { get; init; }
    public Action<ITrainer>? Started { get; init; }
    public Action<ITrainer, Dictionary<string, double>>? Step { get; init; }
    /// <summary>Asked before the first step and after each: true ends training there (a time budget). The run still
    /// writes a final checkpoint and the model, so a later resume finds the budget spent and does nothing more.</summary>
    public Func<ITrainer, bool>? Stop { get; init; }

    /// <summary>Runs the trainer through <see cref="TrainingLoop"/> with these hooks.</summary>
    public void Train(ITrainer trainer)
    {
        Started?.Invoke(trainer);
        if (Stop?.Invoke(trainer) == true) { trainer.SaveCheckpoint(); return; }
        bool stopped = false;
        TrainingLoop.Run(trainer, row => Step?.Invoke(trainer, row), _ => stopped = Stop?.Invoke(trainer) == true);
        if (stopped) trainer.SaveCheckpoint();
    }
}

/// <summary>What a training run left: its folder, the final model (a Hugging Face folder), the steps taken and the
/// metrics rows (the resumed ones included).</summary>
public sealed record TrainingResult(string OutputDir, string ModelDir, int Steps, IReadOnlyList<Dictionary<string, double>> Metrics)
{
    public Dictionary<string, double>? Last => Metrics.Count == 0 ? null : Metrics[^1];

    /// <summary>Wall-clock seconds the steps took (rollouts and updates; not loading, saving or evaluating), summed over
    /// every session of a resumed run.</summary>
    public double TrainingSeconds => StepSeconds(Metrics);

    public static double StepSeconds(IEnumerable<Dictionary<string, double>> metrics) =>
        metrics.Sum(m => m.GetValueOrDefault("rollout_seconds") + m.GetValueOrDefault("update_seconds") + m.GetValueOrDefault("sync_seconds"));
}
