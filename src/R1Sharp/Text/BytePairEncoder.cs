using System.Collections.Concurrent;

namespace R1Sharp.Text;

/// <summary>
/// The BPE model of tokenizer.json: turns one pre-token into ids by applying the ranked merges to its byte-level
/// spelling. We do the byte-level mapping ourselves (<see cref="ByteLevel"/>) so every input character is in the
/// vocabulary's alphabet, then merge as Hugging Face tokenizers' <c>Word::merge_all</c> does: the word is a linked
/// list of symbols and a min-heap holds every adjacent pair that has a merge, ordered by (rank, position). Each pop
/// merges one pair and pushes at most two new neighbour pairs, so a pre-token of n bytes costs O(n log n) however long
/// it is: a 5 MB run of letters or CJK without a space is one pre-token, and a loop that rescans the word for its
/// best pair after every merge (O(n²)) would take minutes on it.
/// </summary>
public sealed class BytePairEncoder
{
    // (left id, right id) → (rank, merged id); the key packs both ids in one long.
    readonly Dictionary<long, (int Rank, int Id)> _merges;
    readonly int _maxRank;
    readonly int[] _byteIds; // id of each byte's character, -1 when the vocabulary lacks it
    readonly IReadOnlyDictionary<string, int>? _wholeWords; // set when the model has ignore_merges (Llama 3 style)

    // Pre-token text → ids. Natural text repeats a small set of words, so most pieces are served from here.
    // Bounded by clearing: simple, and a refill costs only the misses.
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    int _cacheCount;
    const int MaxCacheEntries = 250_000;
    const int MaxCachedLength = 128;

