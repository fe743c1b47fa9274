using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Serving;

/// <summary>
/// The one generation loop every request shares. Sequences wait in a bounded queue, join a free slot at the next
/// step (their prompt is prefilled in the same forward pass that decodes everyone else's next token) and leave the
/// moment they finish or their client goes away, so the batch changes at token granularity. Weight swaps happen
/// between steps: sequences in flight continue on the new weights with the cache they already have.
/// </summary>
public sealed class ContinuousBatcher : IDisposable
{
    readonly IDecodeBackend backend;
    readonly int maxQueue;
    readonly object gate = new();
    readonly Queue<Sequence> waiting = new();
    readonly Sequence?[] slots;
    readonly bool[] prefilled;
    readonly Thread thread;
    (IDisposable Weights, string Version, TaskCompletionSource Done)? pendingSwap;
    bool stopping;
    int weightCounter;
    long steps, tokens;

    public ContinuousBatcher(IDecodeBackend backend, int maxQueue)
    {
        this.backend = backend;
        this.maxQueue = maxQueue;
        slots = new Sequence?[backend.Slots];
        prefilled = new bool[backend.Slots];
        thread = new Thread(Loop) { IsBackground = true, Name = "r1-serve-batcher" };
        thread.Start();
    }

    public int Capacity => backend.Capacity;
    public int MaxQueue => maxQueue;
    /// <summary>The label of the weights now in service: "0" at start, then the reload's label or a count.</summary>
    public string WeightVersion { get; private set; } = "0";

    public BatcherStats Stats()
    {
        lock (gate) return new(slots.Count(s => s != null), waiting.Count, slots.Length, WeightVersion, Interlocked.Read(ref steps), Interlocked.Read(ref tokens));
    }

    /// <summary>Queues a request's sequences, all or none: a full queue is a 429 for the client to retry.</summary>
    public void Submit(IReadOnlyList<Sequence> sequences)
    {
        lock (gate)
        {
            if (stopping) throw new ApiError(503, "the server is shutting down", "server_error");
            int free = slots.Count(s => s == null);
            if (waiting.Count + sequences.Count - free > maxQueue)
                throw new ApiError(429, $"the server is at capacity ({slots.Length} running, {waiting.Count} waiting, queue limit {maxQueue}); retry later", "rate_limit_error", code: "queue_full");
            foreach (var s in sequences) waiting.Enqueue(s);
            Monitor.PulseAll(gate);
        }
    }

    /// <summary>Wakes the loop (a sequence was cancelled) so the slot is freed without waiting for other work.</summary>
    public void Nudge() { lock (gate) Monitor.PulseAll(gate); }

    /// <summary>Swaps in weights already loaded by <see cref="IDecodeBackend.PrepareWeights"/> at the next step
    /// boundary; completes once they are in service and returns their version.</summary>
    public async Task<string> SwapWeightsAsync(IDisposable prepared, string? label)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string version;
        lock (gate)
        {
            if (pendingSwap != null) throw new ApiError(409, "another weight update is in progress", code: "update_in_progress");
            version = label ?? (++weightCounter).ToString();
            pendingSwap = (prepared, version, done);
            Monitor.PulseAll(gate);
        }
        await done.Task;
        return version;
    }

    void Loop()
    {
        using var noGrad = no_grad(); // grad mode is per thread
        var feeds = new int[]?[slots.Length];
        var busy = new List<int>();
        while (true)
        {
            lock (gate)
            {
                ApplySwap();
                FreeCancelled();
                Admit();
                while (!stopping && slots.All(s => s == null) && waiting.Count == 0 && pendingSwap == null)
                    Monitor.Wait(gate);
                if (stopping) break;
                if (slots.All(s => s == null)) continue;
                busy.Clear();
                for (int r = 0; r < slots.Length; r++)
                {
                    var s = slots[r];
                    feeds[r] = s is null ? null : prefilled[r] ? [s.LastToken] : s.Prompt.ToArray();
                    if (s != null) busy.Add(r);
                }
            }
            try { RunStep(feeds, busy); }
            catch (Exception e)
            {
                // A failed step ends the sequences in it with an error; the server keeps serving the others.
                lock (gate)
                    foreach (int r in busy) { slots[r]?.Fail($"generation failed: {e.Message}", WeightVersion); Free(r); }
            }
        }
        lock (gate)
        {
            foreach (var s in slots) s?.Fail("the server is shutting down", WeightVersion);
            foreach (var s in waiting) s.Fail("the server is shutting down", WeightVersion);
        }
    }

    void RunStep(int[]?[] feeds, List<int> busy)
    {
        using var scope = NewDisposeScope();
        var logits = backend.Step(feeds);
        Interlocked.Increment(ref steps);
        string version = WeightVersion;
        for (int i = 0; i < busy.Count; i++)
        {
            int r = busy[i];
            var s = slots[r]!;
            prefilled[r] = true;
            // Each request brings its own temperature / top-p / generator, so rows are sampled one by one.
            int token = Sampler.Sample(logits.narrow(0, i, 1), s.Options, [s.Generator])[0];
            Interlocked.Increment(ref tokens);
            if (s.Accept(token, version)) lock (gate) Free(r);
        }
    }

    void ApplySwap()
    {
        if (pendingSwap is not { } swap) return;
        pendingSwap = null;
        try
        {
            backend.SwapWeights(swap.Weights);
            WeightVersion = swap.Version;
            swap.Done.SetResult();
        }
        catch (Exception e) { swap.Done.SetException(e); }
    }

    void FreeCancelled()
    {
        for (int r = 0; r < slots.Length; r++)
            if (slots[r] is { Cancelled: true } s) { s.Abandon(); Free(r); }
        if (waiting.Any(s => s.Cancelled))
        {
            foreach (var s in waiting.Where(s => s.Cancelled)) s.Abandon();
            var keep = waiting.Where(s => !s.Cancelled).ToArray();
            waiting.Clear();
            foreach (var s in keep) waiting.Enqueue(s);
        }
    }

    /// <summary>Moves waiting sequences into free slots. A step feeds every row T tokens (the longest prompt joining),
    /// so a prompt joins only while every busy row still has room for T more; otherwise it waits a step or two.</summary>
    void Admit()
    {
        int longestBusy = 0;
        for (int r = 0; r < slots.Length; r++) if (slots[r] != null) longestBusy = Math.Max(longestBusy, backend.RowLength(r));
        int t = 1;
        for (int r = 0; r < slots.Length && waiting.Count > 0; r++)
        {
            if (slots[r] != null) continue;
            var next = waiting.Peek();
            int need = Math.Max(t, next.Prompt.Count);
            if (longestBusy + need > backend.Capacity) break;
            waiting.Dequeue();
            slots[r] = next;
            prefilled[r] = false;
            backend.Release(r);
            t = need;
        }
    }

    void Free(int r)
    {
        slots[r] = null;
        backend.Release(r);
    }

    public void Dispose()
    {
        lock (gate) { stopping = true; Monitor.PulseAll(gate); }
        thread.Join();
    }
}

/// <summary>What /health reports: busy slots, waiting sequences, weight version and counters.</summary>
public sealed record BatcherStats(int Running, int Waiting, int Slots, string WeightVersion, long Steps, long Tokens);
