using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// A preallocated key/value cache: per layer, keys and values of shape [batch, kv_heads, capacity, head_dim],
/// allocated once and written in place. All rows share one write position (<see cref="Length"/>); prompts of
/// different lengths are left-padded and the padding is masked (see <see cref="AttentionMask"/>).
/// </summary>
public sealed class KvCache : IDisposable
{
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }
    public int Length { get; private set; }
    public int Capacity { get; }
    public int Batch { get; }

    public KvCache(ModelConfig cfg, int batch, int capacity, ScalarType dtype, Device device)
    {
        Batch = batch; Capacity = capacity;
        Keys = new Tensor[cfg.NumHiddenLayers];
        Values = new Tensor[cfg.NumHiddenLayers];
        for (int l = 0; l < cfg.NumHiddenLayers; l++)
        {
            Keys[l] = zeros([batch, cfg.NumKeyValueHeads, capacity, cfg.HeadDim], dtype: dtype, device: device);
            Values[l] = zeros([batch, cfg.NumKeyValueHeads, capacity, cfg.HeadDim], dtype: dtype, device: device);
        }
    }

    public long Bytes => Keys.Sum(k => k.NumberOfElements * k.ElementSize) * 2;

    /// <summary>Writes k and v ([B, kv, T, hd]) at the current position of layer l and returns the whole filled prefix.</summary>
    public (Tensor k, Tensor v) Append(int layer, Tensor k, Tensor v)
    {
        int t = (int)k.shape[2];
        if (Length + t > Capacity) throw new R1SharpException($"KV cache overflow: {Length} + {t} tokens > capacity {Capacity}");
        Keys[layer].narrow(2, Length, t).copy_(k);
        Values[layer].narrow(2, Length, t).copy_(v);
        return (Keys[layer].narrow(2, 0, Length + t), Values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Moves the write position forward once every layer has appended the step's tokens.</summary>
    public void Advance(int tokens) => Length += tokens;

    public void Reset() => Length = 0;

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
