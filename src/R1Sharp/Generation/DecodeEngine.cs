using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>
/// The one decode loop. Sequences wait in a queue, join a free slot of the backend at the next step (their prompt is
/// prefilled in the same forward pass that decodes everyone else's next token), and leave the moment they finish or are
/// cancelled, so the batch changes at token granularity. Batch generation (the CLI, evaluation, GRPO rollouts) is
/// "submit N sequences and step until idle" (<see cref="GenerationEngine"/>); the server runs the same steps on a
/// thread with requests arriving (<see cref="Serving.ContinuousBatcher"/>). Not thread-safe: one thread steps it.
/// </summary>
public sealed class DecodeEngine
{
    readonly IDecodeBackend backend;
    readonly Queue<Sequence> waiting = new();
    readonly Sequence?[] slots;
    readonly bool[] prefilled;
    int running;

    public DecodeEngine(IDecodeBackend backend)
    {
        this.backend = backend;
        slots = new Sequence?[backend.Slots];
        prefilled = new bool[backend.Slots];
    }

    public IDecodeBackend Backend => backend;
    public int Slots => slots.Length;
    public int Capacity => backend.Capacity;
    /// <summary>Sequences in slots (read from any thread: a snapshot).</summary>
    public int Running => Volatile.Read(ref running);
    public int Waiting => waiting.Count;
    public bool Idle => Running == 0 && waiting.Count == 0;

    /// <summary>Hands a large prefill's freed memory back to the system before decoding (glibc keeps freed blocks
    /// under its mmap threshold, and the decode steps' differently sized blocks then grow the heap beside them).
    /// Off where the same memory is about to be used again (a training step right after its rollouts).</summary>
    public bool ReleaseMemoryAfterPrefill { get; init; }

    public void Submit(Sequence sequence) => waiting.Enqueue(sequence);

    public void Submit(IEnumerable<Sequence> sequences)
    {
        foreach (var s in sequences) waiting.Enqueue(s);
    }

    /// <summary>Steps until every submitted sequence has finished.</summary>
    public void RunUntilIdle()
    {
        while (!Idle) Step();
    }

    /// <summary>
    /// One step: drops cancelled sequences, admits waiting ones into free slots, runs one forward pass over every busy
    /// slot, samples each one's next token and ends the sequences that finished. Returns the tokens sampled (0 when
    /// there was nothing to run).
    /// </summary>
    public int Step()
    {
        DropCancelled();
        Admit();
        var busy = new List<int>(slots.Length);
        var feeds = new int[]?[slots.Length];
        int prefillTokens = 0;
        for (int r = 0; r < slots.Length; r++)
        {
            if (slots[r] is not { } s) continue;
            if (prefilled[r] && backend.RowLength(r) >= backend.Capacity) { s.EndForLength(); Free(r); continue; } // context full
            feeds[r] = prefilled[r] ? [s.LastToken] : s.Prompt.ToArray();
            if (!prefilled[r]) prefillTokens += feeds[r]!.Length;
            busy.Add(r);
        }
        if (busy.Count == 0) return 0;
        int[] next;
        using (NewDisposeScope())
        {
            var logits = backend.Step(feeds);
            next = Sample(logits, busy);
        }
        if (ReleaseMemoryAfterPrefill && prefillTokens >= 256) NativeRuntime.ReleaseFreeMemory();
        for (int i = 0; i < busy.Count; i++)
        {
            int r = busy[i];
            prefilled[r] = true;
            if (slots[r]!.Accept(next[i])) Free(r);
        }
        return busy.Count;
    }

    /// <summary>Next tokens for the busy slots' logits [busy, V]: rows that share their options object are sampled in
    /// one call (one argmax over the batch when greedy), each row with its own sequence's generator.</summary>
    int[] Sample(Tensor logits, List<int> busy)
    {
        var first = slots[busy[0]]!.Options;
        if (busy.All(r => ReferenceEquals(slots[r]!.Options, first)))
            return Sampler.Sample(logits, first, busy.Select(r => slots[r]!.Generator).ToArray());
        var result = new int[busy.Count];
        for (int i = 0; i < busy.Count; i++)
        {
            var s = slots[busy[i]]!;
            result[i] = Sampler.Sample(logits.narrow(0, i, 1), s.Options, [s.Generator])[0];
        }
        return result;
    }

    /// <summary>Moves waiting sequences into free slots. A step feeds every row T tokens (the longest prompt joining),
    /// so a prompt joins only while every busy row still has room for T more; otherwise it waits a step or two.</summary>
    void Admit()
    {
        if (waiting.Count == 0) return;
        int longestBusy = 0;
        for (int r = 0; r < slots.Length; r++) if (slots[r] != null) longestBusy = Math.Max(longestBusy, backend.RowLength(r));
        int t = 1;
        for (int r = 0; r < slots.Length && waiting.Count > 0; r++)
        {
            if (slots[r] != null) continue;
            var next = waiting.Peek();
            if (next.Cancelled) { waiting.Dequeue().Abandon(); r--; continue; }
            if (next.Prompt.Count > backend.Capacity)
            {
                waiting.Dequeue().Fail($"the prompt ({next.Prompt.Count} tokens) does not fit the context of {backend.Capacity}");
                r--;
                continue;
            }
            int need = Math.Max(t, next.Prompt.Count);
            if (longestBusy + need > backend.Capacity) break;
            waiting.Dequeue();
            slots[r] = next;
            prefilled[r] = false;
            backend.Release(r);
            if (backend is ModelBackend mb) mb.SetSlotAdapter(r, next.Adapter);
            Interlocked.Increment(ref running);
            t = need;
        }
    }

    void DropCancelled()
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

    void Free(int r)
    {
        slots[r] = null;
        backend.Release(r);
        Interlocked.Decrement(ref running);
    }

    /// <summary>Ends every running sequence with an error (a failed step) and frees its slot; waiting ones stay.</summary>
    public void FailRunning(string message)
    {
        for (int r = 0; r < slots.Length; r++)
            if (slots[r] is { } s) { s.Fail(message); Free(r); }
    }

    /// <summary>Ends every sequence, running or waiting, with an error (shutting down).</summary>
    public void FailAll(string message)
    {
        FailRunning(message);
        while (waiting.Count > 0) waiting.Dequeue().Fail(message);
    }
}
