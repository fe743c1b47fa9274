using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Serving;

/// <summary>
/// Continuous batching on a <see cref="CausalLM"/>: one KV cache whose rows are the server's slots, each at its own
/// length. A step is one rectangular forward pass: every row gets T = the longest feed, its real tokens first and
/// filler after them. A row's filler keys sit past its length, so the per-row causal mask hides them from its real
/// queries, and the next step overwrites them before any query could see them; resetting the row's length afterwards
/// is all the cleanup needed. Only the last real position of each busy row goes through the vocabulary projection.
/// </summary>
public sealed class ModelBackend : IDecodeBackend
{
    CausalLM model;
    readonly KvCache cache;
    readonly Device device;
    readonly ScalarType dtype;

    /// <param name="model">owned from now on: disposed on a weight swap or with the backend</param>
    public ModelBackend(CausalLM model, int slots, int capacity)
    {
        if (capacity > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"context {capacity} exceeds the model's max_position_embeddings {model.Config.MaxPositionEmbeddings}");
        this.model = model;
        device = model.Device; dtype = model.DType;
        cache = new KvCache(model.Config, slots, capacity, dtype, device);
    }

    public CausalLM Model => model;
    public int Slots => cache.Batch;
    public int Capacity => cache.Capacity;
    public int RowLength(int slot) => cache.RowLength(slot);

    public Tensor Step(IReadOnlyList<int[]?> feeds)
    {
        int b = Slots;
        int t = feeds.Max(f => f?.Length ?? 0);
        if (t == 0) throw new ArgumentException("a step needs at least one busy slot");
        int[] starts = cache.RowLengths();
        var ids = new long[b * t];
        var busyRows = new List<long>();
        var lastCols = new List<long>();
        for (int r = 0; r < b; r++)
        {
            var f = feeds[r];
            if (f is null || f.Length == 0) { starts[r] = 0; cache.SetRowLength(r, 0); continue; } // idle rows compute filler from 0
            for (int j = 0; j < t; j++) ids[r * t + j] = f[Math.Min(j, f.Length - 1)];
            busyRows.Add(r);
            lastCols.Add(f.Length - 1);
        }
        int keys = starts.Max() + t;
        var pad = new int[b]; // rows hold no left padding: a slot's sequence starts at index 0
        var hidden = model.Hidden(tensor(ids, [b, t], device: device), AttentionMask.Positions(pad, starts, t, device),
            AttentionMask.Build(pad, starts, t, keys, device), cache);
        for (int r = 0; r < b; r++) cache.SetRowLength(r, starts[r] + (feeds[r]?.Length ?? 0)); // drop the filler
        var last = hidden.index(tensor(busyRows.ToArray(), device: device), tensor(lastCols.ToArray(), device: device));
        return model.Logits(last);
    }

    public void Release(int slot) => cache.SetRowLength(slot, 0);

    public IDisposable PrepareWeights(string modelPath)
    {
        var next = ModelFolder.Load(modelPath, device, dtype);
        var (a, c) = (model.Config, next.Config);
        if (a.VocabSize != c.VocabSize || a.HiddenSize != c.HiddenSize || a.NumHiddenLayers != c.NumHiddenLayers
            || a.NumKeyValueHeads != c.NumKeyValueHeads || a.HeadDim != c.HeadDim || a.NumAttentionHeads != c.NumAttentionHeads
            || a.IntermediateSize != c.IntermediateSize || a.ModelType != c.ModelType)
        {
            next.Dispose();
            throw new R1SharpException($"{modelPath}: the model's shape differs from the one being served (weights can be swapped only for the same architecture)");
        }
        return next;
    }

    public void SwapWeights(IDisposable prepared)
    {
        var old = model;
        model = (CausalLM)prepared;
        old.Dispose();
    }

    public void Dispose()
    {
        cache.Dispose();
        model.Dispose();
    }
}
