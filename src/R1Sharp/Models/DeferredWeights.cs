namespace R1Sharp.Models;

/// <summary>
/// Building a model without its weight matrices: while a scope from <see cref="Begin"/> is open, the
/// <see cref="Linear"/> and <see cref="Embedding"/> modules built on this thread allocate no matrix (biases and norms,
/// a few KB each, are allocated as usual), and the loader then attaches each one: a GGUF file's quantized blocks in
/// place, or a dense tensor read from it. So a 1.5B model loads from a 1.1 GB Q4_K_M file without first allocating
/// 7 GB of float32 zeros (Hugging Face accelerate's init_empty_weights and PyTorch's meta device serve the same end).
/// Scoped to the thread, as no_grad is, so a model built on another thread meanwhile is not affected.
/// </summary>
public static class DeferredWeights
{
    [ThreadStatic] static int depth;

    /// <summary>Whether modules built now on this thread leave their matrices to be attached.</summary>
    public static bool Active => depth > 0;

    public static IDisposable Begin()
    {
        depth++;
        return new Scope();
    }

    sealed class Scope : IDisposable
    {
        bool closed;
        public void Dispose()
        {
            if (closed) return;
            closed = true;
            depth--;
        }
    }
}
