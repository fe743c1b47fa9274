using static TorchSharp.torch;

namespace R1Sharp.Models;

/// <summary>
/// What a model caches between decode steps, per row of a batch: the per-row length bookkeeping lives here, each family
/// defines its tensors (grouped-query attention caches keys and values, <see cref="KvCache"/>; multi-head latent
/// attention caches one compressed latent). Tensors are allocated once for <see cref="MaxBatch"/> rows and
/// <see cref="Capacity"/> positions and written in place. A forward pass writes the new positions of rows
/// 0..<see cref="Batch"/>-1 at each row's length; only the decode engine then advances, trims and moves rows.
/// </summary>
public abstract class ModelCache : IDisposable
{
    int[] lengths;

    protected ModelCache(int maxBatch, int capacity)
    {
        if (maxBatch < 1 || capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), "a cache needs at least one row and one position");
        MaxBatch = maxBatch; Capacity = capacity; Batch = maxBatch;
        lengths = new int[maxBatch];
    }

    public int MaxBatch { get; }
    public int Capacity { get; }
    /// <summary>Rows in use: a forward pass over this cache has this many rows.</summary>
    public int Batch { get; private set; }
    /// <summary>Bumped whenever a row's length changes, so write indices computed for one layout can be reused.</summary>
    protected int LayoutVersion { get; private set; }

    /// <summary>The longest row in use: positions 0..Length-1 hold data in some row.</summary>
    public int Length
    {
        get
        {
            int max = 0;
            for (int r = 0; r < Batch; r++) max = Math.Max(max, lengths[r]);
            return max;
        }
    }

    public abstract long Bytes { get; }

    public int RowLength(int row) => lengths[row];

    /// <summary>Where each row in use writes its next token (its absolute index).</summary>
    public int[] RowLengths() => lengths[..Batch];

    /// <summary>Restarts (0) or truncates a row, e.g. when a slot takes a new sequence or filler is dropped.</summary>
    public void SetRowLength(int row, int length)
    {
        if (length < 0 || length > Capacity) throw new ArgumentOutOfRangeException(nameof(length), $"row length {length} outside 0..{Capacity}");
        lengths[row] = length;
        LayoutVersion++;
    }

    /// <summary>Moves every row's write position forward once all layers have written a step's tokens.</summary>
    public void Advance(int tokens)
    {
        for (int r = 0; r < Batch; r++) lengths[r] += tokens;
        LayoutVersion++;
    }

    public void Reset()
    {
        Array.Clear(lengths);
        LayoutVersion++;
    }

    /// <summary>Uses rows 0..rows-1 (rows ≤ MaxBatch); rows past it keep their data but take no part in a pass.</summary>
    public void SetBatch(int rows)
    {
        if (rows < 0 || rows > MaxBatch) throw new ArgumentOutOfRangeException(nameof(rows), $"{rows} rows outside 0..{MaxBatch}");
        Batch = rows;
        LayoutVersion++;
    }

    /// <summary>Copies row <paramref name="from"/> (its first RowLength positions) over row <paramref name="to"/>.</summary>
    public void MoveRow(int from, int to)
    {
        if (from == to) return;
        CopyRow(from, to, lengths[from]);
        lengths[to] = lengths[from];
        LayoutVersion++;
    }

    /// <summary>Keeps only the given rows, in that order, as rows 0..rows.Length-1 (e.g. when some sequences of a
    /// batch finish, later steps compute and attend over the remaining rows only).</summary>
    public void KeepRows(int[] rows)
    {
        for (int i = 0; i < rows.Length; i++)
            if (rows[i] < i) throw new ArgumentException("rows must be ascending", nameof(rows));
        for (int i = 0; i < rows.Length; i++) MoveRow(rows[i], i);
        SetBatch(rows.Length);
    }

    /// <summary>Checks that a step of t new tokens fits every row in use; the longest row's length before it.</summary>
    protected int CheckRoom(int t)
    {
        int max = Length;
        if (max + t > Capacity) throw new R1SharpException($"KV cache overflow: {max} + {t} tokens > capacity {Capacity}");
        return max;
    }

    /// <summary>Whether every row in use has the same length (writes are then one slice for the whole batch).</summary>
    protected bool UniformLengths(out int length)
    {
        length = lengths[0];
        for (int r = 1; r < Batch; r++) if (lengths[r] != length) return false;
        return true;
    }

    protected abstract void CopyRow(int from, int to, int positions);
    public abstract void Dispose();
}

