using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// A weight matrix [out, in] as the linear dispatch (<see cref="Ops.Linear(Tensor, LinearWeight, Tensor?)"/>) takes
/// it: a dense libtorch tensor (float32 or bfloat16, trainable; every safetensors checkpoint) or a
/// <see cref="QuantMatrix"/> of GGUF blocks read in place (inference only). Exactly one of the two is set.
/// </summary>
public readonly record struct LinearWeight
{
    public Tensor? Dense { get; }
    public QuantMatrix? Quantized { get; }

    public LinearWeight(Tensor dense) => Dense = dense ?? throw new ArgumentNullException(nameof(dense));
    public LinearWeight(QuantMatrix quantized) => Quantized = quantized ?? throw new ArgumentNullException(nameof(quantized));

    public static implicit operator LinearWeight(Tensor dense) => new(dense);
    public static implicit operator LinearWeight(QuantMatrix quantized) => new(quantized);

    public long OutFeatures => Quantized?.Rows ?? Dense!.size(0);
    public long InFeatures => Quantized?.Cols ?? Dense!.size(1);

    public override string ToString() => Quantized?.ToString() ?? $"{Dense!.dtype} [{OutFeatures}, {InFeatures}]";
}
