using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>
/// The model side of the decode engine: a <see cref="CausalLM"/> and its cache, whose rows serve the engine's slots.
/// A step is one rectangular forward pass over the busy slots only: their rows are kept packed at the front of the
/// cache (a slot that is released hands its row to the last busy one), so finished sequences cost nothing. Every row
/// gets T = the longest feed, its real tokens first and filler after them; the filler's keys sit past the row's length,
/// where the per-row causal mask hides them and the next step overwrites them, so setting the row's length afterwards
/// is all the cleanup needed. Only the last real position of each row goes through the vocabulary projection.
/// Without a cache (the reference the cache is tested against) every step recomputes each slot's whole sequence.
/// </summary>
public sealed class ModelBackend : IDecodeBackend
{
    CausalLM model;
    readonly bool ownsModel;
    readonly ModelCache? cache;
    readonly List<int>?[]? history; // without a cache: each slot's tokens so far
    readonly int[] rowOf, slotOf;   // slot → cache row (−1: none), row → slot
    int busyRows;
    readonly int?[] slotAdapter;  // slot → the LoRA adapter its sequence asked for (null: the model's routing)
    readonly Device device;
    readonly ScalarType dtype;

    /// <param name="model">owned (disposed on a weight swap or with the backend) when ownsModel</param>
    public ModelBackend(CausalLM model, int slots, int capacity, bool ownsModel = true, bool useCache = true)
    {
        if (capacity > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"context {capacity} exceeds the model's max_position_embeddings {model.Config.MaxPositionEmbeddings}");
        this.model = model; this.ownsModel = ownsModel;
        device = model.Device; dtype = model.DType;
        Slots = slots; Capacity = capacity;
        rowOf = Enumerable.Repeat(-1, slots).ToArray();
        slotOf = new int[slots];
        slotAdapter = new int?[slots];
        if (useCache)
        {
            model.CheckCacheFits(slots, capacity);
            cache = model.CreateCache(slots, capacity);
        }
        else history = new List<int>?[slots];
    }

    public CausalLM Model => model;

    /// <summary>The adapter slot's sequence decodes with (null: the model's own routing), set when it joins.</summary>
    public void SetSlotAdapter(int slot, int? adapter) => slotAdapter[slot] = adapter;

    /// <summary>Per-row adapters for a step over rows whose slots are slotOfRow(r), when any slot asked for one
    /// (the rows then go through their adapters in one forward pass, as vLLM's multi-LoRA batches); restored after.</summary>
    IDisposable? RouteRows(int rows, Func<int, int> slotOfRow)
    {
        if (model.Lora is not { } lora || Array.TrueForAll(slotAdapter, a => a is null)) return null;
        int fallback = lora.Routing.Active ?? -1;
        var perRow = new int[rows];
        for (int r = 0; r < rows; r++) perRow[r] = slotAdapter[slotOfRow(r)] ?? fallback;
        lora.Routing.PerRow = perRow;
        return new RowRouting(lora.Routing);
    }

    sealed class RowRouting(Models.Lora.LoraRouting routing) : IDisposable { public void Dispose() => routing.PerRow = null; }
    public int Slots { get; }
    public int Capacity { get; }
    public int RowLength(int slot) => cache is null ? history![slot]?.Count ?? 0 : rowOf[slot] < 0 ? 0 : cache.RowLength(rowOf[slot]);

    public Tensor Step(IReadOnlyList<int[]?> feeds) => Step(feeds, null);

    /// <summary>With chunked prefill, rows fed a chunk that is not their prompt's last skip the vocabulary projection.</summary>
    public Tensor Step(IReadOnlyList<int[]?> feeds, IReadOnlyList<bool>? sample)
    {
        var busy = new List<int>();
        for (int s = 0; s < Slots; s++)
        {
            if (feeds[s] is null || feeds[s]!.Length == 0) continue;
            busy.Add(s);
            if (cache != null && rowOf[s] < 0) { rowOf[s] = busyRows; slotOf[busyRows] = s; cache.SetRowLength(busyRows++, 0); }
        }
        if (busy.Count == 0) throw new ArgumentException("a step needs at least one busy slot");
        var logitSlots = sample is null ? busy : busy.Where(s => sample[s]).ToList();
        return cache is null ? StepWithoutCache(busy, feeds, logitSlots) : StepWithCache(busy, feeds, cache, logitSlots);
    }

