using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Kernels;

/// <summary>
/// y = x·Wᵀ + b for a frozen quantized W with autograd through x (QLoRA, Dettmers et al. 2023: the 4-bit base is
/// frozen, but the gradient of the loss still flows through it to the adapters of the layers below). Forward is
/// <see cref="QuantLinear"/>; backward is ∂L/∂x = ∂L/∂y · W, taken through dequantised tiles of W
/// (<see cref="QuantPrefill.InputGradient"/>), so no float copy of W is kept. W gets no gradient; a bias, when it
/// wants one, gets Σ ∂L/∂y over the rows.
/// </summary>
public sealed class QuantLinearFunction : autograd.SingleTensorFunction<QuantLinearFunction>
{
    public override string Name => "QuantLinearBackward";

    public static bool NeedsGrad(Tensor x, Tensor? bias) => is_grad_enabled() && (x.requires_grad || bias?.requires_grad == true);

    public static Tensor Apply(Tensor x, QuantMatrix w, Tensor? bias) =>
        bias is null ? apply(x, w) : apply(x, w, bias);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (QuantMatrix)vars[1];
        var bias = vars.Length > 2 ? (Tensor)vars[2] : null;
        ctx.save_data("w", w);
        ctx.save_data("x_dtype", x.dtype);
        ctx.save_data("has_bias", bias is not null);
        return QuantLinear.Apply(x, w, bias);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var w = (QuantMatrix)ctx.get_data("w");
        var dtype = (ScalarType)ctx.get_data("x_dtype");
        var gx = QuantPrefill.InputGradient(grad, w).to(dtype);
        if (!(bool)ctx.get_data("has_bias")) return [gx, null!];
        using var flat = grad.reshape(-1, grad.size(-1));
        return [gx, null!, flat.sum(0)];
    }
}