    public BytePairEncoder(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, string file,
        bool ignoreMerges = false)
    {
        _wholeWords = ignoreMerges ? vocab : null;
        _byteIds = new int[256];
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue(ByteLevel.ByteToChar[b].ToString(), out int id) ? id : -1;
        _merges = new Dictionary<long, (int, int)>(merges.Count, PairComparer.Instance);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            // Hugging Face refuses a merge whose parts or result are not tokens: so do we, naming it.
            if (!vocab.TryGetValue(left, out int l) || !vocab.TryGetValue(right, out int r))
                throw new R1SharpException($"{file}: merge #{rank} \"{left} {right}\" uses a token that is not in the vocabulary");
            if (!vocab.TryGetValue(left + right, out int merged))
                throw new R1SharpException($"{file}: merge #{rank} \"{left} {right}\" makes \"{left + right}\", which is not in the vocabulary");
            _merges[Key(l, r)] = (rank, merged); // a repeated pair keeps its last rank, as Hugging Face's map (built by collect) does
        }
        _maxRank = merges.Count - 1;
        _lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>long's own hash is high ^ low, which for a pair of ids below 2^18 leaves 2^18 buckets and long chains
    /// of pairs whose ids xor alike: a Fibonacci multiply spreads them.</summary>
    sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long a, long b) => a == b;
        public int GetHashCode(long x) => (int)(((ulong)x * 0x9E3779B97F4A7C15UL) >> 32);
    }

    /// <summary>Appends the ids of one pre-token (raw text, before byte-level mapping).</summary>
    public void Encode(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (_lookup.TryGetValue(piece, out var cached)) { ids.AddRange(cached); return; }
        if (piece.Length > MaxCachedLength) { EncodeUncached(piece, ids); return; }
        int start = ids.Count;
        EncodeUncached(piece, ids);
        // ConcurrentDictionary.Count takes every one of its locks (up to 1024 once the table has grown): asked per new
        // word it cost ~9 µs a word, 50× the merge itself. An approximate count of our own is enough for the bound.
        if (Volatile.Read(ref _cacheCount) >= MaxCacheEntries) { _cache.Clear(); Volatile.Write(ref _cacheCount, 0); }
        if (_lookup.TryAdd(piece, ids.GetRange(start, ids.Count - start).ToArray())) Interlocked.Increment(ref _cacheCount);
    }

    void EncodeUncached(ReadOnlySpan<char> piece, List<int> ids)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(piece.Length);
        byte[]? rented = max > 1024 ? System.Buffers.ArrayPool<byte>.Shared.Rent(max) : null;
        Span<byte> bytes = rented ?? stackalloc byte[max];
        // Lone surrogates become EF BF BD (U+FFFD), the same bytes Rust would see after lossy conversion.
        int n = System.Text.Encoding.UTF8.GetBytes(piece, bytes);
        try
        {
            // ignore_merges: a pre-token that is itself in the vocabulary is taken whole, whatever the merges would do.
            if (_wholeWords != null && _wholeWords.TryGetValue(ByteLevel.Encode(piece), out int whole)) { ids.Add(whole); return; }
            Merge(bytes[..n], ids);
        }
        finally { if (rented != null) System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
    }

    /// <summary>Hugging Face's Word::merge_all over the byte symbols of one pre-token.</summary>
    void Merge(ReadOnlySpan<byte> bytes, List<int> ids)
    {
        // A byte whose character the vocabulary lacks is dropped, as Hugging Face does for a BPE without unk_token.
        var w = Word.Rent(bytes.Length);
        var sym = w.Symbols;
        int n = 0;
        foreach (byte b in bytes)
            if (_byteIds[b] >= 0) { sym[n] = new Symbol(_byteIds[b], n - 1, n + 1); n++; }
        if (n == 0) return;
        if (n == 1) { ids.Add(sym[0].Id); return; }
        sym[n - 1].Next = -1;

        if (n >= RankOrderThreshold) MergeByRank(sym, n);
        else MergeByHeap(w, sym, n);
        for (int i = 0; i >= 0; i = sym[i].Next) ids.Add(sym[i].Id);
    }

    /// <summary>Words at least this many byte symbols long merge rank by rank (<see cref="MergeByRank"/>), shorter
    /// ones through the heap (cheaper set-up). Both give the same ids; settable so both can be run on the same words.</summary>
    public int RankOrderThreshold { get; set; } = 16_384;

    /// <summary>Merges the pair at <paramref name="pos"/> into <paramref name="mergedId"/> and reports the ranks of the
    /// new pairs on either side, -1 where there is none.</summary>
    void MergeAt(Symbol[] sym, int pos, int mergedId, out int leftRank, out int rightRank)
    {
        ref var s = ref sym[pos];
        int right = s.Next;
        s.Id = mergedId;
        sym[right].Id = -1;
        int after = sym[right].Next;
        s.Next = after;
        if (after >= 0) sym[after].Prev = pos;
        int before = s.Prev;
        leftRank = before >= 0 && _merges.TryGetValue(Key(sym[before].Id, s.Id), out var ml) ? ml.Rank : -1;
        rightRank = after >= 0 && _merges.TryGetValue(Key(s.Id, sym[after].Id), out var mr) ? mr.Rank : -1;
    }

    /// <summary>The merge at <paramref name="pos"/> when the pair there still has rank <paramref name="rank"/>: a
    /// queued entry is stale when one side has merged since it was queued.</summary>
    bool Current(Symbol[] sym, int pos, int rank, out int mergedId)
    {
        mergedId = 0;
        ref var s = ref sym[pos];
        if (s.Id < 0 || s.Next < 0) return false; // merged into its left neighbour, or now the last symbol
        if (!_merges.TryGetValue(Key(s.Id, sym[s.Next].Id), out var now) || now.Rank != rank) return false;
        mergedId = now.Id;
        return true;
    }

    void MergeByHeap(Word w, Symbol[] sym, int n)
    {
        // Lowest rank first, then the leftmost position: the order of Hugging Face's (rank, pos) min-heap. A rank
        // names one pair, so an entry holds just (rank, pos) and is checked against the pair now at pos when popped.
        var heap = w.Heap;
        heap.Clear();
        for (int i = 0; i + 1 < n; i++)
            if (_merges.TryGetValue(Key(sym[i].Id, sym[i + 1].Id), out var m)) heap.Add(Priority(m.Rank, i));
        heap.Heapify();
        while (heap.Count > 0)
        {
            long top = heap.Pop();
            int rank = (int)(top >> 32), pos = (int)(uint)top;
            if (!Current(sym, pos, rank, out int merged)) continue;
            int before = sym[pos].Prev;
            MergeAt(sym, pos, merged, out int leftRank, out int rightRank);
            if (leftRank >= 0) heap.Push(Priority(leftRank, before));
            if (rightRank >= 0) heap.Push(Priority(rightRank, pos));
        }
    }

    /// <summary>
    /// The same merges in the same order as <see cref="MergeByHeap"/>, for very long words: one bucket of positions
    /// per rank, the ranks taken lowest first and each bucket's positions sorted, leftmost first. A merge never makes
    /// a pair of its own rank (the merged token is longer than either side), so a bucket being worked through only
    /// shrinks, and a new pair of a lower rank (possible only with merges that are not in training order) interrupts
    /// it as the heap would: the rest of the bucket goes back and the lower rank is taken first. This does the heap's
    /// work without its log n and, above all, without its random walk over millions of symbols: each rank's positions
    /// are visited in increasing order, so a million-symbol word stays in cache-friendly strides.
    /// </summary>
    unsafe void MergeByRank(Symbol[] sym, int n)
    {
        // The word's own pairs, counting-sorted by rank: each rank's positions lie together and in increasing order.
        int ranks = _maxRank + 1;
        var pairRank = new int[n - 1];
        var first = new int[ranks + 1];
        for (int i = 0; i + 1 < n; i++)
        {
            pairRank[i] = _merges.TryGetValue(Key(sym[i].Id, sym[i + 1].Id), out var m) ? m.Rank : -1;
            if (pairRank[i] >= 0) first[pairRank[i] + 1]++;
        }
        for (int r = 0; r < ranks; r++) first[r + 1] += first[r];
        var initial = new int[first[ranks]];
        var fill = first[..ranks];
        for (int i = 0; i + 1 < n; i++)
            if (pairRank[i] >= 0) initial[fill[pairRank[i]]++] = i;
        var taken = new bool[ranks];
        // Pairs made by merges (and the rest of an interrupted rank) wait in per-rank linked lists.
        var queue = new RankQueue(ranks, n);

        var bucket = new List<int>();
        var made = new List<int>();
        int rank = 0;
        fixed (Symbol* symbols = sym)
        {
            while (rank < ranks)
            {
                bool any = !taken[rank] && first[rank + 1] > first[rank];
                bool more = queue.Take(rank, made);
                if (!any && !more) { rank++; continue; }
                bucket.Clear();
                if (!taken[rank]) { taken[rank] = true; bucket.AddRange(new ReadOnlySpan<int>(initial, first[rank], first[rank + 1] - first[rank])); }
                if (more) { made.Sort(); MergeSorted(bucket, made); }
                queue.Lowest = int.MaxValue;
                for (int k = 0; k < bucket.Count; k++)
                {
                    // The positions ahead are known: fetch their symbols while this one merges (a million-symbol word
                    // does not fit the caches, and each rank's positions are far apart).
                    if (k + PrefetchDistance < bucket.Count && System.Runtime.Intrinsics.X86.Sse.IsSupported)
                        System.Runtime.Intrinsics.X86.Sse.Prefetch0(symbols + bucket[k + PrefetchDistance]);
                    int pos = bucket[k];
                    if (k > 0 && pos == bucket[k - 1]) continue; // queued twice; the second is stale once the first merged
                    if (!Current(sym, pos, rank, out int merged)) continue;
                    int before = sym[pos].Prev;
                    MergeAt(sym, pos, merged, out int leftRank, out int rightRank);
                    if (leftRank >= 0) queue.Add(leftRank, before);
                    if (rightRank >= 0) queue.Add(rightRank, pos);
                    if (queue.Lowest < rank)
                    {
                        for (int rest = k + 1; rest < bucket.Count; rest++) queue.Add(rank, bucket[rest]);
                        break;
                    }
                }
                rank = Math.Min(rank + 1, queue.Lowest);
            }
        }
    }

    const int PrefetchDistance = 8;

    /// <summary>Merges the sorted <paramref name="extra"/> into the sorted <paramref name="into"/>.</summary>
    static void MergeSorted(List<int> into, List<int> extra)
    {
        int a = into.Count, b = extra.Count;
        if (a == 0) { into.AddRange(extra); return; }
        for (int i = 0; i < b; i++) into.Add(0);
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(into);
        int w = a + b - 1, i1 = a - 1, i2 = b - 1;
        while (i2 >= 0) span[w--] = i1 >= 0 && span[i1] > extra[i2] ? span[i1--] : extra[i2--];
    }

    /// <summary>Positions queued by rank: one singly linked list of entries per rank, in two flat arrays.</summary>
    struct RankQueue(int ranks, int capacity)
    {
        readonly int[] head = NewHeads(ranks);
        int[] pos = new int[capacity], next = new int[capacity];
        int count;
        public int Lowest = int.MaxValue;

        static int[] NewHeads(int ranks)
        {
            var h = new int[ranks];
            Array.Fill(h, -1);
            return h;
        }

        public void Add(int rank, int position)
        {
            if (count == pos.Length) { Array.Resize(ref pos, 2 * count); Array.Resize(ref next, 2 * count); }
            pos[count] = position;
            next[count] = head[rank];
            head[rank] = count++;
            if (rank < Lowest) Lowest = rank;
        }

        /// <summary>Moves rank's positions into <paramref name="into"/>; false when there are none.</summary>
        public bool Take(int rank, List<int> into)
        {
            into.Clear();
            if (head[rank] < 0) return false;
            for (int e = head[rank]; e >= 0; e = next[e]) into.Add(pos[e]);
            head[rank] = -1;
            return true;
        }
    }

    static long Priority(int rank, int pos) => ((long)rank << 32) | (uint)pos;

    /// <summary>A symbol of the word: its token id (-1 once merged into its left neighbour) and its neighbours.</summary>
    struct Symbol(int id, int prev, int next)
    {
        public int Id = id, Prev = prev, Next = next;
    }

    /// <summary>The symbols of the word being merged and its heap, reused per thread so a short pre-token allocates nothing.</summary>
    sealed class Word
    {
        public Symbol[] Symbols = [];
        public readonly MinHeap Heap = new();
        [ThreadStatic] static Word? t_word;

        public static Word Rent(int length)
        {
            // A huge word's arrays are not kept for the life of the thread.
            if (length > 1 << 16) return new Word { Symbols = new Symbol[length] };
            var w = t_word ??= new Word();
            if (w.Symbols.Length < length) w.Symbols = new Symbol[Math.Max(length, 64)];
            return w;
        }
    }

    /// <summary>A binary min-heap of longs (rank in the high half, position in the low half).</summary>
    sealed class MinHeap
    {
        long[] items = new long[64];
        public int Count { get; private set; }

        public void Clear() => Count = 0;

        /// <summary>Appends without ordering; <see cref="Heapify"/> orders them all in O(n) before the first pop.</summary>
        public void Add(long x)
        {
            if (Count == items.Length) Array.Resize(ref items, items.Length * 2);
            items[Count++] = x;
        }

        public void Heapify()
        {
            for (int i = Count / 2 - 1; i >= 0; i--) SiftDown(i, items[i]);
        }

        public void Push(long x)
        {
            if (Count == items.Length) Array.Resize(ref items, items.Length * 2);
            int i = Count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (items[parent] <= x) break;
                items[i] = items[parent];
                i = parent;
            }
            items[i] = x;
        }

        public long Pop()
        {
            long top = items[0], last = items[--Count];
            if (Count > 0) SiftDown(0, last);
            return top;
        }

        void SiftDown(int i, long x)
        {
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= Count) break;
                if (child + 1 < Count && items[child + 1] < items[child]) child++;
                if (items[child] >= x) break;
                items[i] = items[child];
                i = child;
            }
            items[i] = x;
        }
    }
}
