namespace R1Sharp.Training;

/// <summary>Learning rate at an optimizer step: linear warm-up, then constant, linear or cosine decay to
/// min_lr_ratio × peak (transformers' get_cosine_schedule_with_warmup with a floor).</summary>
public sealed record LrSchedule(double Peak, int WarmupSteps, int TotalSteps, string Type = "cosine", double MinRatio = 0.0)
{
    public double At(long step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return Peak * (step + 1) / WarmupSteps;
        double progress = TotalSteps <= WarmupSteps ? 1 : Math.Clamp((double)(step - WarmupSteps) / (TotalSteps - WarmupSteps), 0, 1);
        double factor = Type switch
        {
            "constant" or "constant_with_warmup" => 1,
            "linear" => 1 - progress,
            "cosine" => 0.5 * (1 + Math.Cos(Math.PI * progress)),
            _ => throw new R1SharpException($"lr_scheduler_type \"{Type}\" is unknown (expected constant, linear or cosine)"),
        };
        return Peak * (MinRatio + (1 - MinRatio) * factor);
    }
}
