using R1Sharp.Generation;
using static TorchSharp.torch;

namespace R1Sharp.Serving;

/// <summary>
/// The server's thread around the one <see cref="DecodeEngine"/>: requests' sequences arrive from any thread into a
/// bounded queue, the loop hands them to the engine and steps it while there is work, and weight swaps happen between
/// steps (sequences in flight continue on the new weights with the cache they already have).
/// </summary>
public sealed class ContinuousBatcher : IDisposable
{
    readonly DecodeEngine engine;
    readonly int maxQueue;
    readonly object gate = new();
    readonly Queue<Sequence> inbox = new();
    readonly Thread thread;
    (IDisposable Weights, string Version, TaskCompletionSource Done)? pendingSwap;
    bool stopping, nudged;
    int weightCounter;
    long steps, tokens;

    public ContinuousBatcher(IDecodeBackend backend, int maxQueue)
    {
        engine = new DecodeEngine(backend);
        this.maxQueue = maxQueue;
        thread = new Thread(Loop) { IsBackground = true, Name = "r1-serve-batcher" };
        thread.Start();
    }

    public int Capacity => engine.Capacity;
    public int MaxQueue => maxQueue;
    /// <summary>The label of the weights now in service: "0" at start, then the reload's label or a count.</summary>
    public string WeightVersion { get; private set; } = "0";

    public BatcherStats Stats()
    {
        lock (gate) return new(engine.Running, inbox.Count + engine.Waiting, engine.Slots, WeightVersion, Interlocked.Read(ref steps), Interlocked.Read(ref tokens));
    }

    /// <summary>Queues a request's sequences, all or none: a full queue is a 429 for the client to retry.</summary>
    public void Submit(IReadOnlyList<Sequence> sequences)
    {
        lock (gate)
        {
            if (stopping) throw new ApiError(503, "the server is shutting down", "server_error");
            int free = engine.Slots - engine.Running, waiting = inbox.Count + engine.Waiting;
            if (waiting + sequences.Count - free > maxQueue)
                throw new ApiError(429, $"the server is at capacity ({engine.Slots} running, {waiting} waiting, queue limit {maxQueue}); retry later", "rate_limit_error", code: "queue_full");
            foreach (var s in sequences) inbox.Enqueue(s);
            Monitor.PulseAll(gate);
        }
    }

    /// <summary>Wakes the loop (a sequence was cancelled) so the slot is freed without waiting for other work.</summary>
    public void Nudge() { lock (gate) { nudged = true; Monitor.PulseAll(gate); } }

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
        while (true)
        {
            lock (gate)
            {
                ApplySwap();
                while (inbox.Count > 0) engine.Submit(inbox.Dequeue());
                while (!stopping && engine.Idle && inbox.Count == 0 && pendingSwap == null && !nudged) Monitor.Wait(gate);
                nudged = false;
                if (stopping) break;
                if (pendingSwap != null || inbox.Count > 0) continue;
            }
            try
            {
                int produced = engine.Step();
                if (produced > 0) { Interlocked.Increment(ref steps); Interlocked.Add(ref tokens, produced); }
            }
            catch (Exception e)
            {
                // A failed step ends the sequences in it with an error; the server keeps serving the others.
                engine.FailRunning($"generation failed: {e.Message}");
            }
        }
        lock (gate)
        {
            while (inbox.Count > 0) engine.Submit(inbox.Dequeue());
            engine.FailAll("the server is shutting down");
        }
    }

    void ApplySwap()
    {
        if (pendingSwap is not { } swap) return;
        pendingSwap = null;
        try
        {
            engine.Backend.SwapWeights(swap.Weights);
            WeightVersion = swap.Version;
            swap.Done.SetResult();
        }
        catch (Exception e) { swap.Done.SetException(e); }
    }

    public void Dispose()
    {
        lock (gate) { stopping = true; Monitor.PulseAll(gate); }
        thread.Join();
    }
}

/// <summary>What /health reports: busy slots, waiting sequences, weight version and counters.</summary>
public sealed record BatcherStats(int Running, int Waiting, int Slots, string WeightVersion, long Steps, long Tokens);
