using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// The cache of multi-head latent attention (DeepSeek-V2 §2.1.2): per layer and position, only the compressed latent
/// c_KV (kv_lora_rank values, after kv_a_layernorm) and the decoupled RoPE key k_pe (qk_rope_head_dim values, after
/// RoPE) that every head shares, stored side by side as [maxBatch, 1, capacity, kv_lora_rank + qk_rope_head_dim]. Per
/// token that is layers × (kv_lora_rank + qk_rope_head_dim) values, against layers × 2 × heads × head_dim for
/// standard multi-head attention (DeepSeek-V3: 576 against 32 768 per layer). The "1" is the single key head the
/// absorbed attention reads (<see cref="Kernels.Ops.LatentAttention"/>).
/// </summary>
public sealed class MlaCache : ModelCache
{
    /// <summary>Per layer: [maxBatch, 1, capacity, kv_lora_rank + qk_rope_head_dim], latent first, then k_pe.</summary>
    public Tensor[] Latents { get; }
    public int KvLoraRank { get; }
    readonly int width;
    Tensor? writeIndex;     // flat row indices of a step's writes when row lengths differ
    (int Version, int T) writeIndexKey = (-1, 0);

    public MlaCache(int layers, int kvLoraRank, int ropeDim, int maxBatch, int capacity, ScalarType dtype, Device device) : base(maxBatch, capacity)
    {
        KvLoraRank = kvLoraRank;
        width = kvLoraRank + ropeDim;
        Latents = new Tensor[layers];
        for (int l = 0; l < layers; l++) Latents[l] = zeros([maxBatch, 1, capacity, width], dtype: dtype, device: device);
    }

    public override long Bytes => Latents.Sum(t => t.NumberOfElements * t.ElementSize);

    /// <summary>Writes [Batch, T, rank + rope] at each row's current length in layer l and returns rows 0..Batch-1 up to
    /// the longest row, [Batch, 1, L, rank + rope] (shorter rows' tails are masked by the caller).</summary>
    public Tensor Append(int layer, Tensor entries)
    {
        int t = (int)entries.size(1), b = Batch;
        if (entries.size(0) != b) throw new ArgumentException($"a step over {entries.size(0)} rows against a cache using {b}");
        int max = CheckRoom(t);
        var cache = Latents[layer];
        if (UniformLengths(out int first))
            cache.narrow(0, 0, b).narrow(2, first, t).copy_(entries.unsqueeze(1));
        else
            cache.view(-1, width).index_copy_(0, WriteIndex(t, cache.device), entries.reshape(-1, width));
        return cache.narrow(0, 0, b).narrow(2, 0, max + t);
    }

    /// <summary>For a decode kernel that writes a step's entries itself (<see cref="Kernels.MlaDecode"/>): checks that t
    /// new tokens fit, and returns layer l's tensor [maxBatch, 1, capacity, rank + rope], where each row in use writes
    /// (its length) and how many positions the step attends (the longest row's, the step's included).</summary>
    public Tensor Reserve(int layer, int t, out int[] positions, out int length)
    {
        length = CheckRoom(t) + t;
        positions = RowLengths();
        return Latents[layer];
    }

    /// <summary>For each (row, j) of a [Batch, t] step, its row in the cache viewed as [rows·capacity, width].</summary>
    Tensor WriteIndex(int t, Device device)
    {
        if (writeIndexKey == (LayoutVersion, t) && writeIndex is not null) return writeIndex;
        var idx = new long[Batch * t];
        for (int r = 0, i = 0; r < Batch; r++)
            for (int j = 0; j < t; j++) idx[i++] = (long)r * Capacity + RowLength(r) + j;
        writeIndex?.Dispose();
        writeIndex = tensor(idx, device: device).DetachFromDisposeScope();
        writeIndexKey = (LayoutVersion, t);
        return writeIndex;
    }

    protected override void CopyRow(int from, int to, int positions)
    {
        if (positions == 0) return;
        using var scope = NewDisposeScope();
        foreach (var l in Latents) l[to].narrow(1, 0, positions).copy_(l[from].narrow(1, 0, positions));
    }

    public override void Dispose()
    {
        foreach (var t in Latents) t.Dispose();
        writeIndex?.Dispose();
    }
}
