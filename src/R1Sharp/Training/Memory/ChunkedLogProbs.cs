using R1Sharp.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training.Memory;

/// <summary>
/// log p(target) = logitsₜ − logsumexp(logits) for hidden rows h [N, d] and the output projection W [V, d], with the
/// logits (h·Wᵀ in float32) computed a chunk of rows at a time and never kept: forward keeps only the logsumexp of each
/// row; backward recomputes each chunk's logits and forms ∂/∂logits = g·(onehot(target) − softmax) there, then
/// ∂h = ∂logits·W and, when W trains, ∂W = ∂logitsᵀ·h. For 8 × 1024 tokens over a 152k vocabulary the [N, V] logits
/// alone are 5 GB in float32; chunked, a chunk's. The same quantities as log_softmax + gather (up to float rounding).
/// Forward also gives each row's entropy and whether the arg-max is the target (metrics, no gradient).
/// </summary>
public sealed class ChunkedLogProbs : autograd.SingleTensorFunction<ChunkedLogProbs>
{
    public override string Name => "ChunkedLogProbsBackward";

    /// <summary>What forward measured besides the log-probs.</summary>
    sealed class Side { public Tensor? Entropy, Correct; }

    /// <summary>Log-probs [N] (differentiable through h and a dense trainable W), entropy [N] and arg-max hits [N]
    /// (bool) of the rows.</summary>
    public static (Tensor LogProbs, Tensor Entropy, Tensor Correct) Compute(Tensor h, LinearWeight w, Tensor targets, int chunkRows)
    {
        var side = new Side();
        var logp = w.Dense is { } dense ? apply(h, dense, targets, chunkRows, side) : apply(h, w.Quantized!, targets, chunkRows, side);
        return (logp, side.Entropy!, side.Correct!);
    }

    static Tensor ChunkLogits(Tensor h, object w) => (w is Tensor t ? Ops.Linear(h, t) : Ops.Linear(h, (QuantMatrix)w)).to(ScalarType.Float32);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var h = (Tensor)vars[0];
        var w = vars[1];
        var targets = (Tensor)vars[2];
        int chunk = (int)vars[3];
        var side = (Side)vars[4];
        long n = h.size(0);
        var logp = empty(n, dtype: ScalarType.Float32, device: h.device);
        var lse = empty(n, dtype: ScalarType.Float32, device: h.device);
        var entropy = empty(n, dtype: ScalarType.Float32, device: h.device);
        var correct = empty(n, dtype: ScalarType.Bool, device: h.device);
        for (long r = 0; r < n; r += chunk)
        {
            using var scope = NewDisposeScope();
            long rows = Math.Min(chunk, n - r);
            var logits = ChunkLogits(h.narrow(0, r, rows), w);
            var t = targets.narrow(0, r, rows);
            var l = logits.logsumexp(-1);
            lse.narrow(0, r, rows).copy_(l);
            logp.narrow(0, r, rows).copy_(logits.gather(-1, t.unsqueeze(-1)).squeeze(-1) - l);
            // H = lse − Σ p·logits
            entropy.narrow(0, r, rows).copy_(l - (logits - l.unsqueeze(-1)).exp_().mul_(logits).sum(-1));
            correct.narrow(0, r, rows).copy_(logits.argmax(-1).eq(t));
        }
        side.Entropy = entropy; side.Correct = correct;
        // A dense W goes with the saved tensors (TorchSharp keeps tensors only there); a quantized one as data.
        if (w is Tensor dw) ctx.save_for_backward([h, targets, lse, dw]);
        else { ctx.save_for_backward([h, targets, lse]); ctx.save_data("w", w); }
        ctx.save_data("chunk", chunk);
        return logp;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var saved = ctx.get_saved_variables();
        var (h, targets, lse) = (saved[0], saved[1], saved[2]);
        object w = saved.Count > 3 ? saved[3] : ctx.get_data("w");
        int chunk = (int)ctx.get_data("chunk");
        using var noGrad = no_grad();
        var dense = w as Tensor;
        bool wantW = dense is not null && dense.requires_grad;
        long n = h.size(0);
        var gh = zeros_like(h);
        Tensor? gw = wantW ? zeros_like(dense!) : null;
        for (long r = 0; r < n; r += chunk)
        {
            using var scope = NewDisposeScope();
            long rows = Math.Min(chunk, n - r);
            var hc = h.narrow(0, r, rows);
            var logits = ChunkLogits(hc, w);
            var g = grad.narrow(0, r, rows).to(ScalarType.Float32).unsqueeze(-1);
            // ∂ log pₜ / ∂ logits = onehot(t) − softmax(logits)
            var dl = (logits - lse.narrow(0, r, rows).unsqueeze(-1)).exp_().mul_(g).neg_();
            dl.scatter_add_(-1, targets.narrow(0, r, rows).unsqueeze(-1), g);
            var dh = dense is not null ? dl.to(dense.dtype).matmul(dense) : QuantPrefill.InputGradient(dl, (QuantMatrix)w);
            gh.narrow(0, r, rows).copy_(dh);
            if (gw is not null) Ops.AddInPlace(gw, dl.t().to(dense!.dtype).matmul(hc.to(dense.dtype)));
        }
        return [gh, gw!, null!, null!, null!];
    }
}
