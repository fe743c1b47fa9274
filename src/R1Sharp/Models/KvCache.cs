using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// A preallocated key/value cache: per layer, keys and values of shape [batch, kv_heads, capacity, head_dim],
/// allocated once and written in place. Each row has its own length: a batch generated together shares one write
/// position (prompts of different lengths are left-padded and the padding is masked, see <see cref="AttentionMask"/>),
/// while a server reusing rows as slots (continuous batching) lets lengths differ and restarts a row with
/// <see cref="SetRowLength"/>.
/// </summary>
public sealed class KvCache : IDisposable
{
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }
    int[] lengths;

    /// <summary>The longest row: keys 0..Length-1 hold data in some row.</summary>
    public int Length => lengths.Max();
    public int Capacity { get; }
    public int Batch { get; private set; }

    public KvCache(ModelConfig cfg, int batch, int capacity, ScalarType dtype, Device device)
    {
        Batch = batch; Capacity = capacity;
        lengths = new int[batch];
        Keys = new Tensor[cfg.NumHiddenLayers];
        Values = new Tensor[cfg.NumHiddenLayers];
        for (int l = 0; l < cfg.NumHiddenLayers; l++)
        {
            Keys[l] = zeros([batch, cfg.NumKeyValueHeads, capacity, cfg.HeadDim], dtype: dtype, device: device);
            Values[l] = zeros([batch, cfg.NumKeyValueHeads, capacity, cfg.HeadDim], dtype: dtype, device: device);
        }
    }

    public long Bytes => Keys.Sum(k => k.NumberOfElements * k.ElementSize) * 2;

    public int RowLength(int row) => lengths[row];

    /// <summary>Where each row's next token goes (its absolute index).</summary>
    public int[] RowLengths() => (int[])lengths.Clone();

    /// <summary>Restarts (0) or truncates a row, e.g. when a server slot takes a new request.</summary>
    public void SetRowLength(int row, int length)
    {
        if (length < 0 || length > Capacity) throw new ArgumentOutOfRangeException(nameof(length));
        lengths[row] = length;
    }

    /// <summary>Writes k and v ([B, kv, T, hd]) at each row's current position in layer l and returns keys and
    /// values up to the longest row (shorter rows' tails are masked by the caller).</summary>
    public (Tensor k, Tensor v) Append(int layer, Tensor k, Tensor v)
    {
        int t = (int)k.size(2);
        int first = lengths[0], max = first;
        bool same = true;
        foreach (var l in lengths) { same &= l == first; max = Math.Max(max, l); }
        if (max + t > Capacity) throw new R1SharpException($"KV cache overflow: {max} + {t} tokens > capacity {Capacity}");
        if (same)
        {
            Keys[layer].narrow(2, first, t).copy_(k);
            Values[layer].narrow(2, first, t).copy_(v);
        }
        else
            for (int b = 0; b < Batch; b++)
            {
                Keys[layer][b].narrow(1, lengths[b], t).copy_(k[b]);
                Values[layer][b].narrow(1, lengths[b], t).copy_(v[b]);
            }
        return (Keys[layer].narrow(2, 0, max + t), Values[layer].narrow(2, 0, max + t));
    }

    /// <summary>Moves every row's write position forward once all layers have appended the step's tokens.</summary>
    public void Advance(int tokens)
    {
        for (int b = 0; b < Batch; b++) lengths[b] += tokens;
    }

    public void Reset() => Array.Clear(lengths);

    /// <summary>Keeps only the given rows (in that order), e.g. when sequences of a batch finish: later steps then
    /// compute and attend over the remaining rows only. One copy of the kept rows.</summary>
    public void KeepRows(int[] rows)
    {
        if (rows.Length == Batch && rows.Select((r, i) => r == i).All(x => x)) return;
        using var index = tensor(rows.Select(r => (long)r).ToArray(), device: Keys[0].device);
        for (int l = 0; l < Keys.Length; l++)
        {
            var (k, v) = (Keys[l], Values[l]);
            Keys[l] = k.index_select(0, index).DetachFromDisposeScope();
            Values[l] = v.index_select(0, index).DetachFromDisposeScope();
            k.Dispose(); v.Dispose();
        }
        lengths = rows.Select(r => lengths[r]).ToArray();
        Batch = rows.Length;
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
