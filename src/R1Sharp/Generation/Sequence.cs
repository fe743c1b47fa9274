using R1Sharp.Text;
using static TorchSharp.torch;

namespace R1Sharp.Generation;

/// <summary>Why a sequence stopped: an end-of-sequence token or stop string ("stop"), or the token budget ("length").</summary>
public static class FinishReason
{
    public const string Stop = "stop";
    public const string Length = "length";
    public const string Error = "error";
}

/// <summary>
/// One sequence being generated: its prompt, sampling options and generator, the tokens sampled so far, and the rules
/// that end it. Every path that generates (the CLI, evaluation, GRPO rollouts, the server) runs sequences through the
/// one <see cref="DecodeEngine"/>, so these rules exist once: an end-of-sequence token, a stop string, a caller's
/// <see cref="StopWhen"/>, or max_tokens. Sequence i of a batch or request samples with seed + i, so it samples the
/// same alone or among others, locally or served. With a tokenizer it also decodes as it goes (incomplete UTF-8 held
/// back, stop strings cut) and reports released text through <see cref="OnEvent"/>.
/// </summary>
public sealed class Sequence
{
    readonly IReadOnlySet<int> eos;
    readonly StreamingDecoder? decoder;
    readonly StopStringMatcher? stops;
    readonly List<int> tokens = [];
    readonly List<int> textEnds = [];   // decoded length after each token: where reasoning ends in token terms
    int decodedLength;
    volatile bool cancelled;

    /// <param name="index">the sequence's place in its batch or request: it samples with options.Seed + index</param>
    /// <param name="tokenizer">decode as tokens arrive (text, stop strings, streaming); null for token ids only</param>
    public Sequence(IReadOnlyList<int> prompt, SamplingOptions options, IReadOnlySet<int> eosIds, int index = 0, HfTokenizer? tokenizer = null)
    {
        if (prompt.Count == 0) throw new R1SharpException("every prompt needs at least one token");
        Prompt = prompt; Options = options; eos = eosIds; Index = index;
        if (tokenizer != null)
        {
            decoder = tokenizer.CreateStreamingDecoder();
            stops = new StopStringMatcher(options.Stop);
        }
        if (!options.Greedy) Generator = new Generator((ulong)((options.Seed ?? Random.Shared.NextInt64(0, long.MaxValue / 2)) + index));
    }

    public int Index { get; }
    public IReadOnlyList<int> Prompt { get; }
    public SamplingOptions Options { get; }
    public Generator? Generator { get; }
    /// <summary>The LoRA adapter this sequence decodes with (an index into the model's adapters, −1 the base); null:
    /// the model's own routing.</summary>
    public int? Adapter { get; init; }
    /// <summary>Called with each token before the other rules; true ends the sequence after it ("stop").</summary>
    public Func<int, bool>? StopWhen { get; init; }
    /// <summary>Called on the engine's thread with text released by this token (maybe empty) and, on the last call,
    /// the finish reason. Only when there is text or the sequence ended.</summary>
    public Action<Sequence, string, string?>? OnEvent { get; init; }

    /// <summary>Sampled tokens; an end-of-sequence token that ended the sequence is included.</summary>
    public IReadOnlyList<int> Tokens => tokens;
    /// <summary>With a tokenizer: the decoded length after each token.</summary>
    public IReadOnlyList<int> TextEnds => textEnds;
    /// <summary>With a tokenizer: the completion text, cut before a stop string; end tokens have no text.</summary>
    public string Text => stops?.Text ?? "";
    public string? FinishReason { get; private set; }
    public string? Error { get; private set; }
    public bool Finished => FinishReason != null;
    public bool Cancelled => cancelled;
    /// <summary>The token the next decode step feeds (the last one sampled).</summary>
    public int LastToken => tokens[^1];

    /// <summary>Called from any thread (e.g. a client went away): the engine drops the sequence before its next step.</summary>
    public void Cancel() => cancelled = true;

    /// <summary>Takes a sampled token; returns true when the sequence has ended.</summary>
    internal bool Accept(int token)
    {
        tokens.Add(token);
        string released = "";
        bool stopped = StopWhen?.Invoke(token) ?? false;
        if (eos.Contains(token)) FinishReason = Generation.FinishReason.Stop; // an end token has no text in the completion
        else
        {
            if (decoder != null)
            {
                string text = decoder.Push(token);
                decodedLength += text.Length;
                released = stops!.Push(text);
                stopped |= stops.Stopped;
            }
            if (stopped) FinishReason = Generation.FinishReason.Stop;
            else if (tokens.Count >= Options.MaxTokens) FinishReason = Generation.FinishReason.Length;
        }
        if (decoder != null) textEnds.Add(decodedLength);
        if (FinishReason != null) released += FlushText();
        if (released.Length > 0 || FinishReason != null) OnEvent?.Invoke(this, released, FinishReason);
        if (FinishReason != null) Generator?.Dispose();
        return FinishReason != null;
    }

    /// <summary>Ends the sequence without another token (its context is full): "length".</summary>
    internal void EndForLength()
    {
        if (FinishReason != null) return;
        FinishReason = Generation.FinishReason.Length;
        OnEvent?.Invoke(this, FlushText(), FinishReason);
        Generator?.Dispose();
    }

    /// <summary>The text still held back (an incomplete character, a possible stop-string prefix) once no more comes.</summary>
    string FlushText() => decoder is null || stops!.Stopped ? "" : stops.Push(decoder.Flush()) + stops.Flush();

    /// <summary>The engine dropped a cancelled sequence: free its generator (native memory) now, not at finalization.</summary>
    internal void Abandon() => Generator?.Dispose();

    /// <summary>Ends the sequence without more tokens: a failed step or a server shutting down.</summary>
    internal void Fail(string message)
    {
        if (FinishReason != null) return;
        FinishReason = Generation.FinishReason.Error;
        Error = message;
        OnEvent?.Invoke(this, "", FinishReason);
        Generator?.Dispose();
    }
}