    Tensor StepWithCache(List<int> busy, IReadOnlyList<int[]?> feeds, ModelCache c, List<int> logitSlots)
    {
        if (busy.Count != busyRows) throw new InvalidOperationException("every busy slot must be fed in each step");
        int b = busyRows;
        c.SetBatch(b);
        int t = busy.Max(s => feeds[s]!.Length);
        int[] starts = c.RowLengths();
        var ids = new long[b * t];
        for (int r = 0; r < b; r++)
        {
            var f = feeds[slotOf[r]]!;
            for (int j = 0; j < t; j++) ids[r * t + j] = f[Math.Min(j, f.Length - 1)];
        }
        var pad = new int[b]; // rows hold no left padding: a slot's sequence starts at index 0
        using var routing = RouteRows(b, r => slotOf[r]);
        var hidden = model.Hidden(tensor(ids, [b, t], device: device), AttentionMask.Positions(pad, starts, t, device),
            AttentionMask.Build(pad, starts, t, starts.Max() + t, device), c);
        for (int r = 0; r < b; r++) c.SetRowLength(r, starts[r] + feeds[slotOf[r]]!.Length); // drop the filler
        return LastLogits(hidden, logitSlots.Select(s => (long)rowOf[s]).ToArray(), logitSlots.Select(s => (long)feeds[s]!.Length - 1).ToArray());
    }

    Tensor StepWithoutCache(List<int> busy, IReadOnlyList<int[]?> feeds, List<int> logitSlots)
    {
        foreach (int s in busy) (history![s] ??= []).AddRange(feeds[s]!);
        int b = busy.Count, t = busy.Max(s => history![s]!.Count);
        var ids = new long[b * t];
        for (int i = 0; i < b; i++)
        {
            var h = history![busy[i]]!;
            for (int j = 0; j < t; j++) ids[i * t + j] = h[Math.Min(j, h.Count - 1)];
        }
        var pad = new int[b];
        using var routing = RouteRows(b, i => busy[i]);
        var hidden = model.Hidden(tensor(ids, [b, t], device: device), AttentionMask.Positions(pad, 0, t, device),
            AttentionMask.Build(pad, 0, t, t, device), cache: null);
        return LastLogits(hidden, logitSlots.Select(s => (long)busy.IndexOf(s)).ToArray(), logitSlots.Select(s => (long)history![s]!.Count - 1).ToArray());
    }

    Tensor LastLogits(Tensor hidden, long[] rows, long[] columns)
    {
        if (rows.Length == 0) return empty([0, model.Config.VocabSize], dtype: ScalarType.Float32, device: device); // every row mid-prefill
        // A decode step's usual case, every row in order at its one position: a view, no gather (two index tensors and
        // an indexing operator a step otherwise).
        bool inOrder = rows.Length == hidden.size(0) && hidden.size(1) == 1;
        for (int i = 0; i < rows.Length && inOrder; i++) inOrder = rows[i] == i && columns[i] == 0;
        var last = inOrder ? hidden.select(1, 0) : hidden.index(tensor(rows, device: device), tensor(columns, device: device));
        return model.Logits(last);
    }

    public void Release(int slot)
    {
        if (cache is null) { history![slot] = null; return; }
        int row = rowOf[slot];
        if (row < 0) return;
        int lastRow = busyRows - 1;
        if (row != lastRow)
        {
            cache.MoveRow(lastRow, row);
            slotOf[row] = slotOf[lastRow];
            rowOf[slotOf[row]] = row;
        }
        rowOf[slot] = -1;
        busyRows--;
        cache.SetRowLength(lastRow, 0);
    }

    public IDisposable PrepareWeights(string modelPath)
    {
        var next = LocalModel.LoadWeights(modelPath, device, dtype);
        var (a, b) = (model.StateDict(), next.StateDict());
        if (next.Config.ModelType != model.Config.ModelType || a.Count != b.Count
            || a.Any(p => !b.TryGetValue(p.Key, out var q) || !q.shape.SequenceEqual(p.Value.shape)))
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
        if (ownsModel) old.Dispose();
    }

    public void Dispose()
    {
        cache?.Dispose();
        if (ownsModel) model.Dispose();
    }
}
