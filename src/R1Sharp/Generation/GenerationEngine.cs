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
        int len = promptLen;
        for (int step = 0; step < options.MaxTokens; step++)
        {
            int[] next;
            using (NewDisposeScope())
            {
                // Prefill (step 0) feeds the whole prompt; afterwards the cache needs only the newest token.
                int start = cache != null && step > 0 ? len - 1 : 0;
                int count = len - start;
                var ids = tensor(Slice(seq, start, count), [b, count], device: device);
                var pos = AttentionMask.Positions(pad, start, count, device);
                var mask = AttentionMask.Build(pad, start, count, len, device);
                var logits = model.ForwardLast(ids, pos, mask, cache);
                next = Sampler.Sample(logits, options, gens);
            }
            for (int r = 0; r < b; r++)
            {
                if (finish[r] != null) continue;
                int tok = next[r];
                outputs[r].Add(tok);
                seq[r, len] = tok;
                bool stop = onToken?.Invoke(r, tok) ?? false;
                if (eos.Contains(tok) || stop) finish[r] = FinishReason.Stop;
                else if (outputs[r].Count >= options.MaxTokens) finish[r] = FinishReason.Length;
            }
            len++;
            if (finish.All(f => f != null)) break;
        }
        foreach (var g in gens) g?.Dispose();
        return Enumerable.Range(0, b).Select(r => new TokenCompletion(outputs[r].ToArray(), finish[r] ?? FinishReason.Length)).ToArray();
    }

    static long[] Slice(long[,] seq, int start, int count)
    {
        int b = seq.GetLength(0);
        var flat = new long[b * count];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < count; j++) flat[r * count + j] = seq[r, start + j];
        return flat;
    }
}