/// <summary>
/// The cache of grouped-query attention: per layer, keys and values [maxBatch, kv_heads, capacity, head_dim].
/// </summary>
public sealed class KvCache : ModelCache
{
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }
    readonly int headDim, kvHeads;
    Tensor? writeIndex;     // flat row indices of a step's writes when row lengths differ
    (int Version, int T) writeIndexKey = (-1, 0);

    public KvCache(int layers, int kvHeads, int headDim, int maxBatch, int capacity, ScalarType dtype, Device device) : base(maxBatch, capacity)
    {
        this.headDim = headDim; this.kvHeads = kvHeads;
        // One allocation for every layer's keys and values, each layer's a contiguous view of it: per-layer blocks (about
        // 1 MB each for 16 rows of the 1.5B shape) came from glibc's heap, where they outlived the prefill's transient
        // blocks around them and the heap could not shrink past them; one block of this size is mapped on its own and
        // returned whole when the cache is disposed.
        storage = zeros([2, layers, maxBatch, kvHeads, capacity, headDim], dtype: dtype, device: device);
        Keys = new Tensor[layers];
        Values = new Tensor[layers];
        for (int l = 0; l < layers; l++)
        {
            Keys[l] = storage[0, l];
            Values[l] = storage[1, l];
        }
    }

    readonly Tensor storage;

    public override long Bytes => Keys.Sum(k => k.NumberOfElements * k.ElementSize) * 2;

    /// <summary>Writes k and v ([Batch, kv, T, hd]) at each row's current length in layer l and returns the keys and
    /// values of rows 0..Batch-1 up to the longest row (shorter rows' tails are masked by the caller).</summary>
    public (Tensor k, Tensor v) Append(int layer, Tensor k, Tensor v)
    {
        int t = (int)k.size(2), b = Batch;
        if (k.size(0) != b) throw new ArgumentException($"a step over {k.size(0)} rows against a cache using {b}");
        int max = CheckRoom(t);
        Tensor keys = Keys[layer], values = Values[layer];
        if (UniformLengths(out int first))
        {
            keys.narrow(0, 0, b).narrow(2, first, t).copy_(k);
            values.narrow(0, 0, b).narrow(2, first, t).copy_(v);
        }
        else
        {
            // Rows at different lengths (continuous batching, prompts of different lengths): one scatter of all rows'
            // positions into the flattened cache, instead of a copy per row.
            var index = WriteIndex(t, keys.device);
            keys.view(-1, headDim).index_copy_(0, index, k.reshape(-1, headDim));
            values.view(-1, headDim).index_copy_(0, index, v.reshape(-1, headDim));
        }
        return (keys.narrow(0, 0, b).narrow(2, 0, max + t), values.narrow(0, 0, b).narrow(2, 0, max + t));
    }

    /// <summary>For each (row, head, j) of a [Batch, kv, t] step, its row in the cache viewed as [rows·kv·capacity, hd].</summary>
    Tensor WriteIndex(int t, Device device)
    {
        if (writeIndexKey == (LayoutVersion, t) && writeIndex is not null) return writeIndex;
        var idx = new long[Batch * kvHeads * t];
        int i = 0;
        for (int r = 0; r < Batch; r++)
            for (int h = 0; h < kvHeads; h++)
                for (int j = 0; j < t; j++) idx[i++] = ((long)r * kvHeads + h) * Capacity + RowLength(r) + j;
        writeIndex?.Dispose();
        writeIndex = tensor(idx, device: device).DetachFromDisposeScope();
        writeIndexKey = (LayoutVersion, t);
        return writeIndex;
    }

    protected override void CopyRow(int from, int to, int positions)
    {
        if (positions == 0) return;
        using var scope = NewDisposeScope();
        for (int l = 0; l < Keys.Length; l++)
        {
            Keys[l][to].narrow(1, 0, positions).copy_(Keys[l][from].narrow(1, 0, positions));
            Values[l][to].narrow(1, 0, positions).copy_(Values[l][from].narrow(1, 0, positions));
        }
    }

    public override void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
        storage.Dispose();
        writeIndex?.Dispose();
    }
}
