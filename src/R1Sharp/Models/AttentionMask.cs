using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// Causal masks for left-padded batches. Row b's real tokens start at absolute index pad[b]; a query at absolute
/// index i sees keys j with pad[b] ≤ j ≤ i. A padding query sees only itself, so no softmax row is ever empty
/// (an empty row would put NaN into the cache and from there into real rows).
/// </summary>
public static class AttentionMask
{
    /// <summary>Additive float32 mask [B, 1, 1, T, L] (0 or -inf) for queries at absolute indices start..start+T-1
    /// over keys 0..L-1, broadcastable over kv-heads and query groups.</summary>
    public static Tensor Build(int[] pad, int start, int queries, int keys, Device device) =>
        Build(pad, Enumerable.Repeat(start, pad.Length).ToArray(), queries, keys, device);

    /// <summary>As <see cref="Build(int[], int, int, int, Device)"/>, with each row's queries starting at its own
    /// absolute index (rows of a continuously batched cache have different lengths).</summary>
    public static Tensor Build(int[] pad, int[] starts, int queries, int keys, Device device)
    {
        int b = pad.Length;
        var data = new float[b * queries * keys];
        for (int r = 0; r < b; r++)
            for (int q = 0; q < queries; q++)
            {
                int i = starts[r] + q;
                int row = (r * queries + q) * keys;
                for (int j = 0; j < keys; j++)
                {
                    bool visible = j == i || (j >= pad[r] && j <= i);
                    data[row + j] = visible ? 0f : float.NegativeInfinity;
                }
            }
        return tensor(data, [b, 1, 1, queries, keys], device: device);
    }

    /// <summary>Position ids for left-padded rows: real tokens count from 0, padding gets 0.</summary>
    public static Tensor Positions(int[] pad, int start, int queries, Device device) =>
        Positions(pad, Enumerable.Repeat(start, pad.Length).ToArray(), queries, device);

    public static Tensor Positions(int[] pad, int[] starts, int queries, Device device)
    {
        var data = new long[pad.Length * queries];
        for (int r = 0; r < pad.Length; r++)
            for (int q = 0; q < queries; q++)
                data[r * queries + q] = Math.Max(0, starts[r] + q - pad[r]);
        return tensor(data, [pad.Length, queries], device: device);
    }
}
