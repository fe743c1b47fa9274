using TorchSharp;
using R1Sharp.Training;
using static TorchSharp.torch;

namespace R1Sharp.Tests.Training;

/// <summary>The trainer's AdamW against TorchSharp's own torch.optim.AdamW (libtorch's implementation), step by step,
/// with decoupled weight decay on the matrix and none on the vector.</summary>
public class AdamWTests
{
    [Theory]
    [InlineData(true)]   // contiguous float32: the one-pass update
    [InlineData(false)]  // a transposed parameter: the libtorch-operator update
    public void StepsMatchTorchOptimAdamW(bool contiguous)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(21);
        var w0 = randn([24, 17], generator: g); // 408 elements: full vectors and a scalar tail
        var b0 = randn([17], generator: g);
        var w = (contiguous ? w0.clone() : w0.t().contiguous().t()).requires_grad_(true);
        Assert.Equal(contiguous, w.is_contiguous());
        var b = b0.clone().requires_grad_(true);
        var ours = new AdamW([("w", w), ("b", b)]) { Beta2 = 0.99, WeightDecay = 0.1 };
        var wr = new TorchSharp.Modules.Parameter(w0.clone());
        var br = new TorchSharp.Modules.Parameter(b0.clone());
        var refW = optim.AdamW([wr], lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1);
        var refB = optim.AdamW([br], lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0);
        for (int step = 0; step < 6; step++)
        {
            var gw = randn([24, 17], generator: g) * (step + 1);
            var gb = randn([17], generator: g);
            w.grad = contiguous ? gw.clone() : gw.t().contiguous().t();
            b.grad = gb.clone();
            wr.grad = gw.clone();
            br.grad = gb.clone();
            ours.Step(0.01);
            refW.step();
            refB.step();
            double errW = (w - wr).abs().max().item<float>(), errB = (b - br).abs().max().item<float>();
            Assert.True(errW < 1e-6 && errB < 1e-6, $"step {step + 1}: max |difference| {errW:E2} (matrix), {errB:E2} (vector)");
        }
        Assert.Equal(6, ours.StepCount);
    }

    [Fact]
    public void GradNormIsTheJointL2NormAndNaNWhenAnyGradientIs()
    {
        using var scope = NewDisposeScope();
        var a = zeros(3, 4).requires_grad_(true);
        var c = zeros(5).requires_grad_(true);
        var opt = new AdamW([("a", a), ("c", c)]);
        a.grad = full(3, 4, 2f);   // 12 · 4 = 48
        c.grad = full(5, 1f);      // 5
        Assert.Equal(Math.Sqrt(53), opt.GradNorm(), 5);
        c.grad[2] = float.NaN;
        Assert.True(double.IsNaN(opt.GradNorm()));
    }
}
