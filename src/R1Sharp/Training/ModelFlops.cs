using R1Sharp.Models;

namespace R1Sharp.Training;

/// <summary>
/// Matmul FLOPs of a decoder pass, 2 per multiply-add, counted from the shapes actually computed by each family
/// (<see cref="ModelConfig.ForwardFlops"/>): projections, attention over all T keys (the training forward computes
/// the full T×T and masks it), and the vocabulary projection of the columns kept for the loss. Element-wise work
/// (norms, RoPE, softmax) is left out, as in the usual model-FLOPs utilisation (PaLM, Chowdhery et al. 2022, app. B).
/// </summary>
public static class ModelFlops
{
    public static double Forward(ModelConfig c, long rows, long length, long logitColumns) => c.ForwardFlops(rows, length, logitColumns);

    /// <summary>Backward costs twice the forward (gradients of inputs and of weights).</summary>
    public const int TrainingMultiplier = 3;
}
