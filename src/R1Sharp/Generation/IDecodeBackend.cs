using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>
/// The model side of continuous batching: a fixed number of slots (rows of one KV cache), each with its own length.
/// One step feeds every busy slot its new tokens (a whole prompt for a slot that just joined, one token for a slot
/// that is decoding) and returns next-token logits for those slots. The batching loop is written against this so
/// that its scheduling can be tested with a scripted stand-in as well as with a real model.
/// </summary>
public interface IDecodeBackend : IDisposable
{
    int Slots { get; }
    /// <summary>Tokens one slot can hold: prompt plus completion.</summary>
    int Capacity { get; }
    /// <summary>Tokens already in a slot's cache.</summary>
    int RowLength(int slot);

    /// <summary>feeds[slot] is null for an idle slot. Returns float32 logits [busy slots, vocab] in slot order.
    /// Called only from the batching loop's thread, inside its dispose scope.</summary>
    Tensor Step(IReadOnlyList<int[]?> feeds);

    /// <summary>A step in which only the slots with sample[slot] need logits (the others are fed a prompt chunk that
    /// is not their last): returns [sampled slots, vocab] in slot order, or, from a backend that does not skip them,
    /// [busy slots, vocab] as <see cref="Step(IReadOnlyList{int[]})"/>.</summary>
    Tensor Step(IReadOnlyList<int[]?> feeds, IReadOnlyList<bool> sample) => Step(feeds);

    /// <summary>Forgets a slot's cache so a new sequence can start in it.</summary>
    void Release(int slot);

    /// <summary>Loads new weights from a model folder (any thread, while steps go on) and checks they fit.</summary>
    IDisposable PrepareWeights(string modelPath);

    /// <summary>Puts prepared weights in service (loop thread, between steps) and disposes the old ones.</summary>
    void SwapWeights(IDisposable prepared);
}
