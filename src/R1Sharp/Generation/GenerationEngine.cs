using R1Sharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>Why a sequence stopped: an end-of-sequence token or stop string ("stop"), or the token budget ("length").</summary>
public static class FinishReason
{
    public const string Stop = "stop";
    public const string Length = "length";
}

/// <summary>One generated sequence in token ids (an end-of-sequence token that stopped it is included).</summary>
public sealed record TokenCompletion(int[] TokenIds, string FinishReason);

/// <summary>
/// Batched generation over token ids: left-pads prompts of different lengths into one batch, prefills them in one
/// forward pass into a preallocated KV cache, then decodes one token per row per step. Rows that finish stop
/// contributing tokens; the batch ends when every row has finished.
/// </summary>
public sealed class GenerationEngine
{
    readonly CausalLM model;

    public GenerationEngine(CausalLM model) => this.model = model;

    /// <summary>Whether a large prefill's freed memory is handed back to the system before decoding (see Generate).
    /// Off where the same memory is about to be used again, as by a training step right after its rollouts: the
    /// demo GRPO update's first forward then took twice as long, page-faulting it back in.</summary>
    public bool ReleaseMemoryAfterPrefill { get; init; } = true;

    /// <param name="onToken">called with (row, token) for each new token; returning true stops that row (stop strings).</param>
    /// <param name="useCache">false recomputes the whole sequence each step (the reference the cache is tested against).</param>
    public IReadOnlyList<TokenCompletion> Generate(IReadOnlyList<IReadOnlyList<int>> prompts, SamplingOptions options,
        IReadOnlyCollection<int> eosIds, Func<int, int, bool>? onToken = null, bool useCache = true)
    {
        options.Validate();
        if (prompts.Count == 0) return [];
        int b = prompts.Count;
        if (prompts.Any(p => p.Count == 0)) throw new R1SharpException("every prompt needs at least one token");
        int promptLen = prompts.Max(p => p.Count);
        int total = promptLen + options.MaxTokens;
        if (total > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"prompt ({promptLen} tokens) + max_tokens ({options.MaxTokens}) exceeds the model's context of {model.Config.MaxPositionEmbeddings}");

        var pad = prompts.Select(p => promptLen - p.Count).ToArray();
        var seq = new long[b, total];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < prompts[r].Count; j++) seq[r, pad[r] + j] = prompts[r][j];

        long baseSeed = options.Seed ?? Random.Shared.NextInt64(0, long.MaxValue / 2);
        var gens = Enumerable.Range(0, b).Select(i => options.Greedy ? null : new Generator((ulong)(baseSeed + i))).ToArray();
        var outputs = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var finish = new string?[b];
        var eos = eosIds.ToHashSet();
        var device = model.Device;

        using var noGrad = no_grad();
        using var cache = useCache ? new KvCache(model.Config, b, total, model.DType, device) : null;
        // The rows still generating, in the order of the cache's rows. Finished rows leave the batch (and the cache)
        // at once, so a long tail of one or two sequences costs what one or two sequences cost.
        var active = Enumerable.Range(0, b).ToArray();
        int len = promptLen;
        for (int step = 0; step < options.MaxTokens; step++)
        {
            int[] next;
            using (NewDisposeScope())
            {
                // Prefill (step 0) feeds the whole prompt; afterwards the cache needs only the newest token.
                int start = cache != null && step > 0 ? len - 1 : 0;
                int count = len - start;
                var rowPad = active.Select(r => pad[r]).ToArray();
                var ids = tensor(Slice(seq, active, start, count), [active.Length, count], device: device);
                var pos = AttentionMask.Positions(rowPad, start, count, device);
                var mask = AttentionMask.Build(rowPad, start, count, len, device);
                var logits = model.ForwardLast(ids, pos, mask, cache);
                next = Sampler.Sample(logits, options, active.Select(r => gens[r]).ToArray());
            }
            // A prefill's activations are freed by now, but glibc keeps the freed blocks under its mmap threshold, and
            // the decode steps' differently sized blocks then grow the heap beside them: the 0.5B bench's peak rose
            // from ~1.25 to 1.31-1.44 × (weights + KV). Handing them back costs a few ms once a call.
            if (step == 0 && ReleaseMemoryAfterPrefill && b * promptLen >= 256) NativeRuntime.ReleaseFreeMemory();
            for (int i = 0; i < active.Length; i++)
            {
                int r = active[i], tok = next[i];
                outputs[r].Add(tok);
                seq[r, len] = tok;
                bool stop = onToken?.Invoke(r, tok) ?? false;
                if (eos.Contains(tok) || stop) finish[r] = FinishReason.Stop;
                else if (outputs[r].Count >= options.MaxTokens) finish[r] = FinishReason.Length;
            }
            len++;
            var still = Enumerable.Range(0, active.Length).Where(i => finish[active[i]] == null).ToArray();
            if (still.Length == 0) break;
            if (still.Length < active.Length)
            {
                cache?.KeepRows(still);
                active = still.Select(i => active[i]).ToArray();
            }
        }
        foreach (var g in gens) g?.Dispose();
        return Enumerable.Range(0, b).Select(r => new TokenCompletion(outputs[r].ToArray(), finish[r] ?? FinishReason.Length)).ToArray();
    }

    static long[] Slice(long[,] seq, int[] rows, int start, int count)
    {
        var flat = new long[rows.Length * count];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < count; j++) flat[i * count + j] = seq[rows[i], start + j];
        return flat;
    }
}
