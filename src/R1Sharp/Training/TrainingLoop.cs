namespace R1Sharp.Training;

/// <summary>A trainer the one training loop can drive (GRPO, SFT): steps counted in <see cref="State"/> up to
/// <see cref="MaxSteps"/>, atomic checkpoints every <see cref="SaveSteps"/>.</summary>
public interface ITrainer
{
    TrainerState State { get; }
    /// <summary>The metrics rows so far (those of a resumed run's earlier sessions included).</summary>
    MetricsLog Metrics { get; }
    int MaxSteps { get; }
    /// <summary>0: only the final checkpoint.</summary>
    int SaveSteps { get; }
    bool Done { get; }
    /// <summary>One optimizer step; returns the metrics row it logged.</summary>
    Dictionary<string, double> Step();
    void SaveCheckpoint();
}

/// <summary>
/// The training loop, once for every trainer and caller (`r1 train grpo|sft`, `r1 zero`, the pipeline): steps to
/// max_steps from wherever the trainer's state is (a resumed checkpoint included), a checkpoint every save_steps and
/// one at the end, so a kill at any moment loses at most save_steps steps.
/// </summary>
public static class TrainingLoop
{
    /// <param name="onStep">after each step, with its metrics (progress displays, reports)</param>
    /// <param name="shouldStop">checked after each step with the step count: true stops without the final checkpoint
    /// (tests, cancellation)</param>
    public static void Run(ITrainer trainer, Action<Dictionary<string, double>>? onStep = null, Func<int, bool>? shouldStop = null)
    {
        while (!trainer.Done)
        {
            var row = trainer.Step();
            onStep?.Invoke(row);
            if (trainer.SaveSteps > 0 && trainer.State.Step % trainer.SaveSteps == 0 && !trainer.Done) trainer.SaveCheckpoint();
            if (shouldStop?.Invoke(trainer.State.Step) == true) return;
        }
        trainer.SaveCheckpoint();
    }
}
