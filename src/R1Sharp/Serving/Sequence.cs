using System.Threading.Channels;
using R1Sharp.Generation;
using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Serving;

/// <summary>What a sequence reports to the request that owns it: released text (stop strings already cut), the
/// weight version of the step that produced it, and, on the last event, why it ended.</summary>
public readonly record struct SequenceEvent(int Choice, string Text, string WeightVersion, string? FinishReason, string? Error = null);

/// <summary>
/// One choice being generated in a slot of the shared batch. The batching loop feeds it tokens; it decodes them
/// (incomplete UTF-8 held back), watches for end tokens, stop strings and its budget, and posts text to its request's
/// channel. Text work runs on the loop thread because a stop string must end the sequence before its next step.
/// </summary>
public sealed class Sequence
{
    public int Choice { get; }
    public IReadOnlyList<int> Prompt { get; }
    public SamplingOptions Options { get; }
    public Generator? Generator { get; }
    readonly IReadOnlySet<int> eos;
    readonly ChannelWriter<SequenceEvent> events;
    readonly StreamingDecoder decoder;
    readonly StopStringMatcher stops;
    readonly List<int> tokens = [];
    readonly List<int> textEnds = [];   // decoded length after each token: where reasoning ends in token terms
    int decodedLength;
    volatile bool cancelled;

    public Sequence(int choice, IReadOnlyList<int> prompt, SamplingOptions options, IReadOnlySet<int> eosIds,
        HfTokenizer tokenizer, ChannelWriter<SequenceEvent> events)
    {
        Choice = choice; Prompt = prompt; Options = options; eos = eosIds; this.events = events;
        decoder = tokenizer.CreateStreamingDecoder();
        stops = new StopStringMatcher(options.Stop);
        // Choice i of a seeded request samples with seed + i, as the batched engine does, so n > 1 gives different samples.
        if (!options.Greedy) Generator = new Generator((ulong)((options.Seed ?? Random.Shared.NextInt64(0, long.MaxValue / 2)) + choice));
    }

    public IReadOnlyList<int> Tokens => tokens;
    public IReadOnlyList<int> TextEnds => textEnds;
    /// <summary>The completion text (cut before a stop string).</summary>
    public string Text => stops.Text;
    public string? FinishReason { get; private set; }
    public bool Finished => FinishReason != null;
    public bool Cancelled => cancelled;
    /// <summary>The token the next decode step feeds (the last one sampled).</summary>
    public int LastToken => tokens[^1];

    /// <summary>Called from any thread (a client went away): the loop frees the slot before its next step.</summary>
    public void Cancel() => cancelled = true;

    /// <summary>Takes a sampled token; returns true when the sequence has ended.</summary>
    internal bool Accept(int token, string weightVersion)
    {
        tokens.Add(token);
        string released = "";
        if (eos.Contains(token)) FinishReason = Generation.FinishReason.Stop; // an end token has no text in the completion
        else
        {
            string text = decoder.Push(token);
            decodedLength += text.Length;
            released = stops.Push(text);
            if (stops.Stopped) FinishReason = Generation.FinishReason.Stop;
            else if (tokens.Count >= Options.MaxTokens) FinishReason = Generation.FinishReason.Length;
        }
        textEnds.Add(decodedLength);
        if (FinishReason != null && !stops.Stopped) released += stops.Push(decoder.Flush()) + stops.Flush();
        if (released.Length > 0 || FinishReason != null) events.TryWrite(new SequenceEvent(Choice, released, weightVersion, FinishReason));
        if (FinishReason != null) Generator?.Dispose();
        return FinishReason != null;
    }

    /// <summary>The loop dropped a cancelled sequence: free its generator (native memory) now, not at finalization.</summary>
    internal void Abandon() => Generator?.Dispose();

    /// <summary>Ends the sequence without more tokens: a failed step or a server shutting down.</summary>
    internal void Fail(string message, string weightVersion)
    {
        if (FinishReason != null) return;
        FinishReason = "error";
        events.TryWrite(new SequenceEvent(Choice, "", weightVersion, FinishReason, message));
        Generator?.Dispose();
    }
}
