using R1Sharp.Kernels;
using R1Sharp.Models.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// nn.Linear with the same parameter names (weight [out, in], bias [out]); the product is <see cref="Ops.Linear(Tensor, LinearWeight, Tensor?)"/>.
/// The weight is a dense parameter (float32 or bfloat16, what training and safetensors checkpoints use) or, attached by
/// a GGUF load, a quantized matrix read in place from the file (<see cref="Attach(QuantMatrix)"/>): the model code is
/// the same either way, so every family runs quantized. Weights start at zero: a model is either loaded from a
/// checkpoint or initialised with <see cref="CausalLM.InitializeRandom"/>, so a random init here would only cost time.
/// </summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    /// <summary>The dense weight, or null when the layer holds a quantized matrix (or, while a
    /// <see cref="DeferredWeights"/> load is attaching them, none yet). A field named as the parameter, as TorchSharp's
    /// module.to(device) replaces parameters through fields of their name.</summary>
    public TorchSharp.Modules.Parameter? weight;
    public readonly TorchSharp.Modules.Parameter? bias;
    QuantMatrix? quantized;

    public long InFeatures { get; }
    public long OutFeatures { get; }

    /// <param name="dtype">the parameters' type, given explicitly: libtorch's default dtype is one setting for the
    /// whole process, so a module built from it takes whatever another thread last set there</param>
    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32) : base("Linear")
    {
        InFeatures = inFeatures; OutFeatures = outFeatures;
        if (!DeferredWeights.Active)
        {
            weight = new TorchSharp.Modules.Parameter(zeros(outFeatures, inFeatures, dtype: dtype));
            register_parameter("weight", weight);
        }
        if (hasBias)
        {
            bias = new TorchSharp.Modules.Parameter(zeros(outFeatures, dtype: dtype));
            register_parameter("bias", bias);
        }
    }

    /// <summary>The quantized matrix, when the layer holds one.</summary>
    public QuantMatrix? Quantized => quantized;

    /// <summary>What the product reads: the quantized matrix or the dense parameter.</summary>
    public LinearWeight Weight => quantized is { } q ? q
        : weight is { } w ? w : throw new InvalidOperationException($"Linear [{OutFeatures}, {InFeatures}] has no weight attached");

    /// <summary>LoRA adapters on this layer (<see cref="LoraModel"/>), added to its product; null: none.</summary>
    public LoraLayer? Lora { get; set; }

    public override Tensor forward(Tensor x)
    {
        var y = quantized is null ? Ops.Linear(x, weight!, bias) : Ops.Linear(x, quantized, bias);
        return Lora is { } lora ? lora.Apply(x, y) : y;
    }

    /// <summary>Holds <paramref name="matrix"/> (inference only) in place of a dense weight, which is released.</summary>
    public void Attach(QuantMatrix matrix)
    {
        CheckShape(matrix.Rows, matrix.Cols, matrix.Name);
        ReleaseDense();
        quantized = matrix;
    }

    /// <summary>Holds <paramref name="dense"/> [out, in] as the weight parameter (it is not copied).</summary>
    public void Attach(Tensor dense)
    {
        CheckShape(dense.size(0), dense.size(1), "dense weight");
        ReleaseDense();
        quantized = null;
        weight = new TorchSharp.Modules.Parameter(dense);
        register_parameter("weight", weight);
    }

    void CheckShape(long rows, long cols, string what)
    {
        if (rows != OutFeatures || cols != InFeatures)
            throw new R1SharpException($"{what}: shape [{rows}, {cols}] does not fit a linear layer [{OutFeatures}, {InFeatures}]");
    }

    void ReleaseDense()
    {
        if (weight is null) return;
        ConditionallyRegisterParameter("weight", (Tensor)null!);
        weight.Dispose();
        weight = null;
    }

    /// <summary>Several projections of the same x (q/k/v, gate/up) in one dispatch: <see cref="Ops.Linears(Tensor, LinearWeight[], Tensor?[])"/>.</summary>
    public static Tensor[] ApplyMany(Tensor x, params Linear[] layers)
    {
        var weights = new LinearWeight[layers.Length];
        var biases = new Tensor?[layers.Length];
        for (int i = 0; i < layers.Length; i++) { weights[i] = layers[i].Weight; biases[i] = layers[i].bias; }
        var outputs = Ops.Linears(x, weights, biases);
        Tensor? xf = null; // x in float32 for the adapters, converted once for all the layers that read it
        for (int i = 0; i < layers.Length; i++)
            if (layers[i].Lora is { } lora)
            {
                if (lora.AppliesOne) xf ??= LoraLayer.ToFloat32(x);
                outputs[i] = lora.Apply(x, outputs[i], xf);
            }
        return outputs;
    }
}
