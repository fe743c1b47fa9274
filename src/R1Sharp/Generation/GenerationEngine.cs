using R1Sharp.Models;

namespace R1Sharp.Generation;

/// <summary>One generated sequence in token ids (an end-of-sequence token that stopped it is included).</summary>
public sealed record TokenCompletion(int[] TokenIds, string FinishReason);

/// <summary>
/// Batch generation over token ids: submits one <see cref="Sequence"/> per prompt to a <see cref="DecodeEngine"/>
/// over the model with a slot each, and steps until all have finished. The prompts are prefilled together in the
/// first step; rows that finish leave the batch, so a long tail of one or two sequences costs what they cost alone.
/// </summary>
public sealed class GenerationEngine
{
    readonly CausalLM model;

    public GenerationEngine(CausalLM model) => this.model = model;

    /// <summary>Whether a large prefill's freed memory is handed back to the system before decoding. Off where the same
    /// memory is about to be used again, as by a training step right after its rollouts: the demo GRPO update's first
    /// forward then took twice as long, page-faulting it back in.</summary>
    public bool ReleaseMemoryAfterPrefill { get; init; } = true;

    /// <summary>Positions (rows × tokens) one forward pass takes at most: longer prefills go in time chunks
    /// (<see cref="DecodeEngine.PrefillChunkTokens"/>); null: the engine's default for the model's width.</summary>
    public int? PrefillChunkTokens { get; init; }

    /// <param name="onToken">called with (row, token) for each new token; returning true stops that row (stop strings).</param>
    /// <param name="useCache">false recomputes the whole sequence each step (the reference the cache is tested against).</param>
    public IReadOnlyList<TokenCompletion> Generate(IReadOnlyList<IReadOnlyList<int>> prompts, SamplingOptions options,
        IReadOnlyCollection<int> eosIds, Func<int, int, bool>? onToken = null, bool useCache = true)
    {
        var eos = eosIds.ToHashSet();
        var sequences = prompts.Select((p, i) => new Sequence(p, options, eos, index: i)
        {
            StopWhen = onToken is null ? null : token => onToken(i, token),
        }).ToArray();
        Run(sequences, useCache);
        return sequences.Select(s => new TokenCompletion(s.Tokens.ToArray(), s.FinishReason ?? FinishReason.Length)).ToArray();
    }

    /// <summary>Runs sequences to the end, all in one batch (a slot each).</summary>
    public void Run(IReadOnlyList<Sequence> sequences, bool useCache = true)
    {
        if (sequences.Count == 0) return;
        var options = sequences[0].Options;
        options.Validate();
        int promptLen = sequences.Max(s => s.Prompt.Count);
        int total = promptLen + sequences.Max(s => s.Options.MaxTokens);
        if (total > model.Config.MaxPositionEmbeddings)
            throw new R1SharpException($"prompt ({promptLen} tokens) + max_tokens ({options.MaxTokens}) exceeds the model's context of {model.Config.MaxPositionEmbeddings}");
        using var noGrad = TorchSharp.torch.no_grad();
        using var backend = new ModelBackend(model, sequences.Count, total, ownsModel: false, useCache);
        var engine = PrefillChunkTokens is { } chunk
            ? new DecodeEngine(backend) { ReleaseMemoryAfterPrefill = ReleaseMemoryAfterPrefill, PrefillChunkTokens = chunk }
            : new DecodeEngine(backend) { ReleaseMemoryAfterPrefill = ReleaseMemoryAfterPrefill };
        engine.Submit(sequences);
        engine.RunUntilIdle();
    }
}
