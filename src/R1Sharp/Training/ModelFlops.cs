using R1Sharp.Models;

namespace R1Sharp.Training;

/// <summary>
/// Matmul FLOPs of a decoder pass, 2 per multiply-add, counted from the shapes actually computed: every layer's
/// projections, attention scores and weighted values over all T keys (the training forward computes the full T×T and
/// masks it), and the vocabulary projection of the columns kept for the loss. Element-wise work (norms, RoPE, softmax)
/// is left out, as in the usual model-FLOPs utilisation (PaLM, Chowdhery et al. 2022, appendix B).
/// </summary>
public static class ModelFlops
{
    public static double Forward(ModelConfig c, long rows, long length, long logitColumns)
    {
        double d = c.HiddenSize, q = c.NumAttentionHeads * (double)c.HeadDim, kv = c.NumKeyValueHeads * (double)c.HeadDim;
        double projections = d * q + 2 * d * kv + q * d + 3 * d * c.IntermediateSize;
        double attention = 2 * q * length;
        double macs = rows * length * c.NumHiddenLayers * (projections + attention) + rows * logitColumns * d * c.VocabSize;
        return 2 * macs;
    }

    /// <summary>Backward costs twice the forward (gradients of inputs and of weights).</summary>
    public const int TrainingMultiplier = 3;
}
