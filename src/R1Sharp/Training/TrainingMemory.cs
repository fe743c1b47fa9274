namespace R1Sharp.Training;

/// <summary>How a trainer's forward and backward passes trade compute for memory: activation checkpointing per
/// decoder layer (<see cref="Memory.TrainingForward"/>) and the vocabulary projection in chunks of rows
/// (<see cref="Memory.ChunkedLogProbs"/>). The default keeps everything (the fastest).</summary>
public sealed record TrainingMemory(bool GradientCheckpointing = false, int LogprobChunkSize = 0)
{
    public static TrainingMemory Default { get; } = new();
}
