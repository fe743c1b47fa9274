using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Training.Memory;

/// <summary>
/// A training forward pass to the final hidden states and its backward. Plainly, autograd keeps every layer's
/// activations until backward. With activation checkpointing (Chen et al. 2016, "Training deep nets with sublinear
/// memory cost"; transformers' gradient_checkpointing per decoder layer) the layers run without autograd and keep only
/// each layer's input; <see cref="Backward"/> then walks the layers from the last, recomputing each with autograd from
/// its saved input and back-propagating the gradient of its output, so at most one layer's activations exist at a
/// time. The result is the same gradients (the recomputation is the same arithmetic, and it replays the forward's
/// random state, so dropout draws the same masks) for one extra forward pass.
/// TorchSharp has no torch.utils.checkpoint, and this needs no re-entrant autograd: the layers are the segments.
/// </summary>
public sealed class TrainingForward
{
    /// <summary>Final hidden states [B, T, hidden], differentiable.</summary>
    public Tensor Hidden { get; }

    readonly DecoderSegments? segments;
    readonly List<Tensor> inputs = [];
    readonly List<Tensor> rngStates = [];
    readonly List<Tensor> dropoutStates = []; // the adapters' dropout generator (LoraRouting), beside the global one
    readonly Generator? dropout;
    readonly Tensor? last;

    TrainingForward(Tensor hidden) => Hidden = hidden;

    TrainingForward(CausalLM model, DecoderSegments segments)
    {
        this.segments = segments;
        dropout = model.Lora?.Routing.DropoutGenerator;
        using (no_grad())
        {
            var h = segments.Embed();
            foreach (var layer in segments.Layers)
            {
                inputs.Add(h);
                // The random state each layer starts from, so that its recomputation draws the same dropout masks
                // (torch.utils.checkpoint's preserve_rng_state).
                rngStates.Add(torch.random.get_rng_state());
                if (dropout is not null) dropoutStates.Add(dropout.get_state());
                using var scope = NewDisposeScope();
                h = layer(h).MoveToOuterDisposeScope();
            }
            last = h.detach().requires_grad_(true);
        }
        Hidden = segments.Norm(last);
    }

    public static TrainingForward Run(CausalLM model, Tensor ids, Tensor positions, Tensor mask, TrainingMemory memory)
    {
        if (!memory.GradientCheckpointing || !is_grad_enabled()) return new TrainingForward(model.Hidden(ids, positions, mask, cache: null));
        var segments = model.Segments(ids, positions, mask)
            ?? throw new R1SharpException($"gradient_checkpointing is not available for model_type {model.Config.ModelType} yet (its layers are not cut into segments)");
        return new TrainingForward(model, segments);
    }

    /// <summary>Back-propagates <paramref name="loss"/> (a scalar that depends on <see cref="Hidden"/>) into every
    /// parameter that wants a gradient.</summary>
    public void Backward(Tensor loss)
    {
        loss.backward();
        if (segments is null) return;
        if (last!.grad is not { } g0) return;
        var g = g0.detach().clone();
        // The recomputations replay the forward's random draws and leave the generator where the forward left it.
        using var after = torch.random.get_rng_state();
        using var dropoutAfter = dropout?.get_state();
        try
        {
            for (int i = segments.Layers.Count - 1; i >= 0; i--)
            {
                using var scope = NewDisposeScope();
                var x = inputs[i].detach().requires_grad_(true);
                torch.random.set_rng_state(rngStates[i]);
                if (dropout is not null) dropout.set_state(dropoutStates[i]);
                var y = segments.Layers[i](x);
                y.backward([g]);
                var next = x.grad is { } gx ? gx.detach().clone().MoveToOuterDisposeScope() : null;
                g.Dispose();
                if (next is null) return; // nothing below this layer wants a gradient
                g = next;
            }
        }
        finally { torch.random.set_rng_state(after); if (dropout is not null) dropout.set_state(dropoutAfter!); }
        using (var scope = NewDisposeScope())
        {
            var e = segments.Embed();
            if (e.requires_grad) e.backward([g]);
        }
        g.Dispose();
    }
}
