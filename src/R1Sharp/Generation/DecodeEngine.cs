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
    readonly int[] fed;        // per slot: prompt tokens already in the backend's cache (= the prompt's length once prefilled)
    int running;
    int prefillSinceRelease;   // prompt tokens fed since freed memory was last handed back

    public DecodeEngine(IDecodeBackend backend)
    {
        this.backend = backend;
        slots = new Sequence?[backend.Slots];
        fed = new int[backend.Slots];
        PrefillChunkTokens = backend is ModelBackend m ? PrefillChunkFor(m.Model.Config.HiddenSize) : DefaultPrefillChunkTokens;
    }

    /// <summary>At most this many positions (rows × tokens) go through one forward pass. Half llama.cpp's n_ubatch (512),
    /// by measurement on the 1.5B shape, a 512-token prompt, 2 Zen 4 cores (bench/README.md, "Chunked prefill"): bf16
    /// prefill 11 % faster at 256 than at 512 (best of three alternating), float32 3 % slower, Q4_K_M the same (108.1
    /// against 108.7 tok/s; the blocked MLP made a second dequantisation of the tiles cheap), and the Q4_K_M file's
    /// peak 1349 MB against 1367 (the target, 1.15 × (file + cache), is 1354).</summary>
    public const int DefaultPrefillChunkTokens = 256;

    /// <summary>The default chunk for a model of this width: <see cref="DefaultPrefillChunkTokens"/> at 1536 (the shape
    /// it was measured on) and wider, more positions for narrower models, whose steps cost their operators' dispatch
    /// rather than memory (the same activation bytes per step: a 128-wide demo model takes 3072 positions, so a
    /// rollout of 64 short prompts is one step, not twelve).</summary>
    public static int PrefillChunkFor(int hiddenSize) =>
        hiddenSize <= 0 ? DefaultPrefillChunkTokens : (int)Math.Clamp((long)DefaultPrefillChunkTokens * 1536 / hiddenSize, DefaultPrefillChunkTokens, 1 << 20);

    /// <summary>
    /// Chunked prefill: a step's forward pass covers at most this many positions (busy rows × T, T the longest feed),
    /// so a prompt longer than the budget ÷ busy rows is fed over several steps, a time chunk of it each step, appended
    /// to the cache (as llama.cpp's n_ubatch, vLLM's chunked prefill). The sequences decoding meanwhile go on taking a
    /// token each step; a prompt's first token is sampled only after its last chunk. This bounds a step's working set
    /// (the MLP's [rows·T, intermediate] activations, attention's [heads, T, cache] scores) whatever the prompts' length.
    /// </summary>
    public int PrefillChunkTokens { get; init; }


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
        int room = int.MaxValue, longestRest = 1;
        for (int r = 0; r < slots.Length; r++)
        {
            if (slots[r] is not { } s) continue;
            bool decoding = fed[r] == s.Prompt.Count;
            if (decoding && backend.RowLength(r) >= backend.Capacity) { s.EndForLength(); Free(r); continue; } // context full
            room = Math.Min(room, backend.Capacity - backend.RowLength(r));
            if (!decoding) longestRest = Math.Max(longestRest, s.Prompt.Count - fed[r]);
            busy.Add(r);
        }
        if (busy.Count == 0) return 0;
        // T: the longest remaining prompt, cut to the budget; every row gets T positions (filler after its real
        // tokens), so every row must have room for T. Admit sees to that for the step a prompt joins in; rows that
        // joined in different steps reach their last chunks at different times, hence the cut to the least room.
        int chunk = Math.Min(longestRest, Math.Min(room, Math.Max(1, PrefillChunkTokens / busy.Count)));
        var feeds = new int[]?[slots.Length];
        var ready = new List<int>(busy.Count); // indices into busy of the rows whose next token is sampled this step
        int prefillTokens = 0;
        for (int i = 0; i < busy.Count; i++)
        {
            int r = busy[i];
            var s = slots[r]!;
            if (fed[r] == s.Prompt.Count) { feeds[r] = [s.LastToken]; ready.Add(i); continue; }
            int n = Math.Min(chunk, s.Prompt.Count - fed[r]);
            var part = new int[n];
            for (int j = 0; j < n; j++) part[j] = s.Prompt[fed[r] + j];
            feeds[r] = part;
            fed[r] += n;
            prefillTokens += n;
            if (fed[r] == s.Prompt.Count) ready.Add(i);
        }
        int[] next = [];
        using (NewDisposeScope())
        {
            Tensor logits;
            if (ready.Count == busy.Count) logits = backend.Step(feeds);
            else
            {
                var sample = new bool[slots.Length];
                foreach (int i in ready) sample[busy[i]] = true;
                logits = backend.Step(feeds, sample);
                if (ready.Count > 0 && logits.shape[0] != ready.Count) // a backend that returned every busy row's
                    logits = logits.index_select(0, tensor(ready.Select(i => (long)i).ToArray(), device: logits.device));
            }
            if (ready.Count > 0) next = Sample(logits, ready.Select(i => busy[i]).ToList());
        }
        prefillSinceRelease += prefillTokens;
        bool midPrefill = false;
        for (int r = 0; r < slots.Length; r++) if (slots[r] is { } s && fed[r] < s.Prompt.Count) midPrefill = true;
        // chunk by chunk too: a small chunk's blocks are below the mmap threshold and would otherwise stay in the heap
        if (ReleaseMemoryAfterPrefill && (midPrefill ? prefillTokens >= 64 : prefillSinceRelease >= 256)) { NativeRuntime.ReleaseFreeMemory(); prefillSinceRelease = 0; }
        for (int k = 0; k < ready.Count; k++)
        {
            int r = busy[ready[k]];
            if (slots[r]!.Accept(next[k])) Free(r);
        }
        return ready.Count;
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
            fed[r] = 0;
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
